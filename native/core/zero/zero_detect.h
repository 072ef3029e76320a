// Zero detection with a kernel chosen once, at load, from what the CPU offers
// (AVX2 > SSE2 > portable; AVX-512 only when asked for, see pick_best). Tests and benchmarks may name a kernel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace blocksmith {

enum class ZeroKernel { portable, sse2, avx2, avx512 };

using ZeroFn = bool (*)(const uint8_t*, size_t) noexcept;

// True when all n bytes at p are zero (n == 0 is zero). Uses the chosen kernel
// after checking a few sample bytes, so data is usually rejected at once.
bool is_zero(const void* p, size_t n) noexcept;

ZeroKernel active_zero_kernel() noexcept;
std::vector<ZeroKernel> available_zero_kernels();   // those this CPU can run, slowest first
ZeroFn zero_kernel_fn(ZeroKernel k) noexcept;       // nullptr when this CPU cannot run it
std::string_view zero_kernel_name(ZeroKernel k) noexcept;
std::optional<ZeroKernel> parse_zero_kernel(std::string_view name) noexcept;

}  // namespace blocksmith
