#include "classify.h"

#include <algorithm>

#include "zero_detect.h"

namespace blocksmith {

bool valid_block_size(size_t bs) noexcept {
  return bs >= kMinBlockSize && bs <= kMaxBlockSize && (bs & (bs - 1)) == 0;
}

void classify_blocks(const uint8_t* buf, size_t len, size_t block_size, uint8_t* out) noexcept {
  for (size_t off = 0, i = 0; off < len; off += block_size, ++i) {
    out[i] = is_zero(buf + off, std::min(block_size, len - off)) ? kBlockZero : kBlockData;
  }
}

}  // namespace blocksmith
