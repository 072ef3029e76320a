// The allocation unit a fragment search steps by: from the filesystem when
// one is recognised at the start of the source (FAT boot sector, ext
// superblock), else from where the JPEGs found start (files begin on block
// boundaries, so their offsets share the block size as a factor).
#pragma once

#include <cstdint>
#include <vector>

#include "../reader.h"

namespace blocksmith::carve {

// FAT cluster or ext block size in bytes; 0 when neither is recognised.
uint32_t filesystem_block_size(Reader& src);

// The largest power of two from 512 to 4 KiB dividing at least 80% of the
// offsets; 512 when there are none or too few agree. Not above 4 KiB: a few
// files placed far apart share large factors by chance, and a block size
// too large misses fragment ends, while one too small only costs time.
uint32_t offsets_block_size(const std::vector<uint64_t>& offsets);

}  // namespace blocksmith::carve
