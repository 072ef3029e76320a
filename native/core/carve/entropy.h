// Data check: decodes one scan's entropy-coded data against the file's own
// Huffman tables (baseline, extended and progressive: DC/AC first and
// refinement passes), with restart markers in order. No IDCT: it only proves
// that the bits are a well-formed scan that ends exactly at the next marker.
#pragma once

#include <cstddef>
#include <cstdint>

#include "jpeg_types.h"

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

// Decodes the scan whose entropy-coded data starts at p; `end` is the end of
// the bytes available, `eof` whether more could follow. The frame's
// progressive non-zero maps are updated.
ScanResult decode_scan(const uint8_t* p, const uint8_t* end, bool eof, Frame& frame, const DecoderTables& tables,
                       const ScanHeader& scan);

// Structure-only walk (arithmetic / lossless data): to the first marker that
// is not FF00 or RSTn. ok with `end` at that marker, or need_more / bad.
ScanResult skip_scan(const uint8_t* p, const uint8_t* end, bool eof);

}  // namespace blocksmith::carve
