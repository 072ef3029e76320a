// The zero-test kernels, one per instruction set. Each answers "are all n
// bytes at p zero?" for any alignment and any n (including 0). The x86
// kernels are compiled with per-function target attributes so one binary
// carries them all; zero_detect.cc picks one at load.
#pragma once

#include <cstddef>
#include <cstdint>

namespace blocksmith::kernels {

bool is_zero_portable(const uint8_t* p, size_t n) noexcept;

#if defined(__x86_64__)
bool is_zero_sse2(const uint8_t* p, size_t n) noexcept;
bool is_zero_avx2(const uint8_t* p, size_t n) noexcept;
bool is_zero_avx512(const uint8_t* p, size_t n) noexcept;
#endif

// Reference points for benchmarks and tests only (never dispatched to):
// glibc's memchr looking for a byte 1 (hand-tuned SIMD, near memory bandwidth
// on a zero buffer) and a plain byte-at-a-time loop.
bool is_zero_memchr_reference(const uint8_t* p, size_t n) noexcept;
bool is_zero_byte_loop_reference(const uint8_t* p, size_t n) noexcept;

}  // namespace blocksmith::kernels
