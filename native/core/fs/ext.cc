#include "ext.h"

#include <algorithm>
#include <set>

#include "bytes.h"
#include "checksum.h"

namespace blocksmith::fs {
namespace {

// s_feature_compat
constexpr uint32_t kCompatHasJournal = 0x4, kCompatResizeInode = 0x10, kCompatSparseSuper2 = 0x200;
// s_feature_incompat
constexpr uint32_t kIncompatFiletype = 0x2, kIncompatRecover = 0x4, kIncompatJournalDev = 0x8,
                   kIncompatMetaBg = 0x10, kIncompatExtents = 0x40, kIncompat64bit = 0x80, kIncompatMmp = 0x100,
                   kIncompatFlexBg = 0x200, kIncompatEaInode = 0x400, kIncompatCsumSeed = 0x2000,
                   kIncompatLargedir = 0x4000, kIncompatInlineData = 0x8000, kIncompatEncrypt = 0x10000,
                   kIncompatCasefold = 0x20000;
constexpr uint32_t kIncompatKnown = kIncompatFiletype | kIncompatRecover | kIncompatJournalDev | kIncompatMetaBg |
                                    kIncompatExtents | kIncompat64bit | kIncompatMmp | kIncompatFlexBg |
                                    kIncompatEaInode | kIncompatCsumSeed | kIncompatLargedir | kIncompatInlineData |
                                    kIncompatEncrypt | kIncompatCasefold;
// s_feature_ro_compat
constexpr uint32_t kRoSparseSuper = 0x1, kRoLargeFile = 0x2, kRoBtreeDir = 0x4, kRoHugeFile = 0x8,
                   kRoGdtCsum = 0x10, kRoDirNlink = 0x20, kRoExtraIsize = 0x40, kRoQuota = 0x100,
                   kRoBigalloc = 0x200, kRoMetadataCsum = 0x400, kRoReadonly = 0x1000, kRoProject = 0x2000,
                   kRoVerity = 0x8000, kRoOrphanPresent = 0x10000;
constexpr uint32_t kRoKnown = kRoSparseSuper | kRoLargeFile | kRoBtreeDir | kRoHugeFile | kRoGdtCsum | kRoDirNlink |
                              kRoExtraIsize | kRoQuota | kRoBigalloc | kRoMetadataCsum | kRoReadonly | kRoProject |
                              kRoVerity | kRoOrphanPresent;

constexpr uint16_t kBgBlockUninit = 0x2;

// Bounds on what a superblock may make us hold in memory (see read_ext).
constexpr uint64_t kMaxDescriptorBytes = uint64_t(256) << 20;
constexpr size_t kMaxFreeRanges = size_t(16) << 20;  // 16 bytes each: 256 MiB

[[noreturn]] void unsupported(const std::string& path, const std::string& what) {
  throw Error(0, "ERR_FS_UNSUPPORTED", "", path, "'" + path + "': " + what);
}
[[noreturn]] void dirty(const std::string& path, const std::string& what) {
  throw Error(0, "ERR_FS_DIRTY", "", path, "'" + path + "': " + what + "; run e2fsck on it first");
}

bool is_power_of(uint64_t n, uint64_t base) {
  while (n > 1 && n % base == 0) n /= base;
  return n == 1;
}

std::string hex(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%x", v);
  return b;
}

struct Geometry {
  uint64_t offset, limit;
  uint32_t bs, ratio, bpg, cpg, first_data_block, desc_size, descs_per_block, groups;
  uint32_t compat, incompat, ro_compat, first_meta_bg, reserved_gdt;
  uint32_t backup_bgs[2];
  uint64_t blocks_count;
  uint64_t desc_blocks;

