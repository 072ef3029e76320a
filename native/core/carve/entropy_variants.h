// The two builds of the scan decoder behind decode_scan (entropy.h): one for
// any CPU, one with BMI2 and POPCNT. Named here for the dispatch in
// entropy.cc and for the tests that prove they agree.
#pragma once

#include <cstdint>
#include <vector>

#include "core/carve/entropy.h"

namespace blocksmith::carve {

ScanResult decode_scan_portable(const uint8_t* p, const uint8_t* end, bool eof, Frame& frame,
                                const DecoderTables& tables, const ScanHeader& scan, const ScanState* from,
                                std::vector<ScanState>* states, uint64_t states_every);

#if defined(__x86_64__)
// Call only where the CPU has BMI2 and POPCNT (decode_scan checks).
ScanResult decode_scan_bmi2(const uint8_t* p, const uint8_t* end, bool eof, Frame& frame, const DecoderTables& tables,
                            const ScanHeader& scan, const ScanState* from, std::vector<ScanState>* states,
                            uint64_t states_every);
#endif

// Which build decode_scan uses: "bmi2" or "portable".
const char* scan_decoder_name();

// Pins the portable build, for tests that prove the two agree (automatic:
// the CPU decides).
enum class ScanDecoder { automatic, portable };
void use_scan_decoder(ScanDecoder d);

}  // namespace blocksmith::carve
