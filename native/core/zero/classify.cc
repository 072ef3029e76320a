#include "core/zero/classify.h"

#include <algorithm>

#include "core/zero/zero_detect.h"

namespace blocksmith {

bool valid_block_size(size_t bs) noexcept {
  return bs >= kMinBlockSize && bs <= kMaxBlockSize && (bs & (bs - 1)) == 0;
}

void classify_grid(const uint8_t* buf, uint64_t off, size_t len, size_t block_size, uint8_t* out) noexcept {
  const uint64_t end = off + len;
  for (uint64_t pos = off; pos < end; ++out) {
    const uint64_t block_end = std::min<uint64_t>(end, (pos / block_size + 1) * block_size);
    *out = is_zero(buf + (pos - off), static_cast<size_t>(block_end - pos)) ? kBlockZero : kBlockData;
    pos = block_end;
  }
}

}  // namespace blocksmith