  bool has_super(uint32_t g) const {
    if (g == 0) return true;
    if (compat & kCompatSparseSuper2) return g == backup_bgs[0] || g == backup_bgs[1];
    if (g <= 1 || !(ro_compat & kRoSparseSuper)) return true;
    if (!(g & 1)) return false;
    return is_power_of(g, 3) || is_power_of(g, 5) || is_power_of(g, 7);
  }
  uint64_t group_first_block(uint32_t g) const { return first_data_block + static_cast<uint64_t>(g) * bpg; }
  // Block number of descriptor block i (ext2fs_descriptor_block_loc2).
  uint64_t desc_block(uint64_t i) const {
    uint64_t adjust = (i == 0 && bs == 1024 && ratio > 1) ? 1 : 0;
    if (!(incompat & kIncompatMetaBg) || i < first_meta_bg) return first_data_block + i + 1 + adjust;
    uint64_t g = descs_per_block * i;
    return group_first_block(static_cast<uint32_t>(g)) + (has_super(static_cast<uint32_t>(g)) ? 1 : 0);
  }
};

}  // namespace

bool probe_ext(Reader& reader, uint64_t offset, uint64_t limit) {
  if (limit < 2048 || offset + 2048 > reader.size()) return false;
  uint8_t m[2];
  if (reader.read_at(m, 2, offset + 1024 + 0x38) != 2) return false;
  return le16(m) == 0xEF53;
}

ExtInfo read_ext(Reader& reader, uint64_t offset, uint64_t limit) {
  const std::string& path = reader.path();
  limit = std::min(limit, reader.size() > offset ? reader.size() - offset : 0);
  const uint64_t end = offset + limit;
  auto sbv = read_checked(reader, offset + 1024, 1024, end, "ext superblock");
  const uint8_t* sb = sbv.data();
  if (le16(sb + 0x38) != 0xEF53) corrupt(path, "no ext superblock at byte " + std::to_string(offset + 1024));

  Geometry g{};
  g.offset = offset;
  g.limit = limit;
  g.compat = le32(sb + 0x5C);
  g.incompat = le32(sb + 0x60);
  g.ro_compat = le32(sb + 0x64);
  const std::string where = "the ext filesystem at byte " + std::to_string(offset);

  // Checksums first: a corrupt superblock must not be interpreted further.
  uint32_t seed = 0;
  const bool csum = g.ro_compat & kRoMetadataCsum;
  const bool gdt_csum = g.ro_compat & kRoGdtCsum;
  if (csum) {
    if (sb[0x175] != 1) unsupported(path, where + " uses an unknown checksum type " + std::to_string(sb[0x175]));
    if (crc32c_update(~0u, sb, 0x3FC) != le32(sb + 0x3FC)) corrupt(path, where + " has a bad superblock checksum");
    seed = (g.incompat & kIncompatCsumSeed) ? le32(sb + 0x270) : crc32c_update(~0u, sb + 0x68, 16);
  }

  if (g.incompat & kIncompatJournalDev) unsupported(path, where + " is an external journal device, not a filesystem");
  if (g.incompat & ~kIncompatKnown) {
    unsupported(path, where + " has unknown incompatible features " + hex(g.incompat & ~kIncompatKnown));
  }
  if (g.ro_compat & ~kRoKnown) {
    unsupported(path, where + " has unknown read-only-compatible features " + hex(g.ro_compat & ~kRoKnown));
  }
  if ((g.compat & kCompatHasJournal) && le32(sb + 0xE0) == 0) {
    unsupported(path, where + " has an external journal (device " + hex(le32(sb + 0xE4)) + ")");
  }

  // Clean?
  uint16_t state = le16(sb + 0x3A);
  if (!(state & 1) || (state & 2)) {
    dirty(path, where + " was not cleanly unmounted or has errors (s_state " + hex(state) + ")");
  }
  if (g.incompat & kIncompatRecover) dirty(path, where + " has a journal that needs recovery");
  if (le32(sb + 0xE8) != 0) dirty(path, where + " has an orphan inode list to process");
  if (g.ro_compat & kRoOrphanPresent) dirty(path, where + " has orphan inodes to process (orphan file)");

  uint32_t log_bs = le32(sb + 0x18), log_cs = le32(sb + 0x1C);
  if (log_bs > 6) corrupt(path, where + ": bad block size");
  g.bs = 1024u << log_bs;
  if (g.ro_compat & kRoBigalloc) {
    if (log_cs < log_bs || log_cs > log_bs + 16) corrupt(path, where + ": bad cluster size");
    g.ratio = 1u << (log_cs - log_bs);
  } else {
    g.ratio = 1;
  }
  g.bpg = le32(sb + 0x20);
  g.cpg = (g.ro_compat & kRoBigalloc) ? le32(sb + 0x24) : g.bpg;
  g.first_data_block = le32(sb + 0x14);
  g.blocks_count = le32(sb + 0x04);
  if (g.incompat & kIncompat64bit) g.blocks_count |= static_cast<uint64_t>(le32(sb + 0x150)) << 32;
  g.desc_size = (g.incompat & kIncompat64bit) ? le16(sb + 0xFE) : 32;
  g.first_meta_bg = le32(sb + 0x104);
  g.reserved_gdt = le16(sb + 0xCE);
  g.backup_bgs[0] = le32(sb + 0x24C);
  g.backup_bgs[1] = le32(sb + 0x250);

  if (g.cpg == 0 || g.cpg % 8 != 0 || g.cpg > 8ull * g.bs || (g.ratio > 1 && static_cast<uint64_t>(g.cpg) * g.ratio != g.bpg) ||
      (g.ratio == 1 && g.bpg == 0)) {
    corrupt(path, where + ": bad blocks per group");
  }
  if (g.first_data_block != (g.bs == 1024 && g.ratio == 1 ? 1u : 0u)) corrupt(path, where + ": bad first data block");
  if (g.desc_size < 32 || g.desc_size > g.bs || (g.desc_size & (g.desc_size - 1)) ||
      ((g.incompat & kIncompat64bit) && g.desc_size < 64)) {
    corrupt(path, where + ": bad group descriptor size " + std::to_string(g.desc_size));
  }
  if (g.blocks_count <= g.first_data_block) corrupt(path, where + ": bad block count");
  uint64_t fs_bytes = 0;
  if (__builtin_mul_overflow(g.blocks_count, static_cast<uint64_t>(g.bs), &fs_bytes) || fs_bytes > limit) {
    corrupt(path, where + " is " + std::to_string(g.blocks_count) + " blocks of " + std::to_string(g.bs) +
                      " bytes, larger than the " + std::to_string(limit) +
                      " bytes available (truncated image or wrong partition table)");
  }
  uint64_t groups = (g.blocks_count - g.first_data_block + g.bpg - 1) / g.bpg;
  if (groups == 0 || groups > (1ull << 32) - 1) corrupt(path, where + ": bad group count");
  g.groups = static_cast<uint32_t>(groups);
  // Memory stays bounded whatever the superblock claims: a real filesystem's
  // descriptor table is a few MiB (8 MiB for 16 TiB with default groups).
  if (groups * g.desc_size > kMaxDescriptorBytes) {
    unsupported(path, where + " claims " + std::to_string(groups) + " block groups (a " +
                          std::to_string((groups * g.desc_size) >> 20) + " MiB descriptor table, more than the " +
                          std::to_string(kMaxDescriptorBytes >> 20) + " MiB blocksmith reads); use sparsify without --fs");
  }
  g.descs_per_block = g.bs / g.desc_size;
  g.desc_blocks = (groups + g.descs_per_block - 1) / g.descs_per_block;
  if ((g.incompat & kIncompatMetaBg) && g.first_meta_bg > g.desc_blocks) {
    corrupt(path, where + ": bad first_meta_bg");
  }

  if (g.incompat & kIncompatMmp) {
    uint64_t mmp_block = le64(sb + 0x168);
    if (mmp_block >= g.blocks_count) corrupt(path, where + ": MMP block outside the filesystem");
    auto mmp = read_checked(reader, offset + mmp_block * g.bs, 8, end, "MMP block");
    uint32_t seq = le32(mmp.data() + 4);
    if (le32(mmp.data()) != 0x004D4D50u) corrupt(path, where + ": bad MMP block");
    if (seq != 0xFF4D4D50u) dirty(path, where + " is in use according to MMP (mounted or being checked elsewhere)");
  }

  // Group descriptors.
  std::vector<uint8_t> descs(static_cast<size_t>(groups) * g.desc_size);
  for (uint64_t i = 0; i < g.desc_blocks; ++i) {
    uint64_t blk = g.desc_block(i);
    if (blk >= g.blocks_count) corrupt(path, where + ": group descriptor block outside the filesystem");
    auto b = read_checked(reader, offset + blk * g.bs, g.bs, end, "group descriptor block");
    size_t at = static_cast<size_t>(i * g.descs_per_block * g.desc_size);
    std::memcpy(descs.data() + at, b.data(), std::min<size_t>(g.bs, descs.size() - at));
  }
  auto desc = [&](uint32_t grp) { return descs.data() + static_cast<size_t>(grp) * g.desc_size; };
  auto desc_u32 = [&](uint32_t grp, int lo, int hi) -> uint64_t {
    const uint8_t* d = desc(grp);
    uint64_t v = le32(d + lo);
    if (g.desc_size >= 64 && hi >= 0) v |= static_cast<uint64_t>(le32(d + hi)) << 32;
    return v;
  };
  auto desc_u16 = [&](uint32_t grp, int lo, int hi) -> uint32_t {
    const uint8_t* d = desc(grp);
    uint32_t v = le16(d + lo);
    if (g.desc_size >= 64 && hi >= 0) v |= static_cast<uint32_t>(le16(d + hi)) << 16;
    return v;
  };
  for (uint32_t grp = 0; grp < g.groups; ++grp) {
    const uint8_t* d = desc(grp);
    uint8_t group_le[4] = {static_cast<uint8_t>(grp), static_cast<uint8_t>(grp >> 8), static_cast<uint8_t>(grp >> 16),
                           static_cast<uint8_t>(grp >> 24)};
    const uint8_t zero2[2] = {0, 0};
    if (csum) {
      uint32_t c = crc32c_update(seed, group_le, 4);
      c = crc32c_update(c, d, 0x1E);
      c = crc32c_update(c, zero2, 2);
      if (g.desc_size > 0x20) c = crc32c_update(c, d + 0x20, g.desc_size - 0x20);
      if ((c & 0xFFFF) != le16(d + 0x1E)) corrupt(path, where + ": bad checksum of group descriptor " + std::to_string(grp));
    } else if (gdt_csum) {
      uint16_t c = crc16_update(0xFFFF, sb + 0x68, 16);
      c = crc16_update(c, group_le, 4);
      c = crc16_update(c, d, 0x1E);
      if (g.desc_size > 0x20) c = crc16_update(c, d + 0x20, g.desc_size - 0x20);
      if (c != le16(d + 0x1E)) corrupt(path, where + ": bad checksum of group descriptor " + std::to_string(grp));
    }
  }

  ExtInfo info;
  info.type = (g.incompat & ~(kIncompatFiletype | kIncompatRecover | kIncompatMetaBg)) ||
                      (g.ro_compat & ~(kRoSparseSuper | kRoLargeFile | kRoBtreeDir))
                  ? "ext4"
                  : (g.compat & kCompatHasJournal) ? "ext3" : "ext2";
  info.label.assign(reinterpret_cast<const char*>(sb + 0x78), strnlen(reinterpret_cast<const char*>(sb + 0x78), 16));
  info.block_size = g.bs;
  info.cluster_size = g.bs * g.ratio;
  info.blocks_count = g.blocks_count;
  info.groups = g.groups;
  struct Named { uint32_t bit; const char* name; };
  for (auto [bit, name] : {Named{kCompatHasJournal, "has_journal"}, Named{kCompatResizeInode, "resize_inode"},
                           Named{kCompatSparseSuper2, "sparse_super2"}}) {
    if (g.compat & bit) info.features.push_back(name);
  }
  for (auto [bit, name] : {Named{kIncompatMetaBg, "meta_bg"}, Named{kIncompatExtents, "extent"},
                           Named{kIncompat64bit, "64bit"}, Named{kIncompatMmp, "mmp"}, Named{kIncompatFlexBg, "flex_bg"},
                           Named{kIncompatInlineData, "inline_data"}}) {
    if (g.incompat & bit) info.features.push_back(name);
  }
  for (auto [bit, name] : {Named{kRoSparseSuper, "sparse_super"}, Named{kRoHugeFile, "huge_file"},
                           Named{kRoGdtCsum, "uninit_bg"}, Named{kRoBigalloc, "bigalloc"},
                           Named{kRoMetadataCsum, "metadata_csum"}}) {
    if (g.ro_compat & bit) info.features.push_back(name);
  }

  // Every group's own metadata blocks, for BLOCK_UNINIT groups (whose
  // bitmap is not on disk): with flex_bg a group may hold other groups'.
  // (ranges [begin, end) of block numbers, sorted by begin).
  std::vector<std::pair<uint64_t, uint64_t>> meta;
  uint64_t itable_blocks = 0;
  {
    uint32_t ipg = le32(sb + 0x28);
    uint32_t isz = le32(sb + 0x4C) >= 1 ? le16(sb + 0x58) : 128;
    if (isz < 128 || isz > g.bs || (isz & (isz - 1))) corrupt(path, where + ": bad inode size");
    itable_blocks = (static_cast<uint64_t>(ipg) * isz + g.bs - 1) / g.bs;
  }
  for (uint32_t grp = 0; grp < g.groups; ++grp) {
    uint64_t bb = desc_u32(grp, 0x0, 0x20), ib = desc_u32(grp, 0x4, 0x24), it = desc_u32(grp, 0x8, 0x28);
    if (bb >= g.blocks_count || ib >= g.blocks_count || it >= g.blocks_count || itable_blocks > g.blocks_count - it) {
      corrupt(path, where + ": group " + std::to_string(grp) + " has metadata outside the filesystem");
    }
    meta.push_back({bb, bb + 1});
    meta.push_back({ib, ib + 1});
    meta.push_back({it, it + itable_blocks});
  }
  std::sort(meta.begin(), meta.end());

  const uint64_t total_clusters = (g.blocks_count - g.first_data_block + g.ratio - 1) / g.ratio;
  const uint32_t old_desc_blocks =
      (g.incompat & kIncompatMetaBg) ? g.first_meta_bg : static_cast<uint32_t>(g.desc_blocks + g.reserved_gdt);
  std::vector<uint8_t> computed(g.cpg / 8 + 1);

  for (uint32_t grp = 0; grp < g.groups; ++grp) {
    const uint64_t first_cluster = static_cast<uint64_t>(grp) * g.cpg;
    const uint32_t nclusters = static_cast<uint32_t>(std::min<uint64_t>(g.cpg, total_clusters - first_cluster));
    const uint16_t flags = le16(desc(grp) + 0x12);
    const uint32_t desc_free = desc_u16(grp, 0xC, 0x2C);
    const uint8_t* bitmap = nullptr;
    std::vector<uint8_t> on_disk;
    const bool uninit = (flags & kBgBlockUninit) && (csum || gdt_csum);
    if (uninit) {
      ++info.uninit_groups;
      // In use: superblock + old-style descriptors + reserved GDT, the
      // meta_bg descriptor block, and any group's bitmaps / inode table here.
      std::fill(computed.begin(), computed.end(), 0);
      auto mark_block = [&](uint64_t blk) {
        if (blk < g.first_data_block) return;
        uint64_t c = (blk - g.first_data_block) / g.ratio;
        if (c >= first_cluster && c < first_cluster + nclusters) {
          uint64_t i = c - first_cluster;
          computed[i / 8] |= static_cast<uint8_t>(1u << (i % 8));
        }
      };
      const uint64_t gfirst = g.group_first_block(grp);
      uint64_t base = 0;
      if (g.has_super(grp)) base = 1 + old_desc_blocks;
      if (g.incompat & kIncompatMetaBg) {
        uint32_t mbg = grp / g.descs_per_block, idx = grp % g.descs_per_block;
        if (mbg >= g.first_meta_bg && (idx == 0 || idx == 1 || idx == g.descs_per_block - 1)) ++base;
      }
      if (grp == 0 && g.bs == 1024 && g.ratio > 1) ++base;
      for (uint64_t b = gfirst; b < gfirst + base && b < g.blocks_count; ++b) mark_block(b);
      const uint64_t glast = gfirst + static_cast<uint64_t>(nclusters) * g.ratio;
      const uint64_t from = gfirst > itable_blocks ? gfirst - itable_blocks : 0;  // no range is longer
      auto it = std::lower_bound(meta.begin(), meta.end(), std::make_pair(from, uint64_t{0}));
      for (; it != meta.end() && it->first < glast; ++it) {
        for (uint64_t b = std::max(it->first, gfirst); b < std::min(it->second, glast); ++b) mark_block(b);
      }
      bitmap = computed.data();
    } else {
      uint64_t bb = desc_u32(grp, 0x0, 0x20);
      on_disk = read_checked(reader, offset + bb * g.bs, g.bs, end, "block bitmap");
      if (csum) {
        uint32_t c = crc32c_update(seed, on_disk.data(), g.cpg / 8);
        uint32_t want = le16(desc(grp) + 0x18);
        if (g.desc_size >= 0x3C) want |= static_cast<uint32_t>(le16(desc(grp) + 0x38)) << 16;
        else c &= 0xFFFF;
        if (c != want) corrupt(path, where + ": bad block bitmap checksum in group " + std::to_string(grp));
      }
      bitmap = on_disk.data();
    }
    // Free clusters -> byte ranges.
    uint64_t free_here = 0;
    uint32_t i = 0;
    while (i < nclusters) {
      if (bitmap[i / 8] & (1u << (i % 8))) {
        ++i;
        continue;
      }
      uint32_t j = i;
      while (j < nclusters && !(bitmap[j / 8] & (1u << (j % 8)))) ++j;
      uint64_t b0 = g.first_data_block + (first_cluster + i) * g.ratio;
      uint64_t b1 = std::min<uint64_t>(g.blocks_count, g.first_data_block + (first_cluster + j) * g.ratio);
      if (info.free.size() >= kMaxFreeRanges) {
        unsupported(path, where + " has its free space in more than " + std::to_string(kMaxFreeRanges) +
                              " pieces; use sparsify without --fs");
      }
      info.free.push_back({offset + b0 * g.bs, offset + b1 * g.bs});
      free_here += j - i;
      i = j;
    }
    // The bitmap and the descriptor must agree (a computed bitmap may only
    // be more careful than the descriptor); otherwise trust neither.
    if ((!uninit && free_here != desc_free) || (uninit && free_here > desc_free)) {
      corrupt(path, where + ": group " + std::to_string(grp) + " has " + std::to_string(free_here) +
                        " free clusters in its bitmap but " + std::to_string(desc_free) +
                        " in its descriptor; run e2fsck first");
    }
    info.free_blocks += free_here * g.ratio;
  }
  // Merge adjacent ranges (groups are contiguous).
  std::vector<ByteRange> merged;
  for (const auto& r : info.free) {
    if (!merged.empty() && merged.back().end == r.begin) merged.back().end = r.end;
    else merged.push_back(r);
  }
  info.free = std::move(merged);
  for (const auto& r : info.free) info.free_bytes += r.end - r.begin;
  return info;
}

}  // namespace blocksmith::fs
