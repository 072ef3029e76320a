#include "core/carve/signature.h"

#include <cstring>

namespace blocksmith::carve {

bool is_soi_candidate(const uint8_t* p) {
  if (p[0] != 0xFF || p[1] != 0xD8 || p[2] != 0xFF) return false;
  uint8_t m = p[3];
  return (m >= 0xE0 && m <= 0xEF) || m == 0xDB || m == 0xC4 || m == 0xDD || m == 0xFE ||
         (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC);
}

size_t find_soi(const uint8_t* data, size_t n, size_t from, uint64_t base, uint32_t align) {
  if (n < 4) return SIZE_MAX;
  size_t last = n - 4;  // last start with 4 bytes available
  if (align > 1) {
    uint64_t rem = (base + from) % align;
    size_t i = from + (rem ? align - rem : 0);
    for (; i <= last; i += align)
      if (is_soi_candidate(data + i)) return i;
    return SIZE_MAX;
  }
  size_t i = from;
  while (i <= last) {
    // D8 is rarer than FF in real data (FF runs in images, fill bytes).
    const void* hit = std::memchr(data + i + 1, 0xD8, last + 1 - i);
    if (!hit) return SIZE_MAX;
    size_t j = static_cast<const uint8_t*>(hit) - data - 1;
    if (is_soi_candidate(data + j)) return j;
    i = j + 1;
  }
  return SIZE_MAX;
}

}  // namespace blocksmith::carve
