// A Sink that verifies an RBD image against its source: it compares what the
// scan pipeline delivers from the source with the image.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/base/aligned_buffer.h"
#include "core/pipeline/scan_pipeline.h"
#include "core/rbd/session.h"

namespace blocksmith::rbd {

// Compares what the scan pipeline delivers from the source (in order: its
// read-ahead, holes and zero runs) with the image, read ahead in object-sized
// aio reads, `parallel` in flight. Holes and zero runs are compared with
// zeros without reading the source.
class VerifySink final : public Sink {
 public:
  VerifySink(Image& img, const Target& t, const std::string& source, uint64_t size, uint64_t object_size,
             unsigned parallel);
  // Every read still in flight is waited for before its buffer goes.
  ~VerifySink() override;

  void on_hole(uint64_t off, uint64_t len) override { compare(off, len, nullptr); }
  void on_zero(uint64_t off, uint64_t len) override { compare(off, len, nullptr); }
  void on_data(uint64_t off, const uint8_t* bytes, size_t len) override { compare(off, len, bytes); }

 private:
  struct Read {
    std::unique_ptr<AlignedBuffer> buf;
    rbd_completion_t c = nullptr;
    uint64_t off = 0;
    size_t len = 0;
  };

  // Keeps `parallel` reads in flight ahead of the comparison.
  void issue();
  // The oldest read, complete: the image's bytes from its offset.
  Read& oldest();
  [[noreturn]] void mismatch(uint64_t object);
  // bytes: the source's; null: zeros.
  void compare(uint64_t off, uint64_t len, const uint8_t* bytes);

  Image& img_;
  const Target& t_;
  const std::string& source_;
  const uint64_t size_, object_size_;
  std::vector<Read> window_;
  size_t head_ = 0, count_ = 0;
  uint64_t next_ = 0;  // the next image byte to read
};

}  // namespace blocksmith::rbd
