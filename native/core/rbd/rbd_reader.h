// Reader over an RBD image: a pipeline source for exports. Only objects that
// exist are read; the rest are holes (a missing object reads as zeros).
#pragma once

#include <vector>

#include "../reader.h"
#include "session.h"

namespace blocksmith::rbd {

class RbdReader final : public Reader {
 public:
  // Lists the image's existing objects once (rbd_diff_iterate2, whole-object
  // mode: fast with fast-diff; without it librbd checks each object).
  RbdReader(Image& image, const Target& target);

  uint64_t size() const override { return size_; }
  const std::string& path() const override { return spec_; }
  size_t read_at(void* buf, size_t len, uint64_t off) override;
  DataRange next_data(uint64_t off) override;

  uint64_t allocated_bytes() const;  // sum of the existing objects' ranges

 private:
  Image& image_;
  const Target& target_;
  std::string spec_;
  uint64_t size_;
  std::vector<DataRange> extents_;  // sorted, merged
};

}  // namespace blocksmith::rbd
