// One copy of an ext2/3/4 inode (from the inode table on disk, or from a
// jbd2 journal copy of its inode-table block) judged for undelete: does it
// still describe the file that was deleted (a regular file or directory,
// with a size and a block map or extent tree the delete has not zeroed yet,
// plausible times), and what it says (size, times, flags). Copies are
// tried newest first; the first that describes a file is the one used.
#pragma once

#include <cstdint>

#include "core/guest_fs/ext_layout.h"
#include "core/guest_fs/volume_files.h"

namespace blocksmith::fs {

struct InodeFields {
  uint16_t mode = 0;
  bool regular = false, directory = false;
  uint64_t size = 0;
  uint32_t links = 0, dtime = 0, flags = 0, generation = 0;
  FileTimes times;
};

// `raw`: layout.inode_size bytes (at least 128).
InodeFields inode_fields(const uint8_t* raw, const ExtLayout& layout);

// metadata_csum: the inode's crc32c (`seed`: the filesystem's checksum
// seed) matches; true without metadata_csum.
bool inode_checksum_ok(const uint8_t* raw, const ExtLayout& layout, uint32_t ino, uint32_t seed);

enum class CopyVerdict : uint8_t {
  no,        // not a file any more (zeroed, wiped, another type, impossible)
  file,      // a regular file or directory with blocks to map
  empty,     // a regular file of size 0 that was live in this copy
};

// Whether this copy still describes a deleted file (see the header comment).
CopyVerdict judge_copy(const uint8_t* raw, const ExtLayout& layout, uint32_t ino, uint32_t seed);

}  // namespace blocksmith::fs
