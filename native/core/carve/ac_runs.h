// Several AC symbols of a sequential scan per table lookup. Validation keeps
// no coefficient values, so what a run of symbols does to a block is only
// how many bits it takes and how far it moves the coefficient index: both
// can be looked up for the next 12 bits at once. Photos code most AC
// symbols in 3-7 bits (code and magnitude), so one lookup usually moves
// over two or three of them, where the symbol-at-a-time loop paid a table
// lookup, a refill check and two branches for each.
#pragma once

#include <cstdint>

#include "core/carve/huffman.h"

namespace blocksmith::carve {

inline constexpr int kAcRunBits = 12;

// An entry for the next kAcRunBits bits: the whole symbols (code and
// magnitude bits) that fit in them, in order, stopping after an end of
// block, before a symbol with a magnitude above 10 bits, and before the
// advance would pass 63.
//   bits 0-4   bits taken (0: not even one whole symbol: decode one at a time)
//   bits 5-11  coefficients moved over (a zero run of r and its coefficient: r + 1; ZRL: 16)
//   bit 12     the last symbol taken is an end of block
struct AcRun {
  static int bits(uint32_t e) { return int(e & 31); }
  static int advance(uint32_t e) { return int(e >> 5) & 127; }
  static bool ends_block(uint32_t e) { return (e >> 12) & 1; }
};

// The run table of an AC Huffman table, made on first use and kept per
// thread for the last 4 tables used, found again by their content (a file's
// tables are parsed anew at every check, and most cameras use the same
// ones). Valid while this thread asks for at most 3 other tables.
const uint32_t* ac_run_table(const HuffTable& t);

}  // namespace blocksmith::carve
