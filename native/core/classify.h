// The block classifier: split a buffer into fixed-size blocks and mark each
// zero or data. The last block may be short; it is judged on its own bytes.
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

// Number of blocks classify_blocks writes for `len` bytes.
inline size_t block_count(size_t len, size_t block_size) noexcept {
  return (len + block_size - 1) / block_size;
}

// Writes block_count(len, block_size) entries to `out`. Caller checks valid_block_size.
void classify_blocks(const uint8_t* buf, size_t len, size_t block_size, uint8_t* out) noexcept;

}  // namespace blocksmith
