// What the running CPU can do, read once. Used to pick the zero-detection kernel
// the SHA-256 code (SHA-NI) and the JPEG scan decoder (BMI2, POPCNT).
#pragma once

namespace blocksmith {

struct CpuFeatures {
  bool sse2 = false;
  bool avx2 = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool sse41 = false;
  bool sha = false;  // x86 SHA extensions (SHA-NI)
  bool bmi2 = false;
  bool popcnt = false;
};

const CpuFeatures& cpu_features();

}  // namespace blocksmith
