// SHA-256 (FIPS 180-4), streaming. For carved files' report hashes and --dedupe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace blocksmith::carve {

class Sha256 {
 public:
  // Auto uses the CPU's SHA instructions when it has them (x86-64 SHA-NI),
  // else the portable code; Portable forces the latter (tests compare them).
  enum class Kernel { Auto, Portable };
  explicit Sha256(Kernel kernel = Kernel::Auto);
  static bool hardware_available();  // whether Auto picks the SHA-NI code here
  void update(const uint8_t* data, size_t len);
  std::array<uint8_t, 32> digest();
  std::string hex();  // lower-case hex of digest()

 private:
  using Blocks = void (*)(uint32_t state[8], const uint8_t* p, size_t blocks);
  Blocks blocks_;
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

std::string sha256_hex(const uint8_t* data, size_t len);

}  // namespace blocksmith::carve
