// SHA-256 (FIPS 180-4), streaming. For carved files' report hashes and --dedupe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace blocksmith::carve {

class Sha256 {
 public:
  Sha256();
  void update(const uint8_t* data, size_t len);
  std::array<uint8_t, 32> digest();
  std::string hex();  // lower-case hex of digest()

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

std::string sha256_hex(const uint8_t* data, size_t len);

}  // namespace blocksmith::carve
