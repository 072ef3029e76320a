#include "core/guest_fs/ext_block_map.h"

#include <algorithm>
#include <map>

#include "core/guest_fs/bytes.h"

namespace blocksmith::fs {
namespace {


std::string blocks_text(uint64_t first, uint64_t last) {
  return first == last ? "file block " + std::to_string(first)
                       : "file blocks " + std::to_string(first) + "-" + std::to_string(last);
}

// One walk over one inode's map. Every tree block is checked whole before
// any of its entries is used: a free block reused for something else is
// garbage as a whole, so nothing from it is mapped. The walk stops at the
// first problem (problem, known_blocks) or when it reaches max_blocks.
class Mapper {
 public:
  Mapper(const ExtLayout& g, const BlockFetch& fetch, uint64_t max_blocks)
      : g_(g),
        fetch_(fetch),
        max_(max_blocks),
        lowest_(std::max<uint64_t>(g.first_data_block, 1)),
        epb_(g.bs / 4),
        bufs_(kMaxExtentDepth + 1, std::vector<uint8_t>(g.bs)) {}

  BlockMap run(const uint8_t* inode) {
    const uint32_t flags = le32(inode + 0x20);
    const uint8_t* iblock = inode + 0x28;
    if (max_ == 0 || (flags & kInlineDataFl) || g_.bs < 1024) {
      map_.known_blocks = max_;
      return std::move(map_);
    }
    if (flags & kExtentsFl) {
      extent_node(iblock, 60, -1, 0, 0);
    } else {
      block_map(iblock);
    }
    if (!stopped_) map_.known_blocks = max_;
    check_physical_overlaps();
    // What a stop left past the point where the map stopped being known
    // (an index entry that goes back) is not kept.
    auto& runs = map_.runs;
    const uint64_t known = map_.known_blocks;
    runs.erase(std::remove_if(runs.begin(), runs.end(), [&](const BlockRun& r) { return r.logical >= known; }),
               runs.end());
    for (auto& r : runs) r.count = std::min(r.count, known - r.logical);
    return std::move(map_);
  }

 private:
  bool over() const { return stopped_ || done_; }

  void stop(uint64_t logical, const std::string& why) {
    if (stopped_) return;
    stopped_ = true;
    map_.problem = why;
    map_.known_blocks = std::min(logical, max_);
  }

  bool in_fs(uint64_t b, uint64_t count = 1) const {
    uint64_t end = 0;
    return b >= lowest_ && !__builtin_add_overflow(b, count, &end) && end <= g_.blocks_count;
  }

  // Data blocks [logical, +count) at physical, clipped at max_blocks.
  void add(uint64_t logical, uint64_t physical, uint64_t count, bool uninit) {
    if (over()) return;
    if (logical >= max_) {
      done_ = true;
      return;
    }
    if (logical < next_logical_) {
      stop(logical, blocks_text(logical, logical) + " is mapped twice (extents overlap or are out of order)");
      return;
    }
    count = std::min(count, max_ - logical);
    if (mapped_ + count > g_.blocks_count) {
      stop(logical, "the map holds more blocks than the filesystem has");
      return;
    }
    mapped_ += count;
    next_logical_ = logical + count;
    auto& runs = map_.runs;
    if (!runs.empty()) {
      BlockRun& r = runs.back();
      if (r.logical + r.count == logical && r.physical + r.count == physical && r.uninitialized == uninit) {
        r.count += count;
        return;
      }
    }
    runs.push_back({logical, physical, count, uninit});
  }

  // Reads tree block `block` into the buffer of `level`; counts fetches so
  // that no map reads more tree blocks than the filesystem has.
  const uint8_t* fetch(uint64_t block, int level, uint64_t logical, const std::string& what) {
    if (++fetches_ > g_.blocks_count) {
      stop(logical, "the map goes through more tree blocks than the filesystem has");
      return nullptr;
    }
    map_.tree_blocks.push_back(block);
    uint8_t* buf = bufs_[static_cast<size_t>(level)].data();
    if (!fetch_(block, buf)) {
      stop(logical, what + " could not be read");
      return nullptr;
    }
    return buf;
  }

  // ---- Block maps (ext2/ext3, ext4 without extents) ----

