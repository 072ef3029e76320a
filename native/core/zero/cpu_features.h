// What the running CPU can do, read once. Used to pick the zero-detection kernel
// and the SHA-256 code (SHA-NI).
#pragma once

namespace blocksmith {

struct CpuFeatures {
  bool sse2 = false;
  bool avx2 = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool sse41 = false;
  bool sha = false;  // x86 SHA extensions (SHA-NI)
};

const CpuFeatures& cpu_features();

}  // namespace blocksmith
