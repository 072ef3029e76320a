// Fuzz harness: every zero kernel and the block classifier agree with a plain
// byte loop on arbitrary bytes, block sizes and alignments.
//
// Input layout: byte 0 picks the block size (512 << (b % 12)), byte 1 the
// misalignment (0..63), byte 2 the buffer's source offset (its grid phase,
// in 97-byte steps); the rest is the buffer.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/zero/classify.h"
#include "core/zero/zero_detect.h"

using namespace blocksmith;

static bool zero_by_loop(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (p[i]) return false;
  return true;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const size_t block = size_t{512} << (data[0] % 12);
  const size_t shift = data[1] % 64;
  const uint64_t phase = uint64_t{data[2]} * 97;
  data += 3;
  size -= 3;
  // Copy to a buffer of exactly the input's size at the chosen misalignment,
  // so ASan catches any kernel that reads past the end.
  std::vector<uint8_t> storage(size + shift);
  uint8_t* buf = storage.data() + shift;
  if (size) std::memcpy(buf, data, size);
  storage.resize(size + shift);

  const bool expect = zero_by_loop(buf, size);
  if (is_zero(buf, size) != expect) std::abort();
  for (ZeroKernel k : available_zero_kernels()) {
    ZeroFn fn = zero_kernel_fn(k);
    if (!fn) continue;
    if (fn(buf, size) != expect) std::abort();
    // Every prefix length that ends near the end exercises the tail paths.
    for (size_t cut = size > 130 ? size - 130 : 0; cut < size; ++cut)
      if (fn(buf, cut) != zero_by_loop(buf, cut)) std::abort();
  }

  std::vector<uint8_t> classes(block_count(size, block));
  classify_blocks(buf, size, block, classes.data());
  for (size_t b = 0; b < classes.size(); ++b) {
    const size_t off = b * block;
    const size_t len = off + block <= size ? block : size - off;
    const uint8_t want = zero_by_loop(buf + off, len) ? kBlockZero : kBlockData;
    if (classes[b] != want) std::abort();
  }

  // On the source's grid from `phase`: the first and last blocks may be partial.
  std::vector<uint8_t> grid(grid_block_count(phase, size, block) + 1, 0xEE);
  classify_grid(buf, phase, size, block, grid.data());
  if (grid.back() != 0xEE) std::abort();  // wrote exactly grid_block_count entries
  size_t b = 0;
  for (uint64_t pos = phase, end = phase + size; pos < end; ++b) {
    const uint64_t block_end = std::min<uint64_t>(end, (pos / block + 1) * block);
    const uint8_t want = zero_by_loop(buf + (pos - phase), block_end - pos) ? kBlockZero : kBlockData;
    if (grid[b] != want) std::abort();
    pos = block_end;
  }
  if (b + 1 != grid.size()) std::abort();
  return 0;
}
