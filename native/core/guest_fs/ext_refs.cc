#include "core/guest_fs/ext_refs.h"

#include <algorithm>
#include <chrono>

#include "core/base/error.h"
#include "core/guest_fs/bytes.h"

namespace blocksmith::fs {
namespace {

// Tree blocks waiting to be read at once (16 bytes each). A real filesystem
// has fewer tree blocks than blocks; 8 Mi of them is ~32 GiB of extent
// leaves or indirect blocks at 4 KiB.
constexpr size_t kMaxTreeRefs = size_t(8) << 20;
constexpr uint64_t kReadChunk = 1 << 20;  // inode tables and tree blocks are read in pieces up to this

enum : uint8_t { kExtentNode = 0, kIndirect = 1 };

struct TreeRef {
  uint64_t block;
  uint32_t ino;
  uint8_t kind;   // kExtentNode or kIndirect
  uint8_t level;  // extent node: the depth it must have; indirect: 1 IND, 2 DIND, 3 TIND
  bool operator<(const TreeRef& o) const {
    if (block != o.block) return block < o.block;
    if (kind != o.kind) return kind < o.kind;
    return level < o.level;
  }
  bool same(const TreeRef& o) const { return block == o.block && kind == o.kind && level == o.level; }
};

const char* inode_name(uint32_t ino, const ExtLayout& g) {
  if (ino == g.named_inodes[0] || (ino == 8 && (g.compat & kCompatHasJournal))) return "the journal";
  if (ino == 1) return "the bad blocks inode";
  if (ino == 2) return "the root directory";
  if (ino == 7) return "the resize inode";
  if (ino == g.named_inodes[1] || ino == g.named_inodes[2] || ino == g.named_inodes[3]) return "a quota file";
  if (ino == g.named_inodes[4]) return "the orphan file";
  return nullptr;
}

class Walker {
 public:
  Walker(Reader& r, const ExtLayout& g, const RefVisitor& visit, const std::string& where)
      : r_(r), g_(g), visit_(visit), where_(where), end_(g.offset + g.blocks_count * g.bs) {}

  RefStats run() {
    metadata();
    inodes();
    trees();
    return stats_;
  }

 private:
  [[noreturn]] void bad(const std::string& what) {
    corrupt(r_.path(), where_ + ": " + what + "; run e2fsck -f on it first");
  }

  // Every reference goes through here: inside the filesystem, then visited.
  // Only group metadata may be at block 0 (the superblock with 4 KiB
  // blocks); for an inode, block 0 means none (e2fsck: a bad block).
  void ref(uint64_t first, uint64_t count, const BlockOwner& owner) {
    if (count == 0) return;
    uint64_t last = 0;
    const uint64_t lowest = owner.kind == RefKind::metadata ? g_.first_data_block : std::max<uint32_t>(g_.first_data_block, 1);
    if (first < lowest || __builtin_add_overflow(first, count, &last) ||
        last > g_.blocks_count) {
      bad(describe_owner(owner, g_) + " is at block " + std::to_string(first) +
          (count > 1 ? " (" + std::to_string(count) + " blocks)" : "") + ", outside the filesystem's blocks " +
          std::to_string(g_.first_data_block) + "-" + std::to_string(g_.blocks_count - 1));
    }
    stats_.blocks += count;
    visit_(first, count, owner);
  }

  void queue(uint64_t block, uint32_t ino, uint8_t kind, uint8_t level) {
    if (next_.size() >= kMaxTreeRefs) {
      unsupported("has more than " + std::to_string(kMaxTreeRefs) +
                  " extent-tree or indirect blocks to check at one level; use sparsify without --fs");
    }
    next_.push_back({block, ino, kind, level});
  }

  [[noreturn]] void unsupported(const std::string& what) {
    throw Error(0, "ERR_FS_UNSUPPORTED", "", r_.path(), "'" + r_.path() + "': " + where_ + " " + what);
  }

