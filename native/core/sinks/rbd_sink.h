// Sink that writes data blocks into an RBD image with librbd's async API:
// holes and zero blocks are never written (a new image reads as zeros),
// data is gathered into aligned writes of at most `write_size` bytes that
// never cross an object boundary, at most `parallel` in flight.
// Completions arrive on librbd's threads; they only record the result and
// hand the buffer back, never touching anything else.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "core/base/aligned_buffer.h"
#include "core/pipeline/channel.h"
#include "core/pipeline/scan_pipeline.h"
#include "core/rbd/session.h"

namespace blocksmith::rbd {

class RbdSink final : public Sink {
 public:
  // `write_size` divides `object_size` (both powers of two).
  RbdSink(rbd_image_t image, const Target& target, uint64_t write_size, unsigned parallel);
  ~RbdSink() override;

  void on_hole(uint64_t, uint64_t) override { submit(); }
  void on_zero(uint64_t, uint64_t) override { submit(); }
  void on_data(uint64_t off, const uint8_t* bytes, size_t len) override;
  void on_end(uint64_t) override { drain(); }

  // Waits for every write in flight; throws the first error any had.
  void drain();
  // Waits for every write in flight and swallows errors (cleanup paths).
  void drain_quietly() noexcept;

  uint64_t bytes_written() const { return written_; }
  uint64_t writes() const { return writes_; }

 private:
  struct Slot {
    RbdSink* owner = nullptr;
    std::unique_ptr<AlignedBuffer> buf;
    uint64_t off = 0;
    size_t len = 0;
  };
  static void on_complete(rbd_completion_t c, void* arg);
  Slot* take_slot();
  void submit();
  void check_error();

  rbd_image_t image_;
  const Target& target_;
  uint64_t write_size_;
  std::vector<std::unique_ptr<Slot>> slots_;
  Channel<Slot*> free_;
  Slot* pending_ = nullptr;  // being filled, not yet submitted
  std::mutex error_mu_;
  int first_error_ = 0;      // negative errno from the first failed write
  uint64_t first_error_off_ = 0;
  uint64_t written_ = 0;
  uint64_t writes_ = 0;
  std::atomic<uint64_t> acknowledged_{0};  // writes the cluster accepted (set on librbd's threads)
};

}  // namespace blocksmith::rbd