  void block_map(const uint8_t* iblock) {
    for (uint32_t i = 0; i < 12 && !over(); ++i) {
      if (i >= max_) {
        done_ = true;
        return;
      }
      const uint32_t b = le32(iblock + 4 * i);
      if (b == 0) continue;  // a hole
      if (!in_fs(b)) {
        stop(i, "the inode's block pointer " + std::to_string(i) + " is " + std::to_string(b) +
                    ", outside the filesystem");
        return;
      }
      add(i, b, 1, false);
    }
    static const char* const kNames[] = {"", "indirect", "double indirect", "triple indirect"};
    uint64_t base = 12, span = 1;
    for (int level = 1; level <= 3 && !over(); ++level) {
      span *= epb_;
      const uint32_t b = le32(iblock + 4 * (11 + level));
      if (b != 0 && !in_fs(b) && base < max_) {
        stop(base, std::string("the inode's ") + kNames[level] + " block pointer is " + std::to_string(b) +
                       ", outside the filesystem");
        return;
      }
      indirect(b, level, base, kNames[level]);
      base += span;
    }
  }

  // An indirect block of `level` (1: block numbers of data; 2, 3: of
  // indirect blocks one level down) whose first entry maps file block `base`.
  void indirect(uint64_t block, int level, uint64_t base, const char* name) {
    if (over()) return;
    if (base >= max_) {
      done_ = true;
      return;
    }
    if (block == 0) return;  // a hole as long as the whole subtree
    uint64_t child_span = 1;
    for (int l = 1; l < level; ++l) child_span *= epb_;
    const uint64_t left = max_ - base;  // entries before max_blocks (no overflow whatever max_blocks is)
    const uint64_t used = std::min<uint64_t>(epb_, left / child_span + (left % child_span != 0));
    const uint64_t last = std::min(max_ - 1, base + epb_ * child_span - 1);
    const std::string what = std::string("the ") + name + " block " + std::to_string(block) + " (" +
                             blocks_text(base, last) + ")";
    const uint8_t* p = fetch(block, level, base, what);
    if (!p) return;
    bool any = false;
    for (uint64_t i = 0; i < used; ++i) {
      const uint32_t b = le32(p + 4 * i);
      if (b == 0) continue;
      any = true;
      if (!in_fs(b)) {
        stop(base, what + " holds block numbers outside the filesystem (entry " + std::to_string(i) + ": " +
                       std::to_string(b) + ")");
        return;
      }
    }
    if (!any) {
      stop(base, what + " holds no block numbers (zeroed, as a delete leaves it)");
      return;
    }
    // The buffer of this level stays ours while the children use theirs.
    for (uint64_t i = 0; i < used && !over(); ++i) {
      const uint32_t b = le32(p + 4 * i);
      if (b == 0) continue;
      if (level == 1) add(base + i, b, 1, false);
      else indirect(b, level - 1, base + i * child_span, level == 2 ? "indirect" : "double indirect");
    }
  }

  // ---- Extent trees (ext4) ----

