#include "rbd_reader.h"

#include <algorithm>

namespace blocksmith::rbd {

RbdReader::RbdReader(Image& image, const Target& target)
    : image_(image), target_(target), spec_(target.spec()), size_(image.size()) {
  auto cb = [](uint64_t off, size_t len, int exists, void* arg) -> int {
    auto* v = static_cast<std::vector<DataRange>*>(arg);
    if (!exists || len == 0) return 0;
    if (!v->empty() && v->back().end == off) {
      v->back().end = off + len;
    } else {
      v->push_back({off, off + len});
    }
    return 0;
  };
  // A 0-byte image has no objects; librbd 16 asserts (aborts the process) in
  // diff_iterate2 over an empty range, as `rbd du` of such an image shows.
  if (size_ == 0) return;
  int r = api().rbd_diff_iterate2(image_.get(), nullptr, 0, size_, 0, 1, cb, &extents_);
  if (r < 0) {
    extents_.clear();
    extents_.push_back({0, size_});  // cannot list: read everything
  }
  std::sort(extents_.begin(), extents_.end(), [](auto& a, auto& b) { return a.begin < b.begin; });
}

size_t RbdReader::read_at(void* buf, size_t len, uint64_t off) {
  if (off >= size_) return 0;
  len = static_cast<size_t>(std::min<uint64_t>(len, size_ - off));
  size_t done = 0;
  while (done < len) {
    ssize_t n = api().rbd_read(image_.get(), off + done, len - done, static_cast<char*>(buf) + done);
    if (n < 0) throw_rbd(static_cast<int>(n), "rbd_read", target_, "reading " + spec_ + " at byte " + std::to_string(off + done) + " failed");
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

DataRange RbdReader::next_data(uint64_t off) {
  for (const auto& e : extents_) {
    if (e.end > off) return {std::max(e.begin, off), std::min(e.end, size_)};
  }
  return {size_, size_};
}

uint64_t RbdReader::allocated_bytes() const {
  uint64_t n = 0;
  for (const auto& e : extents_) n += e.end - e.begin;
  return n;
}

}  // namespace blocksmith::rbd
