// The scan decoder for any CPU (see entropy_body.inc).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/carve/ac_runs.h"
#include "core/carve/entropy.h"
#include "core/carve/entropy_variants.h"
#include "core/carve/huffman.h"

namespace blocksmith::carve::portable_isa {

// Inline: the build targets baseline x86-64 (no POPCNT), where the builtin is
// a libgcc call (4% of a carve's CPU on big.img).
inline int bit_count(uint64_t x) {
  x -= (x >> 1) & 0x5555555555555555ULL;
  x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
  x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
  return static_cast<int>((x * 0x0101010101010101ULL) >> 56);
}

inline uint64_t nth_set_bit(uint64_t x, int n) {
  for (int i = 0; i < n && x; i++) x &= x - 1;
  return x & (~x + 1);
}

#include "core/carve/entropy_body.inc"

}  // namespace blocksmith::carve::portable_isa

namespace blocksmith::carve {

ScanResult decode_scan_portable(const uint8_t* p, const uint8_t* end, bool eof, Frame& frame,
                                const DecoderTables& tables, const ScanHeader& scan, const ScanState* from,
                                std::vector<ScanState>* states, uint64_t states_every) {
  return portable_isa::decode_scan(p, end, eof, frame, tables, scan, from, states, states_every);
}

}  // namespace blocksmith::carve
