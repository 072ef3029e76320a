// L1/L2 table access: which virtual byte ranges of a qcow2 image are
// unallocated, zero, stored as data (at which host offset) or compressed.
// L2 tables are loaded on demand into a small LRU cache; every table and
// cluster offset is checked against the file before it is used.
#pragma once

#include <cstdint>
#include <vector>

#include "core/pipeline/reader.h"
#include "core/qcow2/qcow2_header.h"

namespace blocksmith::qcow2 {

enum class Kind : uint8_t {
  unallocated,  // read from the backing file, or zeros without one
  zero,         // reads as zeros (v3 zero flag, extended L2 zero bit)
  data,         // stored uncompressed at `host`
  compressed,   // one compressed cluster at `host`, `csize` bytes stored
};

struct Segment {
  Kind kind = Kind::unallocated;
  uint64_t begin = 0;  // virtual range [begin, end)
  uint64_t end = 0;
  uint64_t host = 0;   // data: host offset of `begin`; compressed: of the compressed bytes
  uint64_t csize = 0;  // compressed: bytes stored (may reach past the end of file: read what exists)
  uint64_t cluster_begin = 0;  // compressed: virtual offset of the cluster
};

class ClusterMap {
 public:
  ClusterMap(Reader& file, const Header& header);

  // The longest run starting at `off` (< virtual size) of one kind, ending at
  // or before `limit` (data: host offsets contiguous; compressed: one cluster).
  Segment segment(uint64_t off, uint64_t limit);

  uint64_t unit_size() const { return unit_; }

 private:
  struct Unit {
    Kind kind;
    uint64_t begin, end;
    uint64_t host;   // data: host offset of `begin`
    uint64_t csize;
  };
  Unit unit_at(uint64_t off);
  const uint64_t* l2_table(uint64_t l1_index);  // nullptr: unallocated
  [[noreturn]] void corrupt(const std::string& why) const;

  Reader& file_;
  const Header& h_;
  uint64_t unit_;          // cluster or subcluster size
  uint64_t l2_entries_;    // per table
  uint64_t entry_words_;   // 1, or 2 with extended L2
  uint64_t l1_span_;       // virtual bytes per L1 entry
  uint32_t csize_shift_;
  uint64_t csize_mask_;
  std::vector<uint64_t> l1_;

  struct CachedTable {
    uint64_t l1_index = UINT64_MAX;
    uint64_t used = 0;
    std::vector<uint64_t> entries;
  };
  static constexpr size_t kCacheTables = 8;
  CachedTable cache_[kCacheTables];
  uint64_t clock_ = 0;
  std::vector<uint8_t> raw_;  // one L2 table as read
};

}  // namespace blocksmith::qcow2
