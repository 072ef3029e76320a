// FAT12/16/32 boot sector: the BIOS Parameter Block checked field by field
// and turned into the volume's geometry in SOURCE byte coordinates. The FAT
// type follows Microsoft's FAT specification (fatgen103): by the count of
// data clusters (< 4085 FAT12, < 65525 FAT16, else FAT32); a BPB with the
// FAT32 layout (BPB_FATSz16 == 0, no fixed root) is read as FAT32 even
// below 65525 clusters, as Linux does (mkfs.fat -F 32 makes such volumes).
#pragma once

#include <cstdint>
#include <string>

#include "core/pipeline/reader.h"

namespace blocksmith::fs {

struct FatGeometry {
  int bits = 0;  // 12, 16 or 32
  uint64_t offset = 0, length = 0;  // the volume in the source
  uint32_t bytes_per_sector = 0;
  uint32_t sectors_per_cluster = 0;
  uint32_t cluster_size = 0;
  uint32_t reserved_sectors = 0;
  uint32_t num_fats = 0;
  uint32_t fat_sectors = 0;     // of one FAT
  uint32_t active_fat = 0;      // FAT32 with mirroring off: the one in use; else 0
  uint32_t root_entries = 0;    // FAT12/16 fixed root directory
  uint32_t root_cluster = 0;    // FAT32
  uint64_t total_sectors = 0;
  uint64_t fat_offset = 0;      // source byte offset of the FAT in use
  uint64_t fat_bytes = 0;       // bytes of it that hold entries 0 .. cluster_count + 1
  uint64_t root_offset = 0, root_bytes = 0;  // FAT12/16 root region (source)
  uint64_t data_offset = 0;     // source byte offset of cluster 2
  uint64_t cluster_count = 0;   // data clusters: numbers 2 .. cluster_count + 1
  std::string label;            // from the BPB (the root's volume label entry wins)

  uint64_t cluster_offset(uint64_t cluster) const { return data_offset + (cluster - 2) * cluster_size; }
  bool valid_cluster(uint64_t cluster) const { return cluster >= 2 && cluster < cluster_count + 2; }
};

// Checks the boot sector of the volume at [offset, offset + length) and
// returns its geometry. Throws one line (ERR_FS_CORRUPT or
// ERR_FS_UNSUPPORTED) naming the field and its value when it cannot be used.
FatGeometry read_fat_boot(Reader& reader, uint64_t offset, uint64_t length);

// The same checks on a boot sector already read (512 bytes): an empty
// message when it is a usable FAT boot sector, else why not and the code
// read_fat_boot throws with.
struct FatBootCheck {
  const char* code = "";
  std::string message;
};
FatBootCheck check_fat_boot(const uint8_t* sector, uint64_t offset, uint64_t length, FatGeometry& out);

// The FAT type by the count of data clusters (fatgen103): 12 below 4085,
// 16 below 65525, else 32.
int fat_bits_for(uint64_t clusters);

// The bytes a FAT of `bits` needs for entries 0 .. clusters + 1 (FAT12: one
// and a half bytes an entry, rounded up).
uint64_t fat_bytes_needed(int bits, uint64_t clusters);

}  // namespace blocksmith::fs
