// What the running CPU can do, read once. Used to pick the zero-detection kernel.
#pragma once

namespace blocksmith {

struct CpuFeatures {
  bool sse2 = false;
  bool avx2 = false;
  bool avx512f = false;
  bool avx512bw = false;
};

const CpuFeatures& cpu_features();

}  // namespace blocksmith
