#include "core/guest_fs/fat_recover.h"

#include <algorithm>

namespace blocksmith::fs {
namespace {

// Appends the bytes of `cluster` the file still needs to `f.extents`,
// merging with the previous extent when adjacent; returns the bytes added.
uint64_t take(const FatGeometry& g, uint64_t cluster, uint64_t remaining, DeletedFile& f) {
  const uint64_t begin = g.cluster_offset(cluster);
  const uint64_t n = std::min<uint64_t>(g.cluster_size, remaining);
  if (!f.extents.empty() && f.extents.back().end == begin) {
    f.extents.back().end = begin + n;
  } else {
    f.extents.push_back({begin, begin + n});
  }
  return n;
}

// The chain still in the FAT: exactly `need` clusters ending in an
// end-of-chain mark, none live. A loop cannot end, so `need` bounds it.
bool plan_from_chain(const FatGeometry& g, const FatTable& fat, const ClusterBitmap& live, uint64_t need, DeletedFile& f) {
  uint64_t c = f.first_cluster;
  std::vector<ByteRange> saved;
  saved.swap(f.extents);
  uint64_t remaining = f.size;
  for (uint64_t i = 0; i < need; ++i) {
    if (live.test(c)) break;
    const FatTable::Entry e = fat.get(static_cast<uint32_t>(c));
    if (e.kind != FatTable::Kind::next && e.kind != FatTable::Kind::end) break;
    remaining -= take(g, c, remaining, f);
    if (e.kind == FatTable::Kind::end) {
      if (i + 1 == need) return true;
      break;
    }
    c = e.next;
  }
  f.extents.swap(saved);
  return false;
}

}  // namespace

void plan_fat_recovery(const FatGeometry& g, const FatTable& fat, const ClusterBitmap& live, DeletedFile& f) {
  f.extents.clear();
  f.overwritten_bytes = 0;
  f.rule = Recovery::skip_live_clusters;
  if (f.size == 0) {
    f.status = DeletedStatus::empty;
    return;
  }
  const uint64_t need = (f.size + g.cluster_size - 1) / g.cluster_size;
  if (!g.valid_cluster(f.first_cluster) || need > g.cluster_count) {
    f.status = DeletedStatus::unreadable;
    return;
  }
  const uint64_t last = g.cluster_count + 1;  // the highest data cluster
  if (live.test(f.first_cluster)) {
    f.status = DeletedStatus::overwritten;
    uint64_t remaining = f.size;
    for (uint64_t c = f.first_cluster; c <= last && remaining > 0; ++c) {
      const uint64_t n = take(g, c, remaining, f);
      if (live.test(c)) f.overwritten_bytes += n;
      remaining -= n;
    }
    return;
  }
  if (fat.get(static_cast<uint32_t>(f.first_cluster)).kind != FatTable::Kind::free &&
      plan_from_chain(g, fat, live, need, f)) {
    f.rule = Recovery::fat_chain;
    f.status = DeletedStatus::recoverable;
    return;
  }
  uint64_t remaining = f.size;
  for (uint64_t c = f.first_cluster; c <= last && remaining > 0; ++c) {
    if (!live.test(c)) remaining -= take(g, c, remaining, f);
  }
  if (remaining > 0) {
    f.extents.clear();
    f.status = DeletedStatus::unreadable;  // the volume ends before the size is covered
    return;
  }
  f.status = DeletedStatus::recoverable;
}

}  // namespace blocksmith::fs
