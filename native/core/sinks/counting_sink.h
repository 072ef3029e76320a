// Counts hole/zero/data bytes on the way to another sink (reports of
// sparsify and copies come from the same pass that does the work).
#pragma once

#include "core/sinks/extent_map_sink.h"

namespace blocksmith {

class CountingSink final : public Sink {
 public:
  explicit CountingSink(Sink* next) : next_(next) {}
  void on_hole(uint64_t o, uint64_t l) override {
    counts_.on_hole(o, l);
    if (next_) next_->on_hole(o, l);
  }
  void on_zero(uint64_t o, uint64_t l) override {
    counts_.on_zero(o, l);
    if (next_) next_->on_zero(o, l);
  }
  void on_free(uint64_t o, uint64_t l) override {
    free_ += l;
    if (next_) next_->on_free(o, l);
  }
  void on_data(uint64_t o, const uint8_t* b, size_t l) override {
    counts_.on_data(o, b, l);
    if (next_) next_->on_data(o, b, l);
  }
  void on_end(uint64_t s) override {
    if (next_) next_->on_end(s);
  }
  const ExtentTotals& totals() const { return counts_.totals(); }
  // Bytes delivered as free in a filesystem (not read; not in totals()).
  uint64_t free_bytes() const { return free_; }

 private:
  Sink* next_;
  uint64_t free_ = 0;
  ExtentMapSink counts_{false};
};

}  // namespace blocksmith
