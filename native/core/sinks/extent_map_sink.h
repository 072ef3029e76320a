// The extent map sink: what `blocksmith info` and `map` report. Adjacent
// blocks of one kind merge into one extent; totals are kept per kind.
#pragma once

#include <cstdint>
#include <functional>
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

// Finished extents, in offset order, handed over instead of kept.
using ExtentStream = std::function<void(std::vector<Extent>&& batch)>;

class ExtentMapSink final : public Sink {
 public:
  // keep_extents = false only counts (for `info` on huge, fragmented sources).
  explicit ExtentMapSink(bool keep_extents = true) : keep_extents_(keep_extents) {}
  // Streams the extents in batches of `batch` instead of keeping them, so
  // memory stays flat however many there are (`blocksmith map` of a
  // fragmented disk). An extent goes out once the next one has begun (it may
  // still grow until then); the last at on_end. A cancelled scan never sends
  // the open one.
  ExtentMapSink(ExtentStream stream, size_t batch) : keep_extents_(false), stream_(std::move(stream)), batch_(batch) {}

  void on_hole(uint64_t off, uint64_t len) override { add(off, len, ExtentKind::hole); }
  void on_zero(uint64_t off, uint64_t len) override { add(off, len, ExtentKind::zero); }
  void on_data(uint64_t off, const uint8_t*, size_t len) override { add(off, len, ExtentKind::data); }
  void on_end(uint64_t size) override;

  const std::vector<Extent>& extents() const { return extents_; }
  // The extents moved out (a report keeps them without a copy of millions).
  std::vector<Extent> take_extents() { return std::move(extents_); }
  const ExtentTotals& totals() const { return totals_; }
  uint64_t extent_count() const { return count_; }

 private:
  void add(uint64_t off, uint64_t len, ExtentKind kind);

  void send();

  bool keep_extents_;
  ExtentStream stream_;
  size_t batch_ = 0;
  std::vector<Extent> extents_;  // kept, or the batch being filled
  ExtentTotals totals_;
  uint64_t count_ = 0;
  bool have_last_ = false;
  Extent last_{0, 0, ExtentKind::hole};
};

}  // namespace blocksmith
