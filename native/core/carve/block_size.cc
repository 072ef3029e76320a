#include "core/carve/block_size.h"

#include <cstring>
#include <map>

#include "core/base/error.h"

namespace blocksmith::carve {
namespace {

bool pow2(uint32_t v) { return v && (v & (v - 1)) == 0; }
uint32_t le16(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8; }
uint32_t le32(const uint8_t* p) { return le16(p) | le16(p + 2) << 16; }

}  // namespace

BlockGrid filesystem_grid(Reader& src) {
  uint8_t b[2048] = {};
  size_t n = 0;
  try {
    n = src.read_at(b, sizeof b, 0);
  } catch (const Error&) {
    return {};  // an unreadable first sector: fall back to the offsets
  }
  if (n >= 512 && b[510] == 0x55 && b[511] == 0xAA &&
      (std::memcmp(b + 54, "FAT", 3) == 0 || std::memcmp(b + 82, "FAT32", 5) == 0)) {
    uint32_t bps = le16(b + 11), spc = b[13];
    if (pow2(bps) && bps >= 512 && bps <= 4096 && pow2(spc)) {
      // The data region (cluster 2) follows the reserved sectors, the FATs and (FAT12/16) the root directory.
      uint64_t fat_sectors = le16(b + 22) ? le16(b + 22) : le32(b + 36);
      uint64_t root_sectors = (uint64_t(le16(b + 17)) * 32 + bps - 1) / bps;
      uint64_t data = (le16(b + 14) + uint64_t(b[16]) * fat_sectors + root_sectors) * bps;
      uint32_t size = bps * spc;
      return {size, data % size};
    }
  }
  if (n >= 2048 && le16(b + 1024 + 56) == 0xEF53) {
    uint32_t log = le32(b + 1024 + 24);
    if (log <= 6) return {1024u << log, 0};
  }
  return {};
}

BlockGrid offsets_grid(const std::vector<uint64_t>& offsets, uint32_t size) {
  BlockGrid g{size ? size : 512, 0};
  if (offsets.empty()) return g;
  if (!size) {
    for (uint32_t b = 4096; b > 512; b >>= 1) {
      size_t agree = 0;
      for (uint64_t o : offsets) agree += o % b == 0;
      if (agree * 5 >= offsets.size() * 4) {
        g.size = b;
        break;
      }
    }
  }
  std::map<uint64_t, size_t> phases;
  for (uint64_t o : offsets) phases[o % g.size]++;
  size_t best = 0;
  for (auto [p, count] : phases)
    if (count > best) {
      best = count;
      g.phase = p;
    }
  return g;
}

}  // namespace blocksmith::carve
