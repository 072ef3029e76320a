#include "core/guest_fs/exfat_clusters.h"

#include <algorithm>

#include "core/guest_fs/bytes.h"

namespace blocksmith::fs {

namespace {
constexpr uint64_t kWindowEntries = 16384;  // 64 KiB of FAT
constexpr uint32_t kEnd = 0xFFFFFFFFu;
}  // namespace

uint32_t ExfatClusters::fat(uint32_t c) {
  if (window_.empty() || c < window_first_ || c >= window_first_ + window_.size() / 4) {
    window_first_ = c - c % kWindowEntries;
    const uint64_t entries = std::min<uint64_t>(kWindowEntries, uint64_t(b_.cluster_count) + 2 - window_first_);
    window_ = read_checked(r_, b_.offset + b_.fat_offset + window_first_ * 4, entries * 4, b_.offset + b_.length,
                           "exFAT FAT");
  }
  return le32(window_.data() + (c - window_first_) * 4);
}

std::vector<uint32_t> ExfatClusters::chain(uint32_t first, uint64_t max_clusters, std::string* problem) {
  std::vector<uint32_t> out;
  if (!b_.valid_cluster(first)) {
    *problem = "cluster " + std::to_string(first) + " is not in the heap";
    return out;
  }
  // One mark bit a cluster (kept between calls, cleared after each): a
  // revisited cluster is a loop, found without per-chain allocations.
  if (marks_.empty()) marks_.assign((uint64_t(b_.cluster_count) + 7) / 8, 0);
  walk(first, max_clusters, problem, out);
  for (uint32_t x : out) marks_[(x - 2) >> 3] = 0;
  return out;
}

void ExfatClusters::walk(uint32_t first, uint64_t max_clusters, std::string* problem, std::vector<uint32_t>& out) {
  uint32_t c = first;
  while (out.size() < max_clusters) {
    uint8_t& m = marks_[(c - 2) >> 3];
    const uint8_t bit = static_cast<uint8_t>(1u << ((c - 2) & 7));
    if (m & bit) {
      *problem = "FAT chain from cluster " + std::to_string(first) + " loops at cluster " + std::to_string(c);
      return;
    }
    m |= bit;
    out.push_back(c);
    if (out.size() == max_clusters) return;
    const uint32_t next = fat(c);
    if (next == kEnd) return;
    if (!b_.valid_cluster(next)) {
      *problem = "FAT chain from cluster " + std::to_string(first) + " breaks at cluster " + std::to_string(c) +
                 " (entry " + std::to_string(next) + ")";
      return;
    }
    c = next;
  }
}

void ExfatClusters::load_bitmap(uint32_t first, uint64_t bytes) {
  const uint64_t need = (uint64_t(b_.cluster_count) + 7) / 8;
  const std::string where = "exFAT allocation bitmap (cluster " + std::to_string(first) + ", " +
                            std::to_string(bytes) + " bytes)";
  if (bytes < need) corrupt(r_.path(), where + " is too short for " + std::to_string(b_.cluster_count) + " clusters");
  if (!b_.valid_cluster(first)) corrupt(r_.path(), where + " starts outside the cluster heap");
  std::string problem;
  const uint64_t clusters = (need + b_.cluster_size - 1) / b_.cluster_size;
  const auto cl = chain(first, clusters, &problem);
  if (cl.size() < clusters) {
    corrupt(r_.path(), where + ": its cluster chain is cut short" + (problem.empty() ? "" : ": " + problem));
  }
  bitmap_.assign(need, 0);
  uint64_t pos = 0;
  for (uint32_t c : cl) {
    const uint64_t n = std::min<uint64_t>(b_.cluster_size, need - pos);
    const auto part = read_checked(r_, b_.cluster_at(c), n, b_.offset + b_.length, "exFAT allocation bitmap");
    std::copy(part.begin(), part.end(), bitmap_.begin() + pos);
    pos += n;
  }
  // Bits past the last cluster are meaningless: clear them.
  if (b_.cluster_count % 8) bitmap_.back() &= static_cast<uint8_t>((1u << (b_.cluster_count % 8)) - 1);
}

}  // namespace blocksmith::fs