  // A node: the root in the inode (`len` 60, `expected` -1: any depth up to
  // 5) or the tree block `block` whose depth must be `expected`; `lo` is the
  // first file block its parent says it maps.
  void extent_node(const uint8_t* node, size_t len, int expected, uint64_t block, uint64_t lo) {
    if (over()) return;
    const std::string where = block ? "the extent tree block " + std::to_string(block) : std::string("the inode");
    const uint16_t magic = le16(node), entries = le16(node + 2), max = le16(node + 4), depth = le16(node + 6);
    const size_t cap = (len - 12) / 12;
    if (magic != kExtentMagic) return stop(lo, where + " has no extent header");
    if (max == 0 || max > cap || entries > max) {
      return stop(lo, where + " has a bad extent header (" + std::to_string(entries) + " of " + std::to_string(max) +
                          " entries)");
    }
    if (depth > kMaxExtentDepth || (expected >= 0 && depth != expected)) {
      return stop(lo, where + " is an extent node of depth " + std::to_string(depth) +
                          (expected >= 0 ? " where depth " + std::to_string(expected) + " belongs" : ""));
    }
    // The kernel frees an emptied tree block: a block node without entries is not one.
    if (block && entries == 0) return stop(lo, where + " has no entries");
    // Check the whole node first: starts in increasing order, lengths and
    // block numbers inside the filesystem.
    uint64_t prev_end = 0;
    for (uint16_t i = 0; i < entries; ++i) {
      const uint8_t* e = node + 12 + 12 * static_cast<size_t>(i);
      const uint64_t first = le32(e);
      if (i > 0 && first < prev_end) {
        return stop(lo, where + " lists its extents out of order (entry " + std::to_string(i) + " starts at " +
                            blocks_text(first, first) + ")");
      }
      if (depth == 0) {
        uint32_t n = le16(e + 4);
        if (n > kInitMaxLen) n -= kInitMaxLen;
        const uint64_t start = le32(e + 8) | (static_cast<uint64_t>(le16(e + 6)) << 32);
        if (n == 0 || !in_fs(start, n)) {
          return stop(lo, where + " maps " + blocks_text(first, first + (n ? n - 1 : 0)) + " to blocks outside the filesystem (" +
                              std::to_string(start) + ", " + std::to_string(n) + " blocks)");
        }
        prev_end = first + n;
      } else {
        const uint64_t child = le32(e + 4) | (static_cast<uint64_t>(le16(e + 8)) << 32);
        if (!in_fs(child)) {
          return stop(lo, where + " points at block " + std::to_string(child) + ", outside the filesystem");
        }
        prev_end = first + 1;
      }
    }
    for (uint16_t i = 0; i < entries && !over(); ++i) {
      const uint8_t* e = node + 12 + 12 * static_cast<size_t>(i);
      const uint64_t first = le32(e);
      if (depth == 0) {
        const uint32_t raw = le16(e + 4);
        const bool uninit = raw > kInitMaxLen;
        const uint64_t start = le32(e + 8) | (static_cast<uint64_t>(le16(e + 6)) << 32);
        add(first, start, uninit ? raw - kInitMaxLen : raw, uninit);
      } else {
        if (first >= max_) {
          done_ = true;
          return;
        }
        const uint64_t child = le32(e + 4) | (static_cast<uint64_t>(le16(e + 8)) << 32);
        const uint64_t from = std::max(first, lo);
        const uint8_t* p = fetch(child, depth - 1, from,
                                 "the extent tree block " + std::to_string(child) + " (from " +
                                     blocks_text(from, from) + ")");
        if (!p) return;
        extent_node(p, g_.bs, depth - 1, child, from);
      }
    }
  }

  // Two file blocks on the same filesystem block: the map is garbage from
  // the later of the two on. Runs are taken in logical order, their blocks
  // kept as disjoint intervals (end -> start): the first run that meets an
  // earlier one holds the first duplicate.
  void check_physical_overlaps() {
    auto& runs = map_.runs;
    std::map<uint64_t, uint64_t> seen;  // physical end -> start
    for (size_t i = 0; i < runs.size(); ++i) {
      const BlockRun& r = runs[i];
      auto it = seen.upper_bound(r.physical);
      if (it != seen.end() && it->second < r.physical + r.count) {
        const uint64_t dup = std::max(it->second, r.physical);
        const uint64_t cut = r.logical + (dup - r.physical);
        uint64_t earlier = 0;
        for (size_t k = 0; k < i; ++k) {
          if (dup >= runs[k].physical && dup < runs[k].physical + runs[k].count) {
            earlier = runs[k].logical + (dup - runs[k].physical);
          }
        }
        if (stopped_ && cut >= map_.known_blocks) return;
        stopped_ = false;
        stop(cut, blocks_text(earlier, earlier) + " and " + blocks_text(cut, cut) + " both map to block " +
                      std::to_string(dup));
        return;
      }
      seen[r.physical + r.count] = r.physical;
    }
  }

  const ExtLayout& g_;
  const BlockFetch& fetch_;
  const uint64_t max_, lowest_, epb_;
  std::vector<std::vector<uint8_t>> bufs_;  // one tree block per level
  BlockMap map_;
  bool stopped_ = false, done_ = false;
  uint64_t next_logical_ = 0, mapped_ = 0, fetches_ = 0;
};

}  // namespace

BlockMap map_inode_blocks(const uint8_t* inode, const ExtLayout& layout, const BlockFetch& fetch, uint64_t max_blocks) {
  return Mapper(layout, fetch, max_blocks).run(inode);
}

}  // namespace blocksmith::fs
