// Internal to carve/sha256*: the SHA-256 compression function over whole
// 64-byte blocks, in a portable and (x86-64) a SHA-NI version. Several blocks
// per call so that the SHA-NI version keeps the state in registers between them.
#pragma once

#include <cstddef>
#include <cstdint>

namespace blocksmith::carve::detail {

// Compresses `blocks` consecutive 64-byte blocks at `p` into state[8] (H0..H7).
using Sha256Blocks = void (*)(uint32_t state[8], const uint8_t* p, size_t blocks);

extern const uint32_t kSha256K[64];  // FIPS 180-4 section 4.2.2

void sha256_blocks_portable(uint32_t state[8], const uint8_t* p, size_t blocks);

#if defined(__x86_64__)
// Only callable when cpu_features().sha and .sse41 are set.
void sha256_blocks_shani(uint32_t state[8], const uint8_t* p, size_t blocks);
#endif

}  // namespace blocksmith::carve::detail
