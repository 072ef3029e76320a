// The extent map sink: what `blocksmith info` and `map` report. Adjacent
// blocks of one kind merge into one extent; totals are kept per kind.
#pragma once

#include <cstdint>
#include <vector>

#include "scan_pipeline.h"

namespace blocksmith {

enum class ExtentKind : uint8_t { hole = 0, zero = 1, data = 2 };

struct Extent {
  uint64_t offset;
  uint64_t length;
  ExtentKind kind;
  bool operator==(const Extent&) const = default;
};

struct ExtentTotals {
  uint64_t hole = 0;
  uint64_t zero = 0;
  uint64_t data = 0;
};

class ExtentMapSink final : public Sink {
 public:
  // keep_extents = false only counts (for `info` on huge, fragmented sources).
  explicit ExtentMapSink(bool keep_extents = true) : keep_extents_(keep_extents) {}

  void on_hole(uint64_t off, uint64_t len) override { add(off, len, ExtentKind::hole); }
  void on_zero(uint64_t off, uint64_t len) override { add(off, len, ExtentKind::zero); }
  void on_data(uint64_t off, const uint8_t*, size_t len) override { add(off, len, ExtentKind::data); }

  const std::vector<Extent>& extents() const { return extents_; }
  const ExtentTotals& totals() const { return totals_; }
  uint64_t extent_count() const { return count_; }

 private:
  void add(uint64_t off, uint64_t len, ExtentKind kind);

  bool keep_extents_;
  std::vector<Extent> extents_;
  ExtentTotals totals_;
  uint64_t count_ = 0;
  bool have_last_ = false;
  Extent last_{0, 0, ExtentKind::hole};
};

}  // namespace blocksmith

namespace blocksmith {

// Counts hole/zero/data bytes on the way to another sink (reports of
// sparsify and copies come from the same pass that does the work).
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
