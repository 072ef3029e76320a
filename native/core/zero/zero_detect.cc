#include "core/zero/zero_detect.h"

#include <cstdlib>
#include <vector>

#include "core/zero/cpu_features.h"
#include "core/zero/zero_kernels.h"

namespace blocksmith {

ZeroFn zero_kernel_fn(ZeroKernel k) noexcept {
  switch (k) {
    case ZeroKernel::portable:
      return kernels::is_zero_portable;
#if defined(__x86_64__)
    case ZeroKernel::sse2:
      return cpu_features().sse2 ? kernels::is_zero_sse2 : nullptr;
    case ZeroKernel::avx2:
      return cpu_features().avx2 ? kernels::is_zero_avx2 : nullptr;
    case ZeroKernel::avx512:
      return cpu_features().avx512f ? kernels::is_zero_avx512 : nullptr;
#else
    default:
      return nullptr;
#endif
  }
  return nullptr;
}

std::vector<ZeroKernel> available_zero_kernels() {
  std::vector<ZeroKernel> out;
  for (ZeroKernel k : {ZeroKernel::portable, ZeroKernel::sse2, ZeroKernel::avx2, ZeroKernel::avx512}) {
    if (zero_kernel_fn(k)) out.push_back(k);
  }
  return out;
}

static ZeroKernel pick_best() noexcept {
  // The environment can pin a kernel (for debugging a suspected SIMD problem).
  if (const char* forced = std::getenv("BLOCKSMITH_ZERO_KERNEL")) {
    if (auto k = parse_zero_kernel(forced); k && zero_kernel_fn(*k)) return *k;
  }
  // 256-bit vectors even where AVX-512 exists, as glibc's memchr/memcmp do
  // by default: on the Zen 5 VM this was measured on, the 512-bit kernel ran
  // at 0.68x memchr and the AVX2 one at 1.0-1.1x (bench/results/zero-detect.json);
  // 512-bit loads only pay off where they are not split or down-clocked, and a
  // memory-bound scan gains nothing from wider registers anyway.
  // BLOCKSMITH_ZERO_KERNEL=avx512 still selects it.
  auto avail = available_zero_kernels();
  if (avail.back() == ZeroKernel::avx512) avail.pop_back();
  return avail.back();
}

// Chosen once during static initialisation; read-only afterwards.
static const ZeroKernel g_kernel = pick_best();
static const ZeroFn g_fn = zero_kernel_fn(g_kernel);

ZeroKernel active_zero_kernel() noexcept { return g_kernel; }

bool is_zero(const void* p, size_t n) noexcept {
  const auto* b = static_cast<const uint8_t*>(p);
  if (n == 0) return true;
  // Sample first, middle and last byte: data blocks almost always fail here.
  if (b[0] | b[n / 2] | b[n - 1]) return false;
  return g_fn(b, n);
}

std::string_view zero_kernel_name(ZeroKernel k) noexcept {
  switch (k) {
    case ZeroKernel::portable: return "portable";
    case ZeroKernel::sse2: return "sse2";
    case ZeroKernel::avx2: return "avx2";
    case ZeroKernel::avx512: return "avx512";
  }
  return "unknown";
}

std::optional<ZeroKernel> parse_zero_kernel(std::string_view name) noexcept {
  for (ZeroKernel k : {ZeroKernel::portable, ZeroKernel::sse2, ZeroKernel::avx2, ZeroKernel::avx512}) {
    if (zero_kernel_name(k) == name) return k;
  }
  return std::nullopt;
}

}  // namespace blocksmith
