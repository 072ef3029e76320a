// Byte ranges of an image known to be free in the filesystem that owns them:
// their content does not matter, so the pipeline neither reads them nor keeps
// them (in place they are punched, in copies they become holes).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace blocksmith::fs {

struct ByteRange {
  uint64_t begin;
  uint64_t end;  // exclusive
};

class FreeMap {
 public:
  // Adds [begin, end); call normalize() once after the last add.
  void add(uint64_t begin, uint64_t end) {
    if (end > begin) ranges_.push_back({begin, end});
  }
  // Sorts and merges touching or overlapping ranges.
  void normalize() {
    std::sort(ranges_.begin(), ranges_.end(), [](const ByteRange& a, const ByteRange& b) { return a.begin < b.begin; });
    std::vector<ByteRange> out;
    for (const auto& r : ranges_) {
      if (!out.empty() && r.begin <= out.back().end) {
        out.back().end = std::max(out.back().end, r.end);
      } else {
        out.push_back(r);
      }
    }
    ranges_ = std::move(out);
  }
  // The first range that ends after `off` (it may start after it), or null.
  const ByteRange* next(uint64_t off) const {
    auto it = std::upper_bound(ranges_.begin(), ranges_.end(), off,
                               [](uint64_t o, const ByteRange& r) { return o < r.end; });
    return it == ranges_.end() ? nullptr : &*it;
  }
  uint64_t total() const {
    uint64_t t = 0;
    for (const auto& r : ranges_) t += r.end - r.begin;
    return t;
  }
  const std::vector<ByteRange>& ranges() const { return ranges_; }
  bool empty() const { return ranges_.empty(); }

 private:
  std::vector<ByteRange> ranges_;
};

}  // namespace blocksmith::fs
