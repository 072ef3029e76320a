// ext2/3/4 directory blocks as a source of names for undelete: the live
// entries (the rec_len chain from the block's start), and the deleted ones
// that survive in the slack a live entry's rec_len covers past its name (a
// delete merges the entry into the previous one's rec_len and, on kernels
// before 5.14, leaves its bytes; newer kernels wipe them, so deleted names
// then survive only in older copies of the block in the jbd2 journal).
//
// A block is taken as a directory block only when its whole rec_len chain
// is valid and covers the block exactly: a journal copy of any other block
// (inode table, bitmap, data) is rejected, not read as names. htree index
// blocks (dx_root's slack after "..", dx_node blocks) hold hashes and block
// numbers, not entries: only dx_root's "." and ".." are taken from them.
// Every byte is hostile: offsets, lengths and names are bounds-checked.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace blocksmith::fs {

struct DirEntry {
  uint32_t inode = 0;
  uint8_t file_type = 0;  // 0 unknown, 1 regular, 2 directory, ... (filetype feature)
  bool deleted = false;   // found in a live entry's slack
  std::string name;
};

struct DirBlock {
  bool valid = false;  // the rec_len chain covers the block exactly
  bool index = false;  // an htree dx_root or dx_node block
  // "." and "..": the directory this block 0 belongs to and its parent
  // (0 when the block is not a directory's first block).
  uint32_t self = 0, parent = 0;
  std::vector<DirEntry> entries;  // "." and ".." not included
};

// `block`: one directory block of `bs` bytes. `filetype`: the filetype
// feature (name_len is then one byte and file_type the next); `inodes_count`
// bounds inode numbers. Deleted entries are looked for only with
// `want_deleted`.
DirBlock parse_dir_block(const uint8_t* block, uint32_t bs, bool filetype, uint32_t inodes_count,
                         bool want_deleted = true);

}  // namespace blocksmith::fs