  void metadata() {
    for (uint32_t grp = 0; grp < g_.groups; ++grp) {
      const uint64_t first = g_.group_first_block(grp);
      const uint64_t head = std::min<uint64_t>(g_.group_head_blocks(grp), g_.blocks_count - first);
      // Group 0 of a 1 KiB-block filesystem starts at block 1: block 0 is
      // outside the bitmaps (the boot block), never free, never visited.
      if (head) ref(first, head, {RefKind::metadata, 0, grp, "the superblock and group descriptors"});
      ref(g_.block_bitmap(grp), 1, {RefKind::metadata, 0, grp, "the block bitmap"});
      ref(g_.inode_bitmap(grp), 1, {RefKind::metadata, 0, grp, "the inode bitmap"});
      ref(g_.inode_table(grp), g_.itable_blocks, {RefKind::metadata, 0, grp, "the inode table"});
    }
    if (g_.mmp_block) ref(g_.mmp_block, 1, {RefKind::metadata, 0, 0, "the MMP block"});
  }

  bool named(uint32_t ino) const {
    for (uint32_t n : g_.named_inodes) {
      if (n != 0 && n == ino) return true;
    }
    return false;
  }

  void inodes() {
    const uint32_t isz = g_.inode_size;
    std::vector<uint8_t> buf;
    for (uint32_t grp = 0; grp < g_.groups; ++grp) {
      uint32_t n = g_.ipg;  // inodes of this group's table to look at
      if (g_.group_desc_csum()) {
        const uint16_t flags = g_.group_flags(grp);
        const uint32_t unused = g_.itable_unused(grp);
        if (unused > g_.ipg || unused > g_.free_inodes(grp)) {
          bad("group " + std::to_string(grp) + " says " + std::to_string(unused) +
              " inodes at the end of its table are unused, but has " + std::to_string(g_.free_inodes(grp)) +
              " free inodes");
        }
        n = (flags & kBgInodeUninit) ? 0 : g_.ipg - unused;
      }
      // The reserved and named inodes are always in use: their group must
      // not call them unused.
      const uint64_t first_ino = static_cast<uint64_t>(grp) * g_.ipg + 1;
      const uint64_t unused_from = first_ino + n, unused_to = first_ino + g_.ipg;
      auto in_use_but_unused = [&](uint64_t ino) {
        bad("inode " + std::to_string(ino) + " is in use but lies in the unused part of group " +
            std::to_string(grp) + "'s inode table");
      };
      // (With fewer inodes per group than reserved ones, e.g. 8, a group
      // whose table is all in use has no unused part at all.)
      if (unused_from < unused_to && unused_from < g_.first_ino) in_use_but_unused(unused_from);
      for (uint32_t ino : g_.named_inodes) {
        if (ino >= unused_from && ino < unused_to) in_use_but_unused(ino);
      }
      const uint64_t table = g_.offset + g_.inode_table(grp) * g_.bs;
      const uint64_t bytes = static_cast<uint64_t>(n) * isz;
      const uint64_t step = std::max<uint64_t>(kReadChunk / isz, 1) * isz;
      for (uint64_t at = 0; at < bytes; at += step) {
        const uint64_t len = std::min(step, bytes - at);
        buf = read_checked(r_, table + at, len, end_, "inode table");
        for (uint64_t k = 0; k < len; k += isz) {
          const uint32_t ino = static_cast<uint32_t>(first_ino + (at + k) / isz);
          const uint8_t* p = buf.data() + k;
          // As e2fsck's pass 1: reserved inodes always; others when linked.
          if (ino < g_.first_ino || named(ino) || le16(p + 0x1A) != 0) inode(ino, p);
        }
      }
    }
  }

