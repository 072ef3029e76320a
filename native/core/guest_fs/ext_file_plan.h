// Where an ext2/3/4 deleted file's bytes lie, once ext_deleted.cc has
// chosen its inode copy and mapped its blocks (ext_block_map.h): ext3's
// layout guess for a map whose indirect block is gone, the map turned into
// a DeletedFile's source byte ranges and holes, and what live files or
// newer deleted files own of them now. Pure computations over the map and
// the free ranges: they read nothing.
#pragma once

#include <cstdint>
#include <vector>

#include "core/guest_fs/ext_block_map.h"
#include "core/guest_fs/free_map.h"
#include "core/guest_fs/volume_files.h"

namespace blocksmith::fs {

// ext3: `map` (of a file of `nblocks` blocks) ends at an indirect block
// that is gone. ext3's allocator put each indirect block right before the
// data it maps, so the data is taken to resume right after it: appends the
// guessed runs and returns true, or leaves `map` alone and returns false
// (nothing known, the map does not end where it broke, or the guess runs
// past `blocks_count`).
bool guess_indirect_runs(BlockMap& map, uint64_t nblocks, uint32_t bs, uint64_t blocks_count);

// Fills f.extents (source bytes, file order), f.file_offsets (when there
// are holes), f.first_cluster, f.overwritten_bytes and, when overwritten or
// unreadable, f.status, for a file of `size` bytes mapped by `map`
// (`guessed`: its tail came from guess_indirect_runs). `offset`: the
// filesystem's start in the source; `free`: its free byte ranges;
// `tree_bytes_in_use`: bytes of tree blocks its map was read through that a
// live file owns now.
void plan_ext_file(const BlockMap& map, bool guessed, uint64_t size, uint64_t tree_bytes_in_use, uint32_t bs,
                   uint64_t offset, const FreeMap& free, DeletedFile& f);

// Two deleted files whose copies claim the same block: the block held the
// newer one's bytes last (`ranks`: how new each one's inode copy is), so
// for the older one they are overwritten. False when the comparisons'
// budget ran out: not all overlaps were checked.
bool mark_claimed_by_newer(std::vector<DeletedFile>& files, const std::vector<uint64_t>& ranks, uint32_t bs,
                           uint64_t offset);

}  // namespace blocksmith::fs
