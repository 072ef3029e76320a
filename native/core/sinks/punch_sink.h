// Sink that punches holes in place over runs of zero blocks. Content never
// changes: only ranges the pipeline read and found all zero are punched
// (holes already there are merged into a run so one call covers both).
//
// The fallocate calls run on a thread of their own, fed with coalesced
// ranges, so reading goes on while the filesystem frees blocks (on a
// discard-mounted ext4 one punch costs ~0.2 ms and an 8 GiB image's large
// punches ~2 s: bench/results/sparsify-floors.json). Every queued range was
// already read as zeros, so an interrupted run (Ctrl-C, SIGKILL) leaves the
// content unchanged whichever of them were done. on_end waits for the queue
// and rethrows the first punch error; a later on_* call rethrows it too.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/pipeline/scan_pipeline.h"

namespace blocksmith {

class LeaseGuard;

struct PunchStats {
  uint64_t punch_calls = 0;    // fallocate calls made (or that would be made, dry run)
  uint64_t zero_bytes = 0;     // bytes found allocated and all zero
  uint64_t punched_bytes = 0;  // bytes covered by punch calls (aligned inward)
  // Of those, the bytes that were allocated (read as zeros, or free in the
  // filesystem inside), not holes: what the punches free. A dry run counts
  // it too, so its estimate is the real run's reclaim.
  uint64_t reclaimed_bytes = 0;
};

class PunchSink final : public Sink {
 public:
  // `align`: the unit the target frees in (filesystem block, device logical
  // sector); ranges are shrunk inward to it so the kernel never has to write
  // zeros into partial units. `is_block_device` selects the wording of errors.
  PunchSink(int fd, std::string path, uint64_t align, bool is_block_device, bool dry_run)
      : fd_(fd), path_(std::move(path)), align_(align), is_block_device_(is_block_device), dry_run_(dry_run) {}
  // Without on_end (an error or a cancel upstream): drops what is still
  // queued and joins the thread.
  ~PunchSink() override;

  void on_hole(uint64_t off, uint64_t len) override;
  void on_zero(uint64_t off, uint64_t len) override;
  void on_free(uint64_t off, uint64_t len) override { on_zero(off, len); }
  void on_data(uint64_t off, const uint8_t* bytes, size_t len) override;
  void on_end(uint64_t size) override;

  const PunchStats& stats() const { return stats_; }

  // Every fallocate runs through `guard` (LeaseGuard::run_held): only while
  // our lease on the file holds, and never once somebody else opened it.
  void set_guard(LeaseGuard* guard) { guard_ = guard; }

 private:
  struct Range {
    uint64_t begin, end;
  };
  // A piece of the pending run: allocated (zero, free) or a hole.
  struct Piece {
    uint64_t off, len;
    bool allocated;
  };
  void add_piece(uint64_t off, uint64_t len, bool allocated);
  template <typename It>
  static uint64_t allocated_in(It first, It last, uint64_t begin, uint64_t end);
  void flush();
  void punch(uint64_t off, uint64_t len);  // aligns, counts, queues
  void enqueue(Range r);
  void punch_loop();                        // the punch thread
  void fallocate_range(Range r) const;      // throws
  void rethrow_if_failed();
  void stop_thread(bool drain);


  int fd_;
  std::string path_;
  uint64_t align_;
  bool is_block_device_;
  bool dry_run_;
  LeaseGuard* guard_ = nullptr;
  PunchStats stats_;
  // The pending run: zero blocks, possibly with holes between them.
  bool pending_ = false;
  bool pending_has_zero_ = false;
  uint64_t run_off_ = 0, run_len_ = 0;
  // Allocated bytes in the run, and the pieces near its ends: aligning a
  // punch inward drops less than align_ bytes at each end, and these say
  // how many of them were allocated. Both lists are bounded by align_.
  uint64_t run_allocated_ = 0;
  std::vector<Piece> head_;
  std::deque<Piece> tail_;
  uint64_t eof_ = 0;  // known once on_end is called

  // The punch queue. Bounded in ranges, and in how far the scan may run
  // ahead of the punching (past the end of the oldest unfinished range): so
  // progress, which reports the scan, stays near what was punched, and an
  // abort leaves little queued.
  static constexpr size_t kMaxQueued = 1 << 16;
  static constexpr uint64_t kMaxLag = 64 << 20;
  bool too_far_ahead(const Range& next) const;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Range> queue_;
  bool running_ = false;      // a fallocate is in progress
  uint64_t running_end_ = 0;  // of the range being punched
  bool closing_ = false;     // no more ranges: drain and exit
  bool abandon_ = false;     // exit without draining
  std::exception_ptr error_; // first fallocate failure
  std::atomic<bool> failed_{false};
};

}  // namespace blocksmith
