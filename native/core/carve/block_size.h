// The allocation grid a fragment search steps along: from the filesystem
// when one is recognised at the start of the source (FAT boot sector, ext
// superblock), else from where the JPEGs found start (files begin on block
// boundaries, so their offsets share the block size as a factor).
#pragma once

#include <cstdint>
#include <vector>

#include "core/pipeline/reader.h"

namespace blocksmith::carve {

// Blocks are [phase + k * size, phase + (k + 1) * size).
struct BlockGrid {
  uint32_t size = 0;
  uint64_t phase = 0;  // below size: FAT clusters start where the data region does
};

// FAT cluster grid or ext block grid; size 0 when neither is recognised.
BlockGrid filesystem_grid(Reader& src);

// The largest power of two from 512 to 4 KiB dividing at least 80% of the
// offsets (512 when there are none or too few agree), with the phase most
// of them share. Not above 4 KiB: a few files placed far apart share large
// factors by chance, and a block size too large misses fragment ends, while
// one too small only costs time. `size`: use this size, find the phase only.
BlockGrid offsets_grid(const std::vector<uint64_t>& offsets, uint32_t size = 0);

}  // namespace blocksmith::carve
