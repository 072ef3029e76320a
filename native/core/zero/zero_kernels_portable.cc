// Portable zero test: 64-bit words, four OR-ed per step. Correct on any
// 64-bit CPU (aarch64 included); compilers may vectorise it further.
#include <cstring>

#include "core/zero/zero_kernels.h"

namespace blocksmith::kernels {

static inline uint64_t load64(const uint8_t* p) noexcept {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);  // unaligned-safe, compiles to one load
  return v;
}

bool is_zero_portable(const uint8_t* p, size_t n) noexcept {
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    if ((load64(p + i) | load64(p + i + 8) | load64(p + i + 16) | load64(p + i + 24)) != 0) {
      return false;
    }
  }
  for (; i + 8 <= n; i += 8) {
    if (load64(p + i) != 0) return false;
  }
  for (; i < n; ++i) {
    if (p[i] != 0) return false;
  }
  return true;
}

bool is_zero_memchr_reference(const uint8_t* p, size_t n) noexcept {
  // Finds the first byte equal to 1; on an all-zero buffer it reads everything,
  // which is exactly the work a zero test does. Used as a speed yardstick.
  return std::memchr(p, 1, n) == nullptr;
}

// Keep the compiler from turning the reference loop into SIMD: it is meant to
// measure what a naive implementation costs.
#if defined(__clang__)
bool is_zero_byte_loop_reference(const uint8_t* p, size_t n) noexcept {
#pragma clang loop vectorize(disable)
  for (size_t i = 0; i < n; ++i) {
#else
__attribute__((optimize("no-tree-vectorize"))) bool is_zero_byte_loop_reference(
    const uint8_t* p, size_t n) noexcept {
  for (size_t i = 0; i < n; ++i) {
#endif
    if (p[i] != 0) return false;
  }
  return true;
}

}  // namespace blocksmith::kernels