  void inode(uint32_t ino, const uint8_t* p) {
    ++stats_.inodes;
    const uint16_t type = le16(p) & 0xF000;
    const uint32_t flags = le32(p + 0x20);
    const uint64_t size = le32(p + 0x4) | (static_cast<uint64_t>(le32(p + 0x6C)) << 32);
    uint64_t acl = le32(p + 0x68);
    if (g_.incompat & kIncompat64bit) acl |= static_cast<uint64_t>(le16(p + 0x76)) << 32;
    if (acl) ref(acl, 1, {RefKind::xattr, ino});
    // Which inodes have blocks (ext2fs_inode_has_valid_blocks2): the bad
    // blocks inode whatever its mode; directories, regular files and
    // symlinks that are not fast (target inside i_block) nor inline.
    if (ino != 1) {
      if (type != 0x4000 && type != 0x8000 && type != 0xA000) return;
      if (flags & kInlineDataFl) {
        if (!(g_.incompat & kIncompatInlineData)) bad("inode " + std::to_string(ino) + " has inline data but the filesystem has no inline_data feature");
        return;
      }
      if (type == 0xA000 && size > 0 && size < 60) return;  // fast symlink (ext2fs_is_fast_symlink)
    }
    const uint8_t* iblock = p + 0x28;
    if (flags & kExtentsFl) {
      extent_node(iblock, 60, ino, -1, 0);
      return;
    }
    // Block map: 12 direct pointers, then IND, DIND, TIND.
    map_entries(iblock, 12, ino, 0);
    for (uint8_t level = 1; level <= 3; ++level) {
      uint32_t b = le32(iblock + 4 * (11 + level));
      if (b == 0) continue;
      ref(b, 1, {RefKind::indirect, ino});
      queue(b, ino, kIndirect, level);
    }
  }

  // `count` 32-bit block pointers of a block map at `level` (0: data
  // pointers; 1, 2: pointers to IND / DIND blocks). Consecutive data
  // blocks are visited as one range.
  void map_entries(const uint8_t* e, size_t count, uint32_t ino, uint8_t level) {
    uint64_t run_first = 0, run_len = 0;
    for (size_t i = 0; i < count; ++i) {
      const uint32_t b = le32(e + 4 * i);
      if (b == 0) continue;
      if (level == 0) {
        if (run_len && b == run_first + run_len) {
          ++run_len;
          continue;
        }
        if (run_len) ref(run_first, run_len, {RefKind::data, ino});
        run_first = b;
        run_len = 1;
      } else {
        ref(b, 1, {RefKind::indirect, ino});
        queue(b, ino, kIndirect, level);
      }
    }
    if (run_len) ref(run_first, run_len, {RefKind::data, ino});
  }

  // An extent tree node: in the inode (`len` 60, any depth up to 5:
  // expected -1) or a tree block at `block` whose depth must be `expected`.
  void extent_node(const uint8_t* node, size_t len, uint32_t ino, int expected, uint64_t block) {
    const uint16_t magic = le16(node), entries = le16(node + 2), max = le16(node + 4), depth = le16(node + 6);
    const size_t cap = (len - 12) / 12;
    auto where = [&] {
      return "inode " + std::to_string(ino) + (block ? " (extent tree block " + std::to_string(block) + ")" : "");
    };
    if (magic != kExtentMagic) bad(where() + " has no extent header");
    if (max == 0 || max > cap || entries > max) {
      bad(where() + " has a bad extent header (" + std::to_string(entries) + " of " + std::to_string(max) + " entries)");
    }
    if (depth > kMaxExtentDepth || (expected >= 0 && depth != expected)) {
      bad(where() + " has an extent node of depth " + std::to_string(depth) +
          (expected >= 0 ? " where " + std::to_string(expected) + " belongs" : ""));
    }
    for (uint16_t i = 0; i < entries; ++i) {
      const uint8_t* e = node + 12 + 12 * static_cast<size_t>(i);
      if (depth == 0) {
        uint32_t n = le16(e + 4);
        if (n > kInitMaxLen) n -= kInitMaxLen;  // uninitialized: allocated all the same
        const uint64_t start = le32(e + 8) | (static_cast<uint64_t>(le16(e + 6)) << 32);
        ref(start, n, {RefKind::data, ino});
      } else {
        const uint64_t child = le32(e + 4) | (static_cast<uint64_t>(le16(e + 8)) << 32);
        ref(child, 1, {RefKind::extent_tree, ino});
        queue(child, ino, kExtentNode, static_cast<uint8_t>(depth - 1));
      }
    }
  }

