// SSE2 / AVX2 / AVX-512 zero tests. Each ORs four vectors per step (so the
// loop is bound by loads, not by branches), then handles the tail with one
// overlapping load that ends exactly at p + n.
#if defined(__x86_64__)

#include <immintrin.h>

#include "core/zero/zero_kernels.h"

namespace blocksmith::kernels {

__attribute__((target("sse2"))) bool is_zero_sse2(const uint8_t* p, size_t n) noexcept {
  constexpr size_t W = 16;
  if (n < W) return is_zero_portable(p, n);
  const __m128i zero = _mm_setzero_si128();
  auto all_zero = [&](__m128i v) { return _mm_movemask_epi8(_mm_cmpeq_epi8(v, zero)) == 0xFFFF; };
  size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + W));
    __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 2 * W));
    __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 3 * W));
    if (!all_zero(_mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d)))) return false;
  }
  for (; i + W <= n; i += W) {
    if (!all_zero(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i)))) return false;
  }
  if (i < n) return all_zero(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + n - W)));
  return true;
}

__attribute__((target("avx2"))) static inline __m256i load256u(const uint8_t* q) noexcept {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
}
__attribute__((target("avx2"))) static inline bool zero256(__m256i v) noexcept { return _mm256_testz_si256(v, v) != 0; }

// Eight vectors (256 B) per step from a 32-byte aligned address: one
// vptest per 256 bytes, no load ever splits a cache line. The first and the
// last vector are unaligned loads that may overlap the aligned body.
__attribute__((target("avx2"))) bool is_zero_avx2(const uint8_t* p, size_t n) noexcept {
  constexpr size_t W = 32;
  if (n < W) return is_zero_sse2(p, n);
  if (!zero256(load256u(p))) return false;
  const uint8_t* end = p + n;
  const uint8_t* q = reinterpret_cast<const uint8_t*>((reinterpret_cast<uintptr_t>(p) + W) & ~uintptr_t{W - 1});
  for (; q + 8 * W <= end; q += 8 * W) {
    auto a = reinterpret_cast<const __m256i*>(q);
    __m256i v0 = _mm256_or_si256(_mm256_load_si256(a + 0), _mm256_load_si256(a + 1));
    __m256i v1 = _mm256_or_si256(_mm256_load_si256(a + 2), _mm256_load_si256(a + 3));
    __m256i v2 = _mm256_or_si256(_mm256_load_si256(a + 4), _mm256_load_si256(a + 5));
    __m256i v3 = _mm256_or_si256(_mm256_load_si256(a + 6), _mm256_load_si256(a + 7));
    __m256i v = _mm256_or_si256(_mm256_or_si256(v0, v1), _mm256_or_si256(v2, v3));
    if (!zero256(v)) return false;
  }
  for (; q + W <= end; q += W) {
    if (!zero256(_mm256_load_si256(reinterpret_cast<const __m256i*>(q)))) return false;
  }
  return q >= end || zero256(load256u(end - W));
}

__attribute__((target("avx512f"))) bool is_zero_avx512(const uint8_t* p, size_t n) noexcept {
  constexpr size_t W = 64;
  if (n < W) return is_zero_avx2(p, n);
  size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    __m512i a = _mm512_loadu_si512(p + i);
    __m512i b = _mm512_loadu_si512(p + i + W);
    __m512i c = _mm512_loadu_si512(p + i + 2 * W);
    __m512i d = _mm512_loadu_si512(p + i + 3 * W);
    __m512i v = _mm512_or_si512(_mm512_or_si512(a, b), _mm512_or_si512(c, d));
    if (_mm512_test_epi64_mask(v, v) != 0) return false;
  }
  for (; i + W <= n; i += W) {
    __m512i v = _mm512_loadu_si512(p + i);
    if (_mm512_test_epi64_mask(v, v) != 0) return false;
  }
  if (i < n) {
    __m512i v = _mm512_loadu_si512(p + n - W);
    return _mm512_test_epi64_mask(v, v) == 0;
  }
  return true;
}

}  // namespace blocksmith::kernels

#endif  // __x86_64__
