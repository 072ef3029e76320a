// exFAT's cluster heap bookkeeping: FAT entries (read through a small
// window, never the whole FAT), the allocation bitmap (one bit a cluster:
// which clusters are in use now), and FAT chains followed with loop and
// length limits. Cluster numbers are checked here once, so callers can pass
// any value read from disk.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/guest_fs/exfat_boot.h"
#include "core/pipeline/reader.h"

namespace blocksmith::fs {

class ExfatClusters {
 public:
  ExfatClusters(Reader& reader, const ExfatBoot& boot) : r_(reader), b_(boot) {}

  // FAT entry of cluster c (c must be a valid cluster).
  uint32_t fat(uint32_t c);

  // Loads the allocation bitmap from its clusters (a FAT chain from `first`,
  // `bytes` long). Throws ERR_FS_CORRUPT when it lies outside the heap, is
  // too short for the clusters or its chain breaks.
  void load_bitmap(uint32_t first, uint64_t bytes);
  bool in_use(uint64_t c) const { return b_.valid_cluster(c) && (bitmap_[(c - 2) >> 3] >> ((c - 2) & 7) & 1); }
  const std::vector<uint8_t>& bitmap() const { return bitmap_; }

  // Follows the FAT chain from `first` for up to `max_clusters` clusters;
  // stops at the end mark. A bad cluster number, a loop, or a chain longer
  // than the heap stop it with `problem` set. Returns the clusters.
  std::vector<uint32_t> chain(uint32_t first, uint64_t max_clusters, std::string* problem);

 private:
  void walk(uint32_t first, uint64_t max_clusters, std::string* problem, std::vector<uint32_t>& out);

  Reader& r_;
  const ExfatBoot& b_;
  std::vector<uint8_t> bitmap_;
  std::vector<uint8_t> marks_;  // chain(): clusters visited by the current walk
  // A window of the FAT (sector-aligned), so a chain walk reads each FAT
  // sector once in the common (ascending) case.
  std::vector<uint8_t> window_;
  uint64_t window_first_ = 0;  // first FAT entry in the window
};

}  // namespace blocksmith::fs