  // The tree blocks the inodes pointed to, a level at a time: each round
  // reads its blocks once, in block order (consecutive ones together), and
  // queues the next level. Levels strictly decrease, so there are at most
  // kMaxExtentDepth rounds whatever the pointers say.
  void trees() {
    std::vector<TreeRef> now;
    std::vector<uint8_t> buf;
    for (int round = 0; !next_.empty(); ++round) {
      if (round > kMaxExtentDepth) bad("extent trees deeper than " + std::to_string(kMaxExtentDepth) + " levels");
      now.swap(next_);
      next_.clear();
      std::sort(now.begin(), now.end());
      now.erase(std::unique(now.begin(), now.end(), [](const TreeRef& a, const TreeRef& b) { return a.same(b); }),
                now.end());
      const uint64_t max_run = std::max<uint64_t>(kReadChunk / g_.bs, 1);
      for (size_t i = 0; i < now.size();) {
        // Refs [i, j) lie in blocks [first, first + span): one read.
        const uint64_t first = now[i].block;
        size_t j = i + 1;
        while (j < now.size() && now[j].block - first < max_run &&
               (now[j].block == now[j - 1].block || now[j].block == now[j - 1].block + 1)) {
          ++j;
        }
        const uint64_t span = now[j - 1].block - first + 1;
        buf = read_checked(r_, g_.offset + first * g_.bs, span * g_.bs, end_, "extent tree or indirect block");
        for (size_t k = i; k < j; ++k) {
          const TreeRef& t = now[k];
          ++stats_.tree_blocks;
          const uint8_t* b = buf.data() + (t.block - first) * g_.bs;
          if (t.kind == kExtentNode) extent_node(b, g_.bs, t.ino, t.level, t.block);
          else map_entries(b, g_.bs / 4, t.ino, static_cast<uint8_t>(t.level - 1));
        }
        i = j;
      }
    }
  }

  Reader& r_;
  const ExtLayout& g_;
  const RefVisitor& visit_;
  const std::string& where_;
  const uint64_t end_;
  std::vector<TreeRef> next_;
  RefStats stats_;
};

}  // namespace

std::string describe_owner(const BlockOwner& owner, const ExtLayout& layout) {
  if (owner.kind == RefKind::metadata) {
    std::string s = owner.what;
    if (s != "the MMP block") s += " of group " + std::to_string(owner.group);
    return s;
  }
  std::string s = "inode " + std::to_string(owner.ino);
  if (const char* name = inode_name(owner.ino, layout)) s += std::string(", ") + name;
  switch (owner.kind) {
    case RefKind::data: return s + " (data)";
    case RefKind::extent_tree: return s + " (an extent tree block)";
    case RefKind::indirect: return s + " (an indirect block)";
    case RefKind::xattr: return s + " (its extended-attribute block)";
    case RefKind::metadata: break;
  }
  return s;
}

RefStats walk_references(Reader& reader, const ExtLayout& layout, const RefVisitor& visit, const std::string& where) {
  const auto t0 = std::chrono::steady_clock::now();
  RefStats stats = Walker(reader, layout, visit, where).run();
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return stats;
}

RefStats check_free_against_references(Reader& reader, const ExtLayout& g, const std::vector<ByteRange>& free,
                                       const std::string& where) {
  auto visit = [&](uint64_t first, uint64_t count, const BlockOwner& owner) {
    const uint64_t b = g.offset + first * g.bs, e = g.offset + (first + count) * g.bs;
    auto it = std::upper_bound(free.begin(), free.end(), b, [](uint64_t v, const ByteRange& f) { return v < f.end; });
    if (it == free.end() || it->begin >= e) return;
    const uint64_t fb = (std::max(b, it->begin) - g.offset) / g.bs;
    const uint64_t fe = (std::min(e, it->end) - g.offset + g.bs - 1) / g.bs;  // exclusive
    const std::string blocks = fe - fb == 1 ? "block " + std::to_string(fb) + " is"
                                            : "blocks " + std::to_string(fb) + "-" + std::to_string(fe - 1) + " are";
    corrupt(reader.path(), where + ": " + blocks + " marked free in the block bitmap but " +
                               (fe - fb == 1 ? "belongs" : "belong") + " to " + describe_owner(owner, g) +
                               "; run e2fsck -f on it first");
  };
  return walk_references(reader, g, visit, where);
}

}  // namespace blocksmith::fs
