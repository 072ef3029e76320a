// Sink that discards, in place, the runs of zero blocks of the RBD image it
// is fed from (sparsify rbd:POOL/IMG). Content never changes: only ranges the
// pipeline read and found all zero are discarded, so an interrupt at any
// point leaves the same bytes (a discarded range reads as zeros).
//
// What frees space in RBD is a discard that covers a whole object (librbd
// then removes it; `rbd du` and rbd_info's "used" count whole objects).
// So adjacent zero runs are coalesced and cut at object boundaries: whole
// zero objects are discarded together (up to `max_discard` bytes a call),
// the zero part of a partly used object only when it is at least
// `min_partial` bytes (librbd skips discards below its granularity anyway).
// Discards are limited to `own` (the image's own objects): in a clone, a
// discard over what it reads from its parent would create objects, not free
// them. At most `parallel` discards in flight (rbd_aio_discard); completions
// arrive on librbd's threads and only record the result.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "core/pipeline/channel.h"
#include "core/pipeline/scan_pipeline.h"
#include "core/rbd/session.h"

namespace blocksmith::rbd {

// One discard call: [off, off + len); `whole` when it covers whole objects
// only (they are removed: "used" goes down by len).
struct DiscardRange {
  uint64_t off;
  uint64_t len;
  bool whole;
  bool operator==(const DiscardRange&) const = default;
};

struct DiscardPlan {
  uint64_t object_size = 4 << 20;
  uint64_t image_size = 0;
  uint64_t min_partial = 64 << 10;
  uint64_t max_discard = 64 << 20;  // rounded down to whole objects
};

// The discards for the zero run [begin, end) clipped to `own` (sorted,
// disjoint): pure, so the unit tests check it without a cluster.
std::vector<DiscardRange> plan_discards(uint64_t begin, uint64_t end, const std::vector<DataRange>& own,
                                        const DiscardPlan& plan);

struct DiscardStats {
  uint64_t discards = 0;         // calls made (dry run: that would be made)
  uint64_t discarded_bytes = 0;  // bytes they cover
  uint64_t freed_bytes = 0;      // of those, whole objects (removed)
};

class RbdDiscardSink final : public Sink {
 public:
  RbdDiscardSink(rbd_image_t image, const Target& target, std::vector<DataRange> own, const DiscardPlan& plan,
                 unsigned parallel, bool dry_run);
  ~RbdDiscardSink() override;  // waits for discards in flight (errors swallowed)

  void on_hole(uint64_t, uint64_t) override { flush(); }
  void on_zero(uint64_t off, uint64_t len) override;
  void on_data(uint64_t, const uint8_t*, size_t) override { flush(); }
  void on_end(uint64_t) override;

  const DiscardStats& stats() const { return stats_; }

 private:
  static void on_complete(rbd_completion_t c, void* arg);
  void flush();
  void submit(const DiscardRange& d);
  void drain();
  void check_error();

  struct Slot {
    RbdDiscardSink* owner;
    uint64_t off;
  };

  rbd_image_t image_;
  const Target& target_;
  std::vector<DataRange> own_;
  DiscardPlan plan_;
  bool dry_run_;
  std::vector<Slot> slots_;
  Channel<Slot*> free_;
  bool pending_ = false;
  uint64_t run_begin_ = 0, run_end_ = 0;
  DiscardStats stats_;
  std::mutex error_mu_;
  int first_error_ = 0;
  uint64_t first_error_off_ = 0;
};

}  // namespace blocksmith::rbd
