// One JPEG candidate, PhotoRec's three stages:
//   header_check - can these bytes start a JPEG at all (cheap, 4+ bytes)
//   check_jpeg   - walks the marker segments and, for each scan, runs the
//                  data check (entropy.h) to find where the image really ends
//   file_check   - turns the walk's outcome into complete / partial / reject
// Pure functions over a byte span: no I/O, every access bounds-checked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/carve/entropy.h"
#include "core/carve/exif.h"
#include "core/carve/jpeg_types.h"

namespace blocksmith::carve {

enum class Status { reject, complete, partial, need_more };
const char* status_name(Status s);

struct JpegInfo {
  int width = 0, height = 0, components = 0, precision = 0;
  uint8_t sof = 0;
  bool progressive = false, arithmetic = false, lossless = false;
  unsigned restart_interval = 0;
  int scans = 0;
  bool decoded = false;  // entropy data decoded (false: arithmetic/lossless, structure only)
  ExifFields exif;
  bool has_exif = false;
  // [begin, end) of every APPn payload (offsets in the span): embedded thumbnails live there.
  std::vector<std::pair<size_t, size_t>> app_payloads;
  // MPF (APP2 "MPF\0", CIPA DC-007): [offset, length] in the span of each
  // image after the first (MPO stereo pairs, camera previews).
  std::vector<std::pair<size_t, size_t>> mpf_images;
  bool mpf_included = false;  // the file was extended over them (all checked complete)
};

// What a fragment search needs from the sequential Huffman scan whose data
// stopped decoding: the decoder's inputs and its state after every MCU
// before the break (reassemble.h resumes from one of them).
struct ScanProbe {
  bool valid = false;      // a sequential Huffman scan broke (else nothing below is set)
  size_t data_start = 0;   // offset in the span of that scan's entropy-coded data
  size_t broke_at = 0;     // offset in the span where decoding failed
  Frame frame;
  DecoderTables tables;
  ScanHeader scan;
  std::vector<ScanState> states;  // bytes counted from data_start
};

// Where a check that needed more bytes can go on from, so that bytes are not
// decoded again (the carver keeps it with a candidate while more come): the
// check's state where the scan that ran out begins and, in a sequential
// Huffman scan, the decoder's state two MCU rows or more before the bytes ran
// out (what decides the outcome from there on is then the same as for a
// check from the start). Only for the same bytes, longer.
struct CheckWalk;
struct CheckResume {
  std::shared_ptr<const CheckWalk> walk;  // null: from the start
  size_t scan_data = 0;                   // offset of that scan's entropy-coded data in the span; 0: none
  ScanState state;                        // its byte counted from there
  // Memory for the next state kept (its vectors are reused: a snapshot in
  // fresh memory cost a page fault per page). Keep it between candidates.
  std::shared_ptr<CheckWalk> spare;
  // Forget where a candidate stopped (for the next one), keeping `spare`.
  void clear() {
    walk.reset();
    scan_data = 0;
    state = ScanState{};
  }
};

struct CheckOptions {
  // A partial needs at least this many verified bytes of entropy-coded data;
  // less is indistinguishable from a header followed by garbage (a decoy).
  size_t min_partial_entropy = 1024;
  // When set, filled in for a sequential scan that breaks (costs a push per MCU).
  ScanProbe* probe = nullptr;
  // Fill `probe` (without states) for the last sequential Huffman scan that
  // decodes too: what seam.h needs to look at a whole stitched file again.
  bool probe_whole = false;
  // Bounds on a hostile file's cost. Real progressive files have ~10 scans;
  // an AC scan of a few bytes (one EOBRUN) can cover 32767 blocks, so scans
  // are capped and the blocks decoded over all scans too (a 100-megapixel
  // progressive photo decodes ~30 million).
  unsigned max_scans = 1000;
  uint64_t max_decoded_blocks = uint64_t(1) << 28;
  // In: where an earlier check of the same bytes stopped (need_more); out,
  // after need_more: where the next check can go on from. Null: none.
  CheckResume* resume = nullptr;
};

struct CheckResult {
  Status status = Status::reject;
  size_t length = 0;      // complete: SOI..EOI; partial: the cut (last good RSTn / MCU row)
  size_t broke_at = 0;    // partial: about where the data went bad
  // End of the marker segments before the first scan, when the header was
  // whole (frame + scan header): a rejected or partial candidate's embedded
  // JPEGs are not carved on their own, so the search resumes there. 1 otherwise.
  size_t header_end = 1;
  std::string reason;     // partial / reject: why
  JpegInfo info;
};

bool header_check(const uint8_t* d, size_t n);

// `eof`: nothing follows d[n) (end of source or the size limit).
CheckResult check_jpeg(const uint8_t* d, size_t n, bool eof, const CheckOptions& opt = {});

}  // namespace blocksmith::carve
