// exFAT's main boot region (sectors 0-11): the boot sector's geometry, every
// field bounds-checked against the volume it must fit in, and the boot
// checksum (sector 11) verified, so the rest of the reader can index the
// FAT and the cluster heap without further range checks on the geometry.
#pragma once

#include <cstdint>
#include <string>

#include "core/pipeline/reader.h"

namespace blocksmith::fs {

struct ExfatBoot {
  uint64_t offset = 0, length = 0;  // the volume in the source
  uint32_t sector_size = 0;         // 512..4096
  uint32_t cluster_size = 0;        // <= 32 MiB
  uint64_t fat_offset = 0;          // the active FAT, bytes from the volume start
  uint64_t fat_bytes = 0;           // FatLength in bytes (one FAT)
  uint64_t heap_offset = 0;         // cluster 2, bytes from the volume start
  uint32_t cluster_count = 0;       // clusters 2 .. cluster_count + 1
  uint32_t root_cluster = 0;
  uint8_t active_fat = 0;           // 0 or 1 (TexFAT's second FAT)
  uint8_t number_of_fats = 1;
  // Source offset of cluster c (2 <= c < cluster_count + 2).
  uint64_t cluster_at(uint64_t c) const { return offset + heap_offset + (c - 2) * cluster_size; }
  bool valid_cluster(uint64_t c) const { return c >= 2 && c < uint64_t(cluster_count) + 2; }
};

// The boot sector says "EXFAT   " and its shifts are plausible: no throw.
bool looks_like_exfat(Reader& reader, uint64_t offset, uint64_t length);

// Reads and checks the main boot region. Throws one line (ERR_FS_CORRUPT
// naming the field and its value, or ERR_FS_UNSUPPORTED) on anything that
// does not fit.
ExfatBoot read_exfat_boot(Reader& reader, uint64_t offset, uint64_t length);

// The geometry fields of a boot sector (512 bytes; b.sector_size and
// b.cluster_size already set from its shifts) checked against a volume of
// `length` bytes and stored in `b`: "" when they fit, else the field, its
// value and why not (the message read_exfat_boot throws).
std::string check_exfat_geometry(const uint8_t* sector, uint64_t length, ExfatBoot& b);

// The boot region checksum over `sectors` (11 sectors of `sector_size`):
// VolumeFlags and PercentInUse are left out, as the specification says.
uint32_t exfat_boot_checksum(const uint8_t* sectors, uint32_t sector_size);

}  // namespace blocksmith::fs
