// Sparsify: the pipeline with a punch-in-place sink or a sparse-file sink,
// plus the safety checks around them (QEMU locks, loop devices, mounted
// devices) and the before/after report.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/pipeline/control.h"
#include "core/guest_fs/inspect.h"
#include "core/readers/file_reader.h"
#include "core/readers/image_open.h"
#include "core/pipeline/scan_pipeline.h"
#include "core/sinks/extent_totals.h"

namespace blocksmith {

struct SparsifyOptions {
  ScanOptions scan;
  bool use_seek_hole = true;
  bool dry_run = false;
  // In place: go past the in-use refusals (QEMU locks, other openers, loop
  // devices, O_EXCL on devices, no lease); copies: copy an image in use.
  // What it overrode is in the report's warnings. See image_use.h.
  bool force = false;
  bool overwrite = false;  // copy: replace an existing target
  ImageFormat format = ImageFormat::automatic;  // of the source (copy); in place: raw only
  BackingPolicy backing;                        // copies of qcow2 images: which backing files to follow
  // Also reclaim the free blocks of the ext2/3/4 filesystems in the image
  // (partitions found from MBR/GPT). Refuses dirty or mounted filesystems;
  // `force` never overrides that.
  bool fs = false;
};

struct SparsifyReport {
  std::string source;
  std::string target;          // empty in place
  SourceKind kind = SourceKind::regular_file;
  uint64_t size = 0;
  uint64_t allocated_before = 0;  // source (in place) / source (copy)
  uint64_t allocated_after = 0;   // source (in place) / target (copy)
  ExtentTotals totals;            // holes skipped, zero blocks read, data (written, for copies)
  uint64_t punch_calls = 0;       // in place
  uint64_t punched_bytes = 0;     // in place
  uint64_t reclaimable_bytes = 0; // in place: allocated bytes the punches cover (dry run: would cover)
  double seconds = 0;
  bool dry_run = false;
  std::string format = "raw";     // of the source: raw or qcow2
  std::vector<BackingLink> backing_chain;  // copies: the source's backing files, nearest first
  bool fs = false;
  uint64_t free_bytes = 0;        // --fs: bytes free in a filesystem, not read (punched / left as holes)
  fs::Inspection inspection;      // --fs: the partitions and filesystems found
  std::vector<std::string> warnings;  // what --force overrode; why a dry run's figures can change
};

SparsifyReport sparsify_in_place(const std::string& path, const SparsifyOptions& options, Control& control);
SparsifyReport sparse_copy(const std::string& source, const std::string& target, const SparsifyOptions& options,
                           Control& control);

}  // namespace blocksmith
