#include "core/carve/entropy.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "core/carve/entropy_variants.h"
#include "core/zero/cpu_features.h"

namespace blocksmith::carve {

ScanResult skip_scan(const uint8_t* p, const uint8_t* end, bool eof) {
  ScanResult r;
  r.good_end = p;
  while (true) {
    const void* hit = std::memchr(p, 0xFF, static_cast<size_t>(end - p));
    if (!hit) break;
    const uint8_t* q = static_cast<const uint8_t*>(hit);
    if (q + 1 >= end) break;
    uint8_t m = q[1];
    if (m == 0x00 || (m >= 0xD0 && m <= 0xD7)) {
      p = q + 2;
      r.good_end = p;
      continue;
    }
    if (m == 0xFF) {
      p = q + 1;
      continue;
    }
    r.outcome = ScanOutcome::ok;
    r.end = q;
    r.good_end = q;
    return r;
  }
  r.outcome = eof ? ScanOutcome::bad : ScanOutcome::need_more;
  r.broke_at = end;
  r.reason = "entropy-coded data runs to the end of the source";
  return r;
}

uint64_t scan_units(const Frame& frame, const ScanHeader& scan, uint64_t* blocks_per_unit) {
  uint64_t per_unit = 1;
  uint64_t units = 0;
  if (scan.ns > 1) {
    per_unit = 0;
    for (int i = 0; i < scan.ns; i++) per_unit += uint64_t(frame.comp[scan.cidx[i]].h) * frame.comp[scan.cidx[i]].v;
    units = uint64_t(frame.mcux) * uint64_t(frame.mcuy);
  } else {
    const Component& c0 = frame.comp[scan.cidx[0]];
    units = uint64_t(c0.bw_real) * uint64_t(c0.bh_real);
  }
  if (blocks_per_unit) *blocks_per_unit = per_unit;
  return units;
}

namespace {

bool cpu_runs_bmi2_decoder() {
#if defined(__x86_64__)
  static const bool can = cpu_features().bmi2 && cpu_features().popcnt;
#else
  static const bool can = false;
#endif
  return can;
}

std::atomic<ScanDecoder> pinned{ScanDecoder::automatic};

bool use_bmi2_decoder() {
  return pinned.load(std::memory_order_relaxed) == ScanDecoder::automatic && cpu_runs_bmi2_decoder();
}

}  // namespace

void use_scan_decoder(ScanDecoder d) { pinned.store(d, std::memory_order_relaxed); }

const char* scan_decoder_name() { return use_bmi2_decoder() ? "bmi2" : "portable"; }

ScanResult decode_scan(const uint8_t* p, const uint8_t* end, bool eof, Frame& frame, const DecoderTables& tables,
                       const ScanHeader& scan, const ScanState* from, std::vector<ScanState>* states,
                       uint64_t states_every) {
#if defined(__x86_64__)
  if (use_bmi2_decoder()) return decode_scan_bmi2(p, end, eof, frame, tables, scan, from, states, states_every);
#endif
  return decode_scan_portable(p, end, eof, frame, tables, scan, from, states, states_every);
}

}  // namespace blocksmith::carve
