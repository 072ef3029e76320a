// The jbd2 journal of an ext3/ext4 filesystem (internal journal, inode 8)
// read as a history: every block copy a committed transaction logged that is
// still in the log, newest first per filesystem block. On a clean filesystem
// the journal is empty (s_start = 0) but the log area still holds the copies
// of the last transactions: inode-table blocks from before a delete (with
// the block pointers or extents the delete zeroed), directory blocks with the
// names, indirect and extent-tree blocks. That is what undelete reads.
//
// The whole log area is scanned for descriptor blocks (jbd2 magic, type 1,
// a sequence number): their tags name the filesystem blocks whose copies
// follow in the log, wrapping from the last log block to s_first. A
// transaction counts when its commit block (type 2, same sequence) is found
// after its descriptors, wrap included, in either order on disk. Revoke
// blocks (type 5) drop the copies of the blocks they name from transactions
// before theirs. Formats: journal v1 and v2 superblocks; 32- and 64-bit block
// numbers; tags v2 (12/8 bytes + csum v2's 2), v3 (16 bytes); the 16-byte
// UUID after tags without SAME_UUID; the descriptor tail with csum v2/v3;
// escaped blocks (the magic zeroed on write, restored here).
//
// Every field is hostile: tag counts are bounded by the descriptor block,
// log positions by the journal's length, copies by the log blocks that
// follow, revoke counts by the block; a sequence number seen twice, a
// cycle, or a log that maps outside the filesystem ends that transaction (a
// problem, not a crash). Memory: one entry per copy, bounded by the log's
// length in blocks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/guest_fs/ext_block_map.h"
#include "core/guest_fs/ext_layout.h"
#include "core/pipeline/reader.h"

namespace blocksmith::fs {

struct JournalCopy {
  uint64_t fs_block = 0;      // the filesystem block this is a copy of
  uint32_t sequence = 0;      // the transaction that logged it
  uint64_t source_offset = 0;  // where the copy lies in the source (bytes)
  bool escaped = false;       // its first 4 bytes must be restored to the jbd2 magic
};

struct JournalHistory {
  bool present = false;  // the filesystem has an internal journal that was read
  uint32_t block_size = 0;
  uint64_t log_blocks = 0;   // s_maxlen
  uint64_t transactions = 0;  // committed transactions found
  uint64_t revoked = 0;       // copies dropped by revoke records
  uint32_t oldest_sequence = 0, newest_sequence = 0;
  // Sorted by fs_block, then sequence newest first (sequence numbers are
  // compared modulo 2^32 from the oldest found).
  std::vector<JournalCopy> copies;
  // The copies revoke records dropped, in the same order. A revoke means
  // the block was freed after them (ext3's indirect blocks and directory
  // blocks freed by a delete are revoked), so these are the last copies of
  // what a delete freed: undelete may read them, knowing they are stale.
  std::vector<JournalCopy> revoked_copies;
  // What was found wrong and skipped ("descriptor at log block 17 names 900
  // tags, more than fit in a block").
  std::vector<std::string> problems;

  // The copies of filesystem block `block`, newest first (empty when none).
  std::vector<const JournalCopy*> copies_of(uint64_t block) const;
};

// Reads copy `c` (block_size bytes) into `out`, escape undone. False on a
// short read; throws the reader's Error on EIO.
bool read_copy(Reader& reader, const JournalHistory& journal, const JournalCopy& c, uint8_t* out);

// `journal_inode`: the raw inode 8 (its block map gives the log's blocks,
// map_inode_blocks with on-disk fetches). A filesystem without
// has_journal, or with an external journal, returns present = false.
// Throws Error ERR_FS_CORRUPT only when the journal superblock itself is
// unusable (bad magic, block size other than the filesystem's, s_first /
// s_maxlen outside the inode's blocks); problems inside the log are listed.
JournalHistory read_journal(Reader& reader, const ExtLayout& layout, const uint8_t* journal_inode,
                            const std::string& where);

}  // namespace blocksmith::fs
