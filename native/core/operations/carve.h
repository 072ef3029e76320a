// The scan driver: reads the source once through the scan pipeline
// (scan_pipeline.h: large sequential reads ahead of the search, direct reads
// when cold), finds candidates (signature.h), checks each (jpeg_check.h) and
// writes complete files to OUTDIR, partial ones to OUTDIR/partial,
// thumbnails (optional) to OUTDIR/thumbnails, all named by byte offset. The
// source is only read, through a Reader. EIO is skipped in sector steps and
// recorded.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/pipeline/control.h"
#include "core/pipeline/reader.h"
#include "core/carve/jpeg_check.h"
#include "core/carve/reassemble.h"
#include "core/guest_fs/scan_scope.h"

namespace blocksmith::carve {

struct CarveReport;

struct CarveOptions {
  std::string out_dir;             // must exist; partial/ and thumbnails/ are made when needed
  uint64_t offset = 0;             // first byte where candidates are looked for
  uint64_t length = 0;             // 0: to the end of the source, unless length_set
  bool length_set = false;         // length is the range's length even when 0 (a resumed run with only held candidates left)
  uint32_t sector_size = 1;        // candidates only at multiples of this (1: every byte)
  uint32_t io_sector = 512;        // EIO is retried and skipped in steps of this
  uint64_t min_size = 0;           // smaller files are not written
  int min_width = 0, min_height = 0;
  uint64_t max_size = uint64_t(256) << 20;  // a JPEG longer than this is cut there
  size_t chunk_size = size_t(16) << 20;  // the pipeline's pieces (read ahead, searched where they lie)
  bool dedupe = false;             // skip files whose sha256 was already written
  bool thumbnails = false;         // also write embedded JPEGs of complete files
  bool partials = true;            // write partial files
  bool use_seek_hole = true;
  bool direct_io = true;           // read what is not in the page cache around it (ScanOptions::direct)
  bool write = true;               // false: report only (dry run, benchmarks of the scan)
  // Scan threads: the range is split into this many parts scanned in
  // parallel (0: one per CPU, at most 4; ranges under 64 MiB and --dedupe use one).
  unsigned threads = 0;
  // Fragment search (reassemble.h) for candidates whose data broke, after
  // the scan; what it does not recover stays partial.
  bool reassemble = true;
  uint32_t block_size = 0;                 // 0: from the filesystem, else from the files' offsets
  uint64_t max_gap = uint64_t(32) << 20;   // farthest a continuation may start after a fragment end
  uint64_t max_attempts = 50000;           // decodes tried per broken file
  // Which bytes are scanned (guest_fs/scan_scope.h): "free" (what no live
  // file or filesystem structure owns), "allocated", "all", or "auto": free
  // when the filesystems in the range are recognised and consistent, else
  // all. Skipped bytes are not read; a candidate that runs into them ends
  // there, and no fragment continuation is taken from them.
  std::string scope = "auto";
  // Scope free: further ranges not to scan (what an undelete already recovered).
  std::vector<fs::ByteRange> exclude;
  // A resumed run: where the whole carve started (the scope's byte counts
  // cover [min(range_start, offset), end)).
  uint64_t range_start = UINT64_MAX;
  // Set by carve() from the scope: the ranges the pipeline skips (not an option).
  const fs::FreeMap* skip = nullptr;

  // A resumed run (--resume) continues from what the interrupted one left
  // (its CarveReport's held and recovered, kept in report.json):
  bool keep_identical = false;             // a file already there with the same bytes counts as written
  std::vector<uint64_t> held;              // candidates held for the fragment search before `offset`, checked again
  std::vector<Fragment> recovered;         // files recovered before `offset` (the search's claims)
  std::vector<std::pair<std::string, uint64_t>> known;  // sha256 -> offset of files written before (dedupe)
  // Called from the scan thread about once a second and once before the
  // fragment search, with a state a resumed run can continue from (see
  // CarveReport): every file before next_offset has been passed to on_file
  // first, and held/recovered cover everything before it.
  std::function<void(const CarveReport&)> checkpoint;
};

struct CarvedFile {
  uint64_t offset = 0, length = 0;
  Status status = Status::complete;
  std::string kind;       // "complete" | "reassembled" | "partial" | "thumbnail" | "duplicate"
  std::string path;       // relative to out_dir; empty for a duplicate
  std::string sha256;
  std::string duplicate_of;
  uint64_t broke_at = 0;  // partial: absolute offset where the data went bad
  std::string reason;
  uint64_t parent = 0;    // thumbnail: offset of the outer file
  std::vector<Fragment> fragments;  // reassembled: where its bytes lie, in file order
  uint64_t header_end = 0;          // a candidate held for the search: where its whole marker segments end (0: not whole)
  JpegInfo info;
};

struct CarveReport {
  std::string source;
  uint64_t size = 0;
  uint64_t start = 0, end = 0;   // scanned range [start, end)
  uint64_t next_offset = 0;      // where a resumed run continues (== end when finished)
  uint64_t bytes_scanned = 0;    // bytes actually read
  fs::ScopeReport scope;         // the scope used, why, and the bytes in and out of it
  uint64_t candidates = 0, complete = 0, partial = 0, rejected = 0, filtered = 0, duplicates = 0, thumbnails = 0;
  uint64_t reassembled = 0;
  uint64_t bytes_written = 0;
  std::vector<DataRange> unreadable;
  double seconds = 0;
  bool cancelled = false;
  // What a resumed run needs besides next_offset (filled when cancelled, and
  // in checkpoints): the candidates before it still held for the fragment
  // search, and the ranges of the files recovered before it.
  std::vector<uint64_t> held;
  std::vector<Fragment> recovered;
};

using FileSink = std::function<void(const CarvedFile&)>;

// Runs the carve. Returns normally when cancelled (report.cancelled) so the
// caller keeps the files written so far and can write the report.
CarveReport carve(Reader& reader, const CarveOptions& opt, Control& control, const FileSink& on_file);

// f%014llu.jpg
std::string carved_name(uint64_t offset);

}  // namespace blocksmith::carve
