// The block classifier: split a buffer into fixed-size blocks and mark each
// zero or data. Blocks follow the source's grid (multiples of the block size
// from offset 0), so a buffer that starts or ends off the grid has a partial
// first or last block; each block is judged on its own bytes. The scan
// pipeline and isZero's block map both classify through here.
#pragma once

#include <cstddef>
#include <cstdint>

namespace blocksmith {

constexpr size_t kMinBlockSize = 512;
constexpr size_t kMaxBlockSize = 1 << 20;
constexpr size_t kDefaultBlockSize = 4096;

enum BlockClass : uint8_t { kBlockZero = 0, kBlockData = 1 };

// A power of two from 512 B to 1 MiB.
bool valid_block_size(size_t block_size) noexcept;

// Number of grid blocks that `len` bytes at source offset `off` touch.
inline size_t grid_block_count(uint64_t off, size_t len, size_t block_size) noexcept {
  if (len == 0) return 0;
  return static_cast<size_t>((off + len - 1) / block_size - off / block_size + 1);
}

// Number of blocks classify_blocks writes for `len` bytes.
inline size_t block_count(size_t len, size_t block_size) noexcept { return grid_block_count(0, len, block_size); }

// `buf` holds the `len` bytes at source offset `off`: writes
// grid_block_count(off, len, block_size) entries to `out`, one per grid
// block, in order. Caller checks valid_block_size.
void classify_grid(const uint8_t* buf, uint64_t off, size_t len, size_t block_size, uint8_t* out) noexcept;

// The same for a buffer that starts on the grid (offset 0).
inline void classify_blocks(const uint8_t* buf, size_t len, size_t block_size, uint8_t* out) noexcept {
  classify_grid(buf, 0, len, block_size, out);
}

}  // namespace blocksmith
