// Where an ext2/3/4 inode's bytes lie: its block map (12 direct pointers,
// then single, double and triple indirect blocks) or its extent tree (depth
// 0 in the inode, deeper trees through index blocks), as runs of logical
// file blocks -> filesystem blocks.
//
// For recovery the blocks the map goes through (indirect blocks, extent
// index and leaf blocks) are not read from the filesystem directly: the
// caller's fetch decides (the newest journal copy of that block, else the
// block on disk). A deleted file's tree blocks are free blocks whose content
// may be anything, so every byte is hostile: block numbers are checked
// against the filesystem, extent headers (magic, entries <= max, depth that
// decreases by one per level, at most 5 levels), logical order, runs that
// overlap, and the number of blocks mapped is bounded by `max_blocks` (the
// size the inode claims, rounded up).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/guest_fs/ext_layout.h"

namespace blocksmith::fs {

struct BlockRun {
  uint64_t logical = 0;   // first file block
  uint64_t physical = 0;  // first filesystem block
  uint64_t count = 0;
  bool uninitialized = false;  // ext4 unwritten extent: reads as zeros
};

// Reads filesystem block `block` (layout.bs bytes) into `out`; false when
// it cannot be had (outside the filesystem, a read error, no copy).
using BlockFetch = std::function<bool(uint64_t block, uint8_t* out)>;

struct BlockMap {
  std::vector<BlockRun> runs;        // sorted by logical, not overlapping
  std::vector<uint64_t> tree_blocks;  // indirect / extent-tree blocks the map went through
  // Empty when the whole map was read; else why it stops early (a tree
  // block that could not be fetched or is not one: "the indirect block
  // 1234 holds block numbers past the filesystem"). `runs` then holds what
  // was mapped before.
  std::string problem;
  // Logical block where the map stops being known (problem set): the caller
  // may guess past it (ext3: data resumes after the indirect block).
  uint64_t known_blocks = 0;
};

// `inode`: the raw inode (at least 128 bytes; i_block at 0x28, i_flags at
// 0x20); extents when EXT4_EXTENTS_FL (0x80000) is set, else a block map.
// Inline data (0x10000000) maps nothing. Never throws on hostile content.
BlockMap map_inode_blocks(const uint8_t* inode, const ExtLayout& layout, const BlockFetch& fetch, uint64_t max_blocks);

}  // namespace blocksmith::fs
