// Sink that punches holes in place over runs of zero blocks. Content never
// changes: only ranges the pipeline read and found all zero are punched
// (holes already there are merged into a run so one call covers both).
#pragma once

#include <cstdint>
#include <string>

#include "scan_pipeline.h"

namespace blocksmith {

struct PunchStats {
  uint64_t punch_calls = 0;    // fallocate calls made (or that would be made, dry run)
  uint64_t zero_bytes = 0;     // bytes found allocated and all zero
  uint64_t punched_bytes = 0;  // bytes covered by punch calls (aligned inward)
};

class PunchSink final : public Sink {
 public:
  // `align`: the unit the target frees in (filesystem block, device logical
  // sector); ranges are shrunk inward to it so the kernel never has to write
  // zeros into partial units. `is_block_device` selects the wording of errors.
  PunchSink(int fd, std::string path, uint64_t align, bool is_block_device, bool dry_run)
      : fd_(fd), path_(std::move(path)), align_(align), is_block_device_(is_block_device), dry_run_(dry_run) {}

  void on_hole(uint64_t off, uint64_t len) override;
  void on_zero(uint64_t off, uint64_t len) override;
  void on_data(uint64_t off, const uint8_t* bytes, size_t len) override;
  void on_end(uint64_t size) override;

  const PunchStats& stats() const { return stats_; }

 private:
  void flush();
  void punch(uint64_t off, uint64_t len);

  int fd_;
  std::string path_;
  uint64_t align_;
  bool is_block_device_;
  bool dry_run_;
  PunchStats stats_;
  // The pending run: zero blocks, possibly with holes between them.
  bool pending_ = false;
  bool pending_has_zero_ = false;
  uint64_t run_off_ = 0, run_len_ = 0;
  uint64_t eof_ = 0;  // known once on_end is called
};

}  // namespace blocksmith
