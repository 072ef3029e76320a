#include "core/sinks/extent_map_sink.h"

namespace blocksmith {

void ExtentMapSink::add(uint64_t off, uint64_t len, ExtentKind kind) {
  if (len == 0) return;
  switch (kind) {
    case ExtentKind::hole: totals_.hole += len; break;
    case ExtentKind::zero: totals_.zero += len; break;
    case ExtentKind::data: totals_.data += len; break;
  }
  if (have_last_ && last_.kind == kind && last_.offset + last_.length == off) {
    last_.length += len;
    if (keep_extents_) extents_.back().length += len;
    return;
  }
  if (stream_ && have_last_) {
    extents_.push_back(last_);  // finished: the next one begins here
    if (extents_.size() >= batch_) send();
  }
  have_last_ = true;
  last_ = Extent{off, len, kind};
  ++count_;
  if (keep_extents_) extents_.push_back(last_);
}

void ExtentMapSink::on_end(uint64_t) {
  if (!stream_) return;
  if (have_last_) extents_.push_back(last_);
  have_last_ = false;
  send();
}

void ExtentMapSink::send() {
  if (extents_.empty()) return;
  std::vector<Extent> batch;
  batch.swap(extents_);
  stream_(std::move(batch));
}

}  // namespace blocksmith
