// Data check: decodes one scan's entropy-coded data against the file's own
// Huffman tables (baseline, extended and progressive: DC/AC first and
// refinement passes), with restart markers in order. No IDCT: it only proves
// that the bits are a well-formed scan that ends exactly at the next marker.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/carve/jpeg_types.h"

namespace blocksmith::carve {

enum class ScanOutcome { ok, bad, need_more };

struct ScanResult {
  ScanOutcome outcome = ScanOutcome::bad;
  const uint8_t* end = nullptr;       // ok: the FF of the marker after the scan
  const uint8_t* good_end = nullptr;  // the last point known good (RSTn or MCU row end)
  const uint8_t* broke_at = nullptr;  // bad: about where decoding failed
  uint64_t good_units = 0;            // MCUs (or blocks) decoded before good_end
  const char* reason = "";
};

// Where a sequential scan's decoder stands between two MCUs: all a
// validating decoder carries from one MCU to the next (it keeps no
// coefficient values, so no DC predictors), enough to go on decoding from
// there over other bytes, such as the next fragment of a fragmented file.
struct ScanState {
  size_t byte = 0;        // offset from the scan data start of the byte holding the next bit
  int bit = 0;            // bits of that byte already used (0..7)
  uint64_t unit = 0;      // MCUs decoded
  unsigned next_rst = 0;  // the RSTn expected next (0..7)
};

// The units a scan decodes: MCUs when it interleaves components, else the
// blocks covering its one component. `blocks_per_unit` (optional) receives
// how many 8x8 blocks each unit holds.
uint64_t scan_units(const Frame& frame, const ScanHeader& scan, uint64_t* blocks_per_unit = nullptr);

// Decodes the scan whose entropy-coded data starts at p; `end` is the end of
// the bytes available, `eof` whether more could follow. The frame's
// progressive non-zero maps are updated.
// `from` (sequential scans only): start in that state instead of at MCU 0,
// its byte counted from p. `states`: receives the state after every MCU
// (bytes counted from p), the snapshots a fragment search resumes from; with
// `states_every` = k > 1 only after MCUs 1, k + 1, 2k + 1, ... (a check that
// may go on later keeps one per row: cheaper than one per MCU).
ScanResult decode_scan(const uint8_t* p, const uint8_t* end, bool eof, Frame& frame, const DecoderTables& tables,
                       const ScanHeader& scan, const ScanState* from = nullptr, std::vector<ScanState>* states = nullptr,
                       uint64_t states_every = 1);

// Structure-only walk (arithmetic / lossless data): to the first marker that
// is not FF00 or RSTn. ok with `end` at that marker, or need_more / bad.
ScanResult skip_scan(const uint8_t* p, const uint8_t* end, bool eof);

}  // namespace blocksmith::carve
