#include "block_size.h"

#include <cstring>

#include "../error.h"

namespace blocksmith::carve {
namespace {

bool pow2(uint32_t v) { return v && (v & (v - 1)) == 0; }
uint32_t le16(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8; }
uint32_t le32(const uint8_t* p) { return le16(p) | le16(p + 2) << 16; }

}  // namespace

uint32_t filesystem_block_size(Reader& src) {
  uint8_t b[2048] = {};
  size_t n = 0;
  try {
    n = src.read_at(b, sizeof b, 0);
  } catch (const Error&) {
    return 0;  // an unreadable first sector: fall back to the offsets
  }
  if (n >= 512 && b[510] == 0x55 && b[511] == 0xAA &&
      (std::memcmp(b + 54, "FAT", 3) == 0 || std::memcmp(b + 82, "FAT32", 5) == 0)) {
    uint32_t bps = le16(b + 11), spc = b[13];
    if (pow2(bps) && bps >= 512 && bps <= 4096 && pow2(spc)) return bps * spc;
  }
  if (n >= 2048 && le16(b + 1024 + 56) == 0xEF53) {
    uint32_t log = le32(b + 1024 + 24);
    if (log <= 6) return 1024u << log;
  }
  return 0;
}

uint32_t offsets_block_size(const std::vector<uint64_t>& offsets) {
  if (offsets.empty()) return 512;
  for (uint32_t b = 4096; b > 512; b >>= 1) {
    size_t agree = 0;
    for (uint64_t o : offsets) agree += o % b == 0;
    if (agree * 5 >= offsets.size() * 4) return b;
  }
  return 512;
}

}  // namespace blocksmith::carve
