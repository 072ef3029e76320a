#include "core/rbd/rbd_reader.h"

#include <algorithm>
#include <cerrno>
#include <optional>

namespace blocksmith::rbd {

namespace {

// The image's existing objects (whole-object mode: fast with fast-diff;
// without it librbd checks each object), sorted and merged; with
// `include_parent`, also those a clone reads from its parent. nullopt when
// librbd cannot list them.
std::optional<std::vector<DataRange>> list_objects(rbd_image_t image, uint64_t size, bool include_parent) {
  auto cb = [](uint64_t off, size_t len, int exists, void* arg) -> int {
    auto* v = static_cast<std::vector<DataRange>*>(arg);
    if (!exists || len == 0) return 0;
    v->push_back({off, off + len});
    return 0;
  };
  std::vector<DataRange> found;
  int r = api().rbd_diff_iterate2(image, nullptr, 0, size, include_parent ? 1 : 0, 1, cb, &found);
  if (r < 0) return std::nullopt;
  std::sort(found.begin(), found.end(), [](auto& a, auto& b) { return a.begin < b.begin; });
  std::vector<DataRange> merged;
  for (const auto& e : found) {
    if (!merged.empty() && e.begin <= merged.back().end) {
      merged.back().end = std::max(merged.back().end, e.end);
    } else {
      merged.push_back(e);
    }
  }
  return merged;
}

}  // namespace

RbdReader::RbdReader(Image& image, const Target& target)
    : image_(image), target_(target), spec_(target.spec()), size_(image.size()) {
  // A 0-byte image has no objects; librbd 16 asserts (aborts the process) in
  // diff_iterate2 over an empty range, as `rbd du` of such an image shows.
  if (size_ == 0) return;
  // Holes are trusted as zeros (reader.h): the data map of a clone must
  // include what it reads from its parent, or an export would write zeros
  // there. When it cannot be listed, everything is data.
  auto data = list_objects(image_.get(), size_, true);
  extents_ = data ? std::move(*data) : std::vector<DataRange>{{0, size_}};
  // What the image itself holds (`rbd du` counts it): the same list unless
  // it has a parent (rbd_get_overlap says -ENOENT for images without one).
  uint64_t overlap = 0;
  if (api().rbd_get_overlap(image_.get(), &overlap) == -ENOENT) {
    own_ = extents_;
  } else {
    auto own = list_objects(image_.get(), size_, false);
    own_ = own ? std::move(*own) : std::vector<DataRange>{{0, size_}};
  }
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
  for (const auto& e : own_) n += std::min(e.end, size_) - std::min(e.begin, size_);
  return n;
}

}  // namespace blocksmith::rbd
