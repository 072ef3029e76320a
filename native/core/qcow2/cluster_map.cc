#include "core/qcow2/cluster_map.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "core/base/error.h"
#include "core/qcow2/endian.h"

namespace blocksmith::qcow2 {
namespace {
constexpr uint64_t kOffsetMask = 0x00fffffffffffe00ull;  // bits 9..55 (L1E/L2E_OFFSET_MASK)
constexpr uint64_t kCompressed = 1ull << 62;
constexpr uint64_t kZeroFlag = 1ull;

std::string hex(uint64_t v) {
  char b[32];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}
}  // namespace

ClusterMap::ClusterMap(Reader& file, const Header& header) : file_(file), h_(header) {
  entry_words_ = h_.extended_l2 ? 2 : 1;
  l2_entries_ = h_.cluster_size / (8 * entry_words_);
  unit_ = h_.extended_l2 ? h_.cluster_size / 32 : h_.cluster_size;
  l1_span_ = h_.cluster_size * l2_entries_;
  csize_shift_ = 62 - (h_.cluster_bits - 8);
  csize_mask_ = (uint64_t{1} << (h_.cluster_bits - 8)) - 1;

  // Only the entries the virtual size needs (read_header checked l1_size covers them).
  const uint64_t n = h_.size / l1_span_ + (h_.size % l1_span_ != 0);
  std::vector<uint8_t> raw(n * 8);
  if (n && file_.read_at(raw.data(), raw.size(), h_.l1_table_offset) != raw.size()) corrupt("short read of the L1 table");
  l1_.resize(n);
  for (uint64_t i = 0; i < n; ++i) l1_[i] = be64(&raw[i * 8]);
  raw_.resize(h_.cluster_size);
}

void ClusterMap::corrupt(const std::string& why) const {
  throw Error(EINVAL, "ERR_QCOW2_CORRUPT", "read", file_.path(), "'" + file_.path() + "' is not a valid qcow2 image: " + why);
}

const uint64_t* ClusterMap::l2_table(uint64_t l1_index) {
  CachedTable* victim = &cache_[0];
  for (auto& c : cache_) {
    if (c.l1_index == l1_index) {
      c.used = ++clock_;
      return c.entries.data();
    }
    if (c.used < victim->used) victim = &c;
  }
  const uint64_t e = l1_[l1_index];
  const uint64_t off = e & kOffsetMask;
  if (off == 0) return nullptr;
  if (off % h_.cluster_size != 0) corrupt("L2 table offset " + hex(off) + " (L1 entry " + std::to_string(l1_index) + ") is not cluster aligned");
  if (off >= file_.size() || h_.cluster_size > file_.size() - off)
    corrupt("the L2 table at " + hex(off) + " (L1 entry " + std::to_string(l1_index) + ") lies past the end of the file (" +
            std::to_string(file_.size()) + " bytes)");
  if (file_.read_at(raw_.data(), raw_.size(), off) != raw_.size()) corrupt("short read of the L2 table at " + hex(off));
  victim->entries.resize(l2_entries_ * entry_words_);
  for (size_t i = 0; i < victim->entries.size(); ++i) victim->entries[i] = be64(&raw_[i * 8]);
  victim->l1_index = l1_index;
  victim->used = ++clock_;
  return victim->entries.data();
}

ClusterMap::Unit ClusterMap::unit_at(uint64_t off) {
  const uint64_t l1_index = off / l1_span_;
  const uint64_t* table = l2_table(l1_index);
  if (!table) {
    uint64_t b = l1_index * l1_span_;
    return {Kind::unallocated, off, std::min(b + l1_span_, h_.size), 0, 0};
  }
  const uint64_t cluster_begin = off & ~(h_.cluster_size - 1);
  const uint64_t l2_index = (off % l1_span_) / h_.cluster_size;
  const uint64_t entry = table[l2_index * entry_words_];
  const uint64_t cluster_end = std::min(cluster_begin + h_.cluster_size, h_.size);
  const std::string where = "cluster at virtual offset " + std::to_string(cluster_begin);

  if (entry & kCompressed) {
    uint64_t coffset = entry & ((uint64_t{1} << csize_shift_) - 1);
    uint64_t sectors = ((entry >> csize_shift_) & csize_mask_) + 1;
    uint64_t csize = sectors * 512 - (coffset & 511);
    if (coffset >= file_.size()) corrupt("the compressed " + where + " lies past the end of the file (host offset " + hex(coffset) + ")");
    return {Kind::compressed, cluster_begin, cluster_end, coffset, csize};
  }
  const uint64_t host = entry & kOffsetMask;
  if (host % h_.cluster_size != 0) corrupt("the " + where + " has an unaligned host offset " + hex(host));

  if (!h_.extended_l2) {
    Kind k;
    if (entry & kZeroFlag) {
      if (h_.version < 3) corrupt("zero cluster flag in a version 2 image (" + where + ")");
      k = Kind::zero;
    } else {
      k = host ? Kind::data : Kind::unallocated;
    }
    if (k == Kind::data && host >= file_.size())
      corrupt("the " + where + " lies past the end of the file (host offset " + hex(host) + "; truncated image?)");
    return {k, off, cluster_end, host + (off - cluster_begin), 0};
  }

  // Extended L2: 32 subclusters, bitmap word: bits 0..31 allocated, 32..63 zero.
  const uint64_t bitmap = table[l2_index * 2 + 1];
  const uint32_t alloc = static_cast<uint32_t>(bitmap), zero = static_cast<uint32_t>(bitmap >> 32);
  if (alloc & zero) corrupt("the " + where + " has subclusters both allocated and zero");
  if (!host && alloc) corrupt("the " + where + " has allocated subclusters but no host cluster");
  if (host && alloc && host >= file_.size())
    corrupt("the " + where + " lies past the end of the file (host offset " + hex(host) + "; truncated image?)");
  const uint32_t sc = static_cast<uint32_t>((off - cluster_begin) / unit_);
  const uint64_t sc_begin = cluster_begin + sc * unit_;
  Kind k = (zero >> sc) & 1 ? Kind::zero : (alloc >> sc) & 1 ? Kind::data : Kind::unallocated;
  return {k, off, std::min(sc_begin + unit_, h_.size), host + (off - cluster_begin), 0};
}

Segment ClusterMap::segment(uint64_t off, uint64_t limit) {
  limit = std::min(limit, h_.size);
  Unit u = unit_at(off);
  Segment s{u.kind, off, std::min(u.end, limit), u.host, u.csize, 0};
  if (u.kind == Kind::compressed) {
    s.cluster_begin = u.begin;
    s.begin = off;
    return s;
  }
  while (s.end < limit) {
    Unit n = unit_at(s.end);
    if (n.kind != s.kind) break;
    if (n.kind == Kind::data && n.host != s.host + (s.end - s.begin)) break;
    s.end = std::min(n.end, limit);
  }
  return s;
}

}  // namespace blocksmith::qcow2
