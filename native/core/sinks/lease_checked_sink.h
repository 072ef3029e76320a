// Wraps the sink of a run on an image held under a kernel lease
// (host/lease_guard.h): forwards everything, and stops the scan (throws the
// break error) as soon as another process opens the image.
#pragma once

#include "core/host/lease_guard.h"
#include "core/pipeline/scan_pipeline.h"

namespace blocksmith {

// A sink that forwards everything and stops the scan (throws the break
// error) as soon as the lease is broken.
class LeaseCheckedSink final : public Sink {
 public:
  LeaseCheckedSink(Sink& inner, const LeaseGuard* guard) : inner_(inner), guard_(guard) {}
  void on_hole(uint64_t off, uint64_t len) override {
    check();
    inner_.on_hole(off, len);
  }
  void on_zero(uint64_t off, uint64_t len) override {
    check();
    inner_.on_zero(off, len);
  }
  void on_free(uint64_t off, uint64_t len) override {
    check();
    inner_.on_free(off, len);
  }
  void on_data(uint64_t off, const uint8_t* bytes, size_t len) override {
    check();
    inner_.on_data(off, bytes, len);
  }
  void on_end(uint64_t size) override {
    check();
    inner_.on_end(size);
  }

 private:
  void check() const {
    if (guard_) guard_->throw_if_broken();
  }
  Sink& inner_;
  const LeaseGuard* guard_;
};

}  // namespace blocksmith
