// Deterministic pseudo-random test bytes (xorshift64), shared by the carver's
// tests. `salt` picks another stream for the same seed; tests that depend on
// particular bytes (e.g. a gap that must not decode as JPEG data) keep theirs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace test_bytes {

inline std::vector<uint8_t> random_bytes(size_t n, uint32_t seed, uint64_t salt = 1) {
  std::vector<uint8_t> b(n);
  uint64_t x = seed * 0x9E3779B97F4A7C15ULL + salt;
  for (auto& v : b) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    v = uint8_t(x >> 24);
  }
  return b;
}

}  // namespace test_bytes
