// The scan decoder compiled for CPUs with BMI2 and POPCNT (see
// entropy_body.inc); entropy.cc calls it only where the CPU has them.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/carve/ac_runs.h"
#include "core/carve/entropy.h"
#include "core/carve/entropy_variants.h"
#include "core/carve/huffman.h"

#if defined(__x86_64__)
#include <immintrin.h>

// Everything defined below is compiled for these instructions (the
// BitReader's inline functions, included above, are inlined into it and
// compiled the same way).
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("bmi,bmi2,popcnt,lzcnt"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("bmi,bmi2,popcnt,lzcnt")
#endif

namespace blocksmith::carve::bmi2_isa {

inline int bit_count(uint64_t x) { return static_cast<int>(_mm_popcnt_u64(x)); }

// PDEP deposits the single bit 1 << n at the position of x's (n+1)-th set bit.
inline uint64_t nth_set_bit(uint64_t x, int n) { return _pdep_u64(uint64_t(1) << n, x); }

#include "core/carve/entropy_body.inc"

}  // namespace blocksmith::carve::bmi2_isa

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

namespace blocksmith::carve {

ScanResult decode_scan_bmi2(const uint8_t* p, const uint8_t* end, bool eof, Frame& frame, const DecoderTables& tables,
                            const ScanHeader& scan, const ScanState* from, std::vector<ScanState>* states,
                            uint64_t states_every) {
  return bmi2_isa::decode_scan(p, end, eof, frame, tables, scan, from, states, states_every);
}

}  // namespace blocksmith::carve

#endif  // x86-64: elsewhere only the portable build exists
