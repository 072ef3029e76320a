// The extent map sink: what `blocksmith info` and `map` report. Adjacent
// blocks of one kind merge into one extent; totals are kept per kind.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "core/pipeline/scan_pipeline.h"
#include "core/sinks/extent_totals.h"

namespace blocksmith {

enum class ExtentKind : uint8_t { hole = 0, zero = 1, data = 2 };

struct Extent {
  uint64_t offset;
  uint64_t length;
  ExtentKind kind;
  bool operator==(const Extent&) const = default;
};

class ExtentMapSink final : public Sink {
 public:
  // keep_extents = false only counts (for `info` on huge, fragmented sources).
  explicit ExtentMapSink(bool keep_extents = true) : keep_extents_(keep_extents) {}

  void on_hole(uint64_t off, uint64_t len) override { add(off, len, ExtentKind::hole); }
  void on_zero(uint64_t off, uint64_t len) override { add(off, len, ExtentKind::zero); }
  void on_data(uint64_t off, const uint8_t*, size_t len) override { add(off, len, ExtentKind::data); }

  const std::vector<Extent>& extents() const { return extents_; }
  // The extents moved out (a report keeps them without a copy of millions).
  std::vector<Extent> take_extents() { return std::move(extents_); }
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
