// exFAT directory entries: the entry sets (File 0x85 + Stream Extension
// 0xC0 + File Name 0xC1 entries) of one directory's bytes, live and deleted
// (a delete clears the InUse bit 0x80 of every entry of the set: 0x05,
// 0x40, 0x41), plus the root's allocation bitmap, up-case table and label
// entries.
//
// A set is taken only when its SecondaryCount covers a Stream Extension and
// exactly the File Name entries NameLength needs, every entry has the
// primary's InUse bit, and the set checksum matches. Deleted sets are
// checksummed with the InUse bits set back, as they were when the checksum
// was written (a delete flips those bits and nothing else); a deleted set
// whose checksum still does not match is not taken (counted in `rejected`):
// its entries were partly reused, so neither its name nor its clusters can
// be trusted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/guest_fs/volume_files.h"

namespace blocksmith::fs {

struct ExfatEntrySet {
  bool in_use = false;
  bool directory = false;
  std::string name;  // UTF-8; '/' and NUL replaced by '_' so it stays one path component
  FileTimes times;
  uint32_t first_cluster = 0;
  uint64_t data_length = 0;
  uint64_t valid_data_length = 0;
  bool no_fat_chain = false;
};

struct ExfatDirectory {
  std::vector<ExfatEntrySet> sets;
  // Allocation bitmap entries (0x81), by BitmapFlags bit 0 (which FAT they go with).
  bool has_bitmap[2] = {false, false};
  uint32_t bitmap_cluster[2] = {0, 0};
  uint64_t bitmap_length[2] = {0, 0};
  bool has_upcase = false;
  uint32_t upcase_cluster = 0;
  uint64_t upcase_length = 0;
  std::string label;
  uint64_t rejected = 0;     // deleted sets whose checksum or shape does not match
  uint64_t bad_live = 0;     // live sets whose checksum or shape does not match
};

// Parses `n` bytes of directory entries (n a multiple of 32; a partial
// trailing entry is ignored), appending to `out`.
void parse_exfat_directory(const uint8_t* data, size_t n, ExfatDirectory& out);

// The 16-bit entry set checksum of `count` entries, with the InUse bit of
// every entry's type taken as set (see above).
uint16_t exfat_set_checksum(const uint8_t* entries, size_t count);

// An exFAT timestamp (32-bit DOS-style date and time, 10 ms increment,
// UtcOffset byte) as a Timestamp: real UTC when OffsetValid is set,
// local_time otherwise; unknown when 0 or impossible.
Timestamp exfat_time(uint32_t stamp, uint8_t ten_ms, uint8_t utc_offset);

}  // namespace blocksmith::fs
