// In-place sparsify of an RBD image (sparsify rbd:POOL/IMG): frees the
// objects that hold only zeros, e.g. after a live `virsh blockcopy` whose
// mirror wrote a disk's zero regions as data. Content never changes.
//
// Nobody else has the image open: we take its exclusive lock (when it has
// the feature) and run the one pipeline, RbdReader -> classifier ->
// RbdDiscardSink, which discards only ranges it read as zeros while no other
// client can write. Other clients allowed (`allow_watchers`, a running VM):
// a read-then-discard could drop a write made between the two, so Ceph's own
// sparsify runs instead (rbd_sparsify_with_progress: proxied to the lock
// owner, each object checked and zeroed atomically on its OSD).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/pipeline/control.h"
#include "core/pipeline/scan_pipeline.h"
#include "core/rbd/session.h"
#include "core/sinks/extent_totals.h"

namespace blocksmith::rbd {

struct RbdSparsifyOptions {
  ScanOptions scan;
  bool dry_run = false;
  // How many OTHER clients may have the image open (watchers besides our own
  // handle). More -> EBUSY before anything changes. `blocksmith migrate`
  // passes 1 (the VM), the CLI's --force "any" (UINT32_MAX).
  unsigned allow_watchers = 0;
  unsigned parallel = 16;  // discards in flight
};

struct RbdSparsifyReport {
  std::string image;
  uint64_t size = 0;
  uint64_t object_size = 0;
  uint64_t used_before = 0;  // bytes of existing objects (as rbd_info counts "used")
  uint64_t used_after = 0;   // dry run: the estimate (used_before minus the whole zero objects)
  ExtentTotals totals;       // of the pipeline's read (method "ceph-sparsify": zeros, it reads on the OSDs)
  uint64_t discards = 0;
  uint64_t discarded_bytes = 0;
  std::string method;                 // "discard" or "ceph-sparsify"
  std::vector<std::string> watchers;  // the other clients: "ADDR (client.ID)"
  std::vector<std::string> warnings;
  double seconds = 0;
  bool dry_run = false;
};

RbdSparsifyReport sparsify_rbd_in_place(const Target& target, const RbdSparsifyOptions& options, Control& control);

}  // namespace blocksmith::rbd
