// Seam check for a JPEG stitched from fragments: does the picture go on
// across each join, or does another photo begin there?
//
// The entropy decoder alone cannot tell: another file's data with the same
// Huffman tables decodes as well as the file's own, and can end at an EOI
// with the frame's exact MCU count. What differs is the picture. A scan codes
// each block's DC (its mean level) as a difference from the previous
// block's, so another photo's data goes on from the wrong level, and its
// content does not match the rows above anyway. So the check decodes the
// scan the joins are in again, with coefficient values, computes the pixels
// along the edges of the blocks next to each join (a partial inverse DCT),
// and compares how much the blocks decoded after the join differ from their
// neighbours above and to the left (decoded before it) with how much the
// file's own block rows before the join differ from each other.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/carve/jpeg_check.h"

namespace blocksmith::carve {

struct SeamStats {
  size_t join = 0;        // offset of the join in the file
  uint64_t unit = 0;      // first MCU decoded from bytes after the join
  size_t pairs = 0;       // adjacent blocks (above / left) across the join
  double step = 0;        // mean difference of the edge pixels of those blocks (pixel levels)
  double ref_step = 0;    // the same per block row inside the fragment before the join: 90th percentile
  double ref_max = 0;     // and the largest
  size_t ref_rows = 0;    // block rows the reference comes from
  bool ok = true;
};

struct SeamVerdict {
  bool ok = true;
  std::string reason;     // when not ok
  std::vector<SeamStats> seams;
};

// `d`: the stitched file (n bytes); `scan`: the sequential Huffman scan the
// joins fall in (frame, tables, scan header, data_start; as a ScanProbe
// gives them); `joins`: offsets in d where a fragment ends and the next one
// begins. Joins before the scan's data are not judged here. Bounds-checked:
// a scan that does not decode is a failed check, never a read outside d.
SeamVerdict check_seams(const uint8_t* d, size_t n, const ScanProbe& scan, const std::vector<size_t>& joins);

// The steps of check_seams that stand alone.

// The joins judged: inside the scan's data (after data_start, before n),
// sorted, each once.
std::vector<size_t> joins_in_scan(size_t data_start, size_t n, const std::vector<size_t>& joins);

// The decision for one measured join (its unit, pairs, step and reference
// rows) in a scan of `units` MCUs: empty when the picture goes on across it
// (or nothing after it is a whole MCU), else why not.
std::string seam_refusal(const SeamStats& st, uint64_t units);

}  // namespace blocksmith::carve
