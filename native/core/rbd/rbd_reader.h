// Reader over an RBD image: a pipeline source for exports. Only objects that
// exist in the image or, for a clone, in its parent are read; the rest are
// holes (such an object reads as zeros).
#pragma once

#include <vector>

#include "core/pipeline/reader.h"
#include "core/rbd/session.h"

namespace blocksmith::rbd {

class RbdReader final : public Reader {
 public:
  // Lists the image's existing objects once (rbd_diff_iterate2, whole-object
  // mode: fast with fast-diff; without it librbd checks each object), with
  // its parent's; a clone's own objects are listed a second time.
  RbdReader(Image& image, const Target& target);

  uint64_t size() const override { return size_; }
  const std::string& path() const override { return spec_; }
  size_t read_at(void* buf, size_t len, uint64_t off) override;
  DataRange next_data(uint64_t off) override;

  uint64_t allocated_bytes() const;  // sum of the image's own objects' ranges (not its parent's)
  const std::vector<DataRange>& own_extents() const { return own_; }  // the image's own objects, sorted, merged

 private:
  Image& image_;
  const Target& target_;
  std::string spec_;
  uint64_t size_;
  std::vector<DataRange> extents_;  // data map: own and parent objects, sorted, merged
  std::vector<DataRange> own_;      // the image's own objects
};

}  // namespace blocksmith::rbd
