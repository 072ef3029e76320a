// SHA-256 compression with the x86 SHA extensions (SHA-NI). Only this function
// is compiled for sha/sse4.1 (target attribute), so the rest of the build keeps
// its baseline flags; Sha256 calls it only when the CPU reports both.
//
// The SHA-NI instructions keep the eight working variables in two registers,
// lanes listed from 3 down to 0: "ABEF" = {A,B,E,F} and "CDGH" = {C,D,G,H}.
// sha256rnds2(cdgh, abef, wk) runs two rounds with wk lanes 0 and 1 (W+K for
// rounds t, t+1) and returns the new ABEF; the new CDGH is the old ABEF.
// sha256msg1/msg2 compute the message schedule (FIPS 180-4 6.2.2 step 1):
// msg1(W[t-16..t-13], W[t-12..t-9]) adds sigma0 of W[t-15..t-12], the caller
// adds W[t-7..t-4], and msg2(that, W[t-4..t-1]) adds sigma1 of W[t-2..t+1].
#include "core/carve/sha256_blocks.h"

#if defined(__x86_64__)

#include <immintrin.h>

namespace blocksmith::carve::detail {

__attribute__((target("sha,sse4.1"))) void sha256_blocks_shani(uint32_t state[8], const uint8_t* p, size_t blocks) {
  // state is {A,B,C,D,E,F,G,H} in memory: lane 0 of a load is the lower index.
  __m128i abcd = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state));      // lanes 0..3 = A,B,C,D
  __m128i efgh = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state + 4));  // E,F,G,H
  __m128i badc = _mm_shuffle_epi32(abcd, 0xB1);  // lanes 0..3 = B,A,D,C
  __m128i hgfe = _mm_shuffle_epi32(efgh, 0x1B);  // H,G,F,E
  __m128i abef = _mm_alignr_epi8(badc, hgfe, 8);      // F,E,B,A
  __m128i cdgh = _mm_blend_epi16(hgfe, badc, 0xF0);  // H,G,D,C

  // Words are big-endian in the message: reverse the bytes of each 32-bit lane.
  const __m128i bswap = _mm_set_epi8(12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3);
  const __m128i* k = reinterpret_cast<const __m128i*>(kSha256K);

  for (; blocks > 0; blocks--, p += 64) {
    const __m128i abef_in = abef, cdgh_in = cdgh;
    // w0..w3 hold W[4j..4j+3] .. W[4j+12..4j+15] for the group j being run.
    __m128i w0 = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), bswap);
    __m128i w1 = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16)), bswap);
    __m128i w2 = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 32)), bswap);
    __m128i w3 = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 48)), bswap);
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++) {
      __m128i wk = _mm_add_epi32(w0, _mm_loadu_si128(k + j));
      cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk);           // rounds 4j, 4j+1: cdgh is now the new ABEF
      wk = _mm_shuffle_epi32(wk, 0x0E);                       // W+K of rounds 4j+2, 4j+3 into lanes 0, 1
      abef = _mm_sha256rnds2_epu32(abef, cdgh, wk);           // rounds 4j+2, 4j+3
      if (j < 12) {
        // W[t..t+3] for t = 4j+16: W[t-16] + sigma0(W[t-15]) + W[t-7] + sigma1(W[t-2]).
        __m128i w_minus7 = _mm_alignr_epi8(w3, w2, 4);  // W[4j+9..4j+12]
        __m128i next = _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32(w0, w1), w_minus7), w3);
        w0 = w1; w1 = w2; w2 = w3; w3 = next;
      } else {
        w0 = w1; w1 = w2; w2 = w3;
      }
    }
    abef = _mm_add_epi32(abef, abef_in);
    cdgh = _mm_add_epi32(cdgh, cdgh_in);
  }

  __m128i abef_rev = _mm_shuffle_epi32(abef, 0x1B);  // lanes 0..3 = A,B,E,F
  __m128i ghcd = _mm_shuffle_epi32(cdgh, 0xB1);      // G,H,C,D
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state), _mm_blend_epi16(abef_rev, ghcd, 0xF0));     // A,B,C,D
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state + 4), _mm_alignr_epi8(ghcd, abef_rev, 8));  // E,F,G,H
}

}  // namespace blocksmith::carve::detail

#endif  // __x86_64__
