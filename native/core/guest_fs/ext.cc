#include "core/guest_fs/ext.h"

#include <algorithm>
#include <set>

#include "core/guest_fs/bytes.h"
#include "core/guest_fs/checksum.h"
#include "core/guest_fs/ext_read_steps.h"

namespace blocksmith::fs {
namespace {

constexpr uint32_t kIncompatKnown = kIncompatFiletype | kIncompatRecover | kIncompatJournalDev | kIncompatMetaBg |
                                    kIncompatExtents | kIncompat64bit | kIncompatMmp | kIncompatFlexBg |
                                    kIncompatEaInode | kIncompatCsumSeed | kIncompatLargedir | kIncompatInlineData |
                                    kIncompatEncrypt | kIncompatCasefold;
constexpr uint32_t kRoKnown = kRoSparseSuper | kRoLargeFile | kRoBtreeDir | kRoHugeFile | kRoGdtCsum | kRoDirNlink |
                              kRoExtraIsize | kRoQuota | kRoBigalloc | kRoMetadataCsum | kRoReadonly | kRoProject |
                              kRoVerity | kRoOrphanPresent;

// Feature names as e2fsprogs prints them (lib/e2p/feature.c, checked
// against e2fsprogs 1.47.0: `debugfs -R "feature FEATURE_Xn"` for every
// bit); bits without a name print as FEATURE_C7 etc., like e2fsprogs.
struct FeatureName {
  int set;  // 0 compat, 1 incompat, 2 ro_compat
  uint32_t bit;
  const char* name;
};
constexpr FeatureName kFeatureNames[] = {
    {0, 0x1, "dir_prealloc"},     {0, 0x2, "imagic_inodes"},     {0, 0x4, "has_journal"},
    {0, 0x8, "ext_attr"},         {0, 0x10, "resize_inode"},     {0, 0x20, "dir_index"},
    {0, 0x40, "lazy_bg"},         {0, 0x100, "snapshot_bitmap"}, {0, 0x200, "sparse_super2"},
    {0, 0x400, "fast_commit"},    {0, 0x800, "stable_inodes"},   {0, 0x1000, "orphan_file"},
    {1, 0x1, "compression"},      {1, 0x2, "filetype"},          {1, 0x4, "needs_recovery"},
    {1, 0x8, "journal_dev"},      {1, 0x10, "meta_bg"},          {1, 0x40, "extent"},
    {1, 0x80, "64bit"},           {1, 0x100, "mmp"},             {1, 0x200, "flex_bg"},
    {1, 0x400, "ea_inode"},       {1, 0x1000, "dirdata"},        {1, 0x2000, "metadata_csum_seed"},
    {1, 0x4000, "large_dir"},     {1, 0x8000, "inline_data"},    {1, 0x10000, "encrypt"},
    {1, 0x20000, "casefold"},     {2, 0x1, "sparse_super"},      {2, 0x2, "large_file"},
    {2, 0x8, "huge_file"},        {2, 0x10, "uninit_bg"},        {2, 0x20, "dir_nlink"},
    {2, 0x40, "extra_isize"},     {2, 0x100, "quota"},           {2, 0x200, "bigalloc"},
    {2, 0x400, "metadata_csum"},  {2, 0x800, "replica"},         {2, 0x1000, "read-only"},
    {2, 0x2000, "project"},       {2, 0x4000, "shared_blocks"},  {2, 0x8000, "verity"},
    {2, 0x10000, "orphan_present"},
};

std::string feature_name(int set, uint32_t bit) {
  for (const auto& f : kFeatureNames) {
    if (f.set == set && f.bit == bit) return f.name;
  }
  int n = 0;
  while ((bit >> n) > 1) ++n;
  return std::string("FEATURE_") + "CIR"[set] + std::to_string(n);
}

bool has_feature_name(int set, uint32_t bit) {
  for (const auto& f : kFeatureNames) {
    if (f.set == set && f.bit == bit) return true;
  }
  return false;
}

// Bounds on what a superblock may make us hold in memory (read_block_geometry,
// free_ranges_from_bitmap).
constexpr uint64_t kMaxDescriptorBytes = uint64_t(256) << 20;
constexpr size_t kMaxFreeRanges = size_t(16) << 20;  // 16 bytes each: 256 MiB

[[noreturn]] void unsupported(const std::string& path, const std::string& what) {
  throw Error(0, "ERR_FS_UNSUPPORTED", "", path, "'" + path + "': " + what);
}
[[noreturn]] void dirty(const std::string& path, const std::string& what) {
  throw Error(0, "ERR_FS_DIRTY", "", path, "'" + path + "': " + what + "; run e2fsck on it first");
}

std::string hex(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%x", v);
  return b;
}

// Features set in `bits` that blocksmith does not support: unnamed bits as
// "unknown ... features 0x..", named ones by their e2fsprogs names.
void refuse_features(const std::string& path, const std::string& where, int set, uint32_t bits) {
  static const char* kind[] = {"compatible", "incompatible", "read-only-compatible"};
  static const char* field[] = {"compat", "incompat", "ro_compat"};
  uint32_t unnamed = 0;
  std::string named;
  for (uint32_t b = 1; b != 0; b <<= 1) {
    if (!(bits & b)) continue;
    if (has_feature_name(set, b)) {
      named += (named.empty() ? "" : ", ") + feature_name(set, b) + " (" + field[set] + " " + hex(b) + ")";
    } else {
      unnamed |= b;
    }
  }
  if (unnamed) unsupported(path, where + " has unknown " + kind[set] + " features " + hex(unnamed));
  unsupported(path, where + " uses " + named + ", which blocksmith does not support");
}

// A superblock's file system type by its features, as blkid names it.
std::string type_from_superblock(const uint8_t* sb) {
  const uint32_t compat = le32(sb + 0x5C), incompat = le32(sb + 0x60), ro_compat = le32(sb + 0x64);
  if ((incompat & ~(kIncompatFiletype | kIncompatRecover | kIncompatMetaBg)) ||
      (ro_compat & ~(kRoSparseSuper | kRoLargeFile | kRoBtreeDir))) {
    return "ext4";
  }
  return (compat & kCompatHasJournal) ? "ext3" : "ext2";
}

}  // namespace

bool probe_ext(Reader& reader, uint64_t offset, uint64_t limit) {
  if (limit < 2048 || offset + 2048 > reader.size()) return false;
  uint8_t m[2];
  if (reader.read_at(m, 2, offset + 1024 + 0x38) != 2) return false;
  return le16(m) == 0xEF53;
}

std::string probe_ext_type(Reader& reader, uint64_t offset, uint64_t limit) {
  if (!probe_ext(reader, offset, limit)) return "";
  uint8_t sb[0x68];
  if (reader.read_at(sb, sizeof sb, offset + 1024) != sizeof sb) return "";
  return type_from_superblock(sb);
}

namespace {

// Checksums first: a corrupt superblock must not be interpreted further.
// Then the features: refuses what blocksmith does not support. Returns the
// metadata checksum seed (0 without metadata_csum).
uint32_t check_checksum_and_features(const uint8_t* sb, ExtLayout& g, const std::string& path, const std::string& where) {
  uint32_t seed = 0;
  g.csum = g.ro_compat & kRoMetadataCsum;
  g.gdt_csum = g.ro_compat & kRoGdtCsum;
  if (g.csum) {
    if (sb[0x175] != 1) unsupported(path, where + " uses an unknown checksum type " + std::to_string(sb[0x175]));
    if (crc32c_update(~0u, sb, 0x3FC) != le32(sb + 0x3FC)) corrupt(path, where + " has a bad superblock checksum");
    seed = (g.incompat & kIncompatCsumSeed) ? le32(sb + 0x270) : crc32c_update(~0u, sb + 0x68, 16);
  }

  if (g.incompat & kIncompatJournalDev) unsupported(path, where + " is an external journal device, not a filesystem");
  if (g.incompat & ~kIncompatKnown) refuse_features(path, where, 1, g.incompat & ~kIncompatKnown);
  if (g.ro_compat & ~kRoKnown) refuse_features(path, where, 2, g.ro_compat & ~kRoKnown);
  if ((g.compat & kCompatHasJournal) && le32(sb + 0xE0) == 0) {
    unsupported(path, where + " has an external journal (device " + hex(le32(sb + 0xE4)) + ")");
  }
  return seed;
}

// Cleanly unmounted, no errors, nothing left for the journal or e2fsck.
void check_clean(const uint8_t* sb, const ExtLayout& g, const std::string& path, const std::string& where) {
  uint16_t state = le16(sb + 0x3A);
  if (!(state & 1) || (state & 2)) {
    dirty(path, where + " was not cleanly unmounted or has errors (s_state " + hex(state) + ")");
  }
  if (g.incompat & kIncompatRecover) dirty(path, where + " has a journal that needs recovery");
  if (le32(sb + 0xE8) != 0) dirty(path, where + " has an orphan inode list to process");
  if (g.ro_compat & kRoOrphanPresent) dirty(path, where + " has orphan inodes to process (orphan file)");
}

// Feature combinations e2fsck rejects (e2fsck/super.c: check_super_block,
// check_resize_inode): it would change the filesystem before trusting it.
void check_feature_conflicts(const uint8_t* sb, const ExtLayout& g, const std::string& path, const std::string& where) {
  auto conflict = [&](const std::string& what) {
    corrupt(path, where + " " + what + ", which e2fsck rejects; run e2fsck -f on it first");
  };
  if ((g.compat & kCompatResizeInode) && (g.incompat & kIncompatMetaBg)) {
    conflict("has both resize_inode and meta_bg");
  }
  if (!(g.compat & kCompatResizeInode) && le16(sb + 0xCE) != 0) {
    conflict("has " + std::to_string(le16(sb + 0xCE)) + " reserved GDT blocks but no resize_inode");
  }
  if (g.csum && g.gdt_csum) conflict("has both metadata_csum and uninit_bg");
  if (!g.csum && (g.incompat & kIncompatCsumSeed)) conflict("has metadata_csum_seed without metadata_csum");
  if ((g.incompat & kIncompat64bit) && !(g.incompat & kIncompatExtents)) conflict("has 64bit without extent");
}

// Block and cluster sizes, groups and the descriptor table's size, each
// checked, and the whole inside the `limit` bytes available.
void read_block_geometry(const uint8_t* sb, ExtLayout& g, uint64_t limit, const std::string& path,
                         const std::string& where) {
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
}

// Inodes: what the cross-check walks (ext_refs.cc).
void read_inode_geometry(const uint8_t* sb, ExtLayout& g, const std::string& path, const std::string& where) {
  g.inodes_count = le32(sb + 0x00);
  g.ipg = le32(sb + 0x28);
  const uint32_t rev = le32(sb + 0x4C);
  g.inode_size = rev >= 1 ? le16(sb + 0x58) : 128;
  g.first_ino = rev >= 1 ? le32(sb + 0x54) : 11;
  if (g.inode_size < 128 || g.inode_size > g.bs || (g.inode_size & (g.inode_size - 1))) {
    corrupt(path, where + ": bad inode size");
  }
  g.itable_blocks = (static_cast<uint64_t>(g.ipg) * g.inode_size + g.bs - 1) / g.bs;
  if (g.ipg == 0 || g.ipg > 8ull * g.bs || static_cast<uint64_t>(g.ipg) * g.groups != g.inodes_count) {
    corrupt(path, where + ": bad inode count (" + std::to_string(g.inodes_count) + " inodes, " +
                      std::to_string(g.ipg) + " per group in " + std::to_string(g.groups) + " groups)");
  }
  if (g.first_ino < 11 || g.first_ino > g.inodes_count) corrupt(path, where + ": bad first inode number");
  // Inode tables cannot overlap in a sound filesystem: together they fit in
  // it, which bounds how much the cross-check reads.
  if (g.itable_blocks * g.groups > g.blocks_count) corrupt(path, where + ": inode tables larger than the filesystem");
  if (g.compat & kCompatHasJournal) g.named_inodes[0] = le32(sb + 0xE0);
  g.named_inodes[1] = le32(sb + 0x240);  // user quota
  g.named_inodes[2] = le32(sb + 0x244);  // group quota
  g.named_inodes[3] = le32(sb + 0x26C);  // project quota
  if (g.compat & kCompatOrphanFile) g.named_inodes[4] = le32(sb + 0x280);
  for (uint32_t ino : g.named_inodes) {
    if (ino > g.inodes_count) corrupt(path, where + ": the superblock names inode " + std::to_string(ino) + ", past the last");
  }
}

// With MMP: the block must say nobody else uses the filesystem.
void check_mmp(Reader& reader, const uint8_t* sb, ExtLayout& g, uint32_t seed, uint64_t end, const std::string& where) {
  const std::string& path = reader.path();
  uint64_t mmp_block = le64(sb + 0x168);
  if (mmp_block < g.first_data_block || mmp_block >= g.blocks_count) {
    corrupt(path, where + ": MMP block outside the filesystem");
  }
  auto mmp = read_checked(reader, g.offset + mmp_block * g.bs, 1024, end, "MMP block");
  uint32_t seq = le32(mmp.data() + 4);
  if (le32(mmp.data()) != 0x004D4D50u) corrupt(path, where + ": bad MMP block");
  // Its sequence says whether another node uses the filesystem: only
  // trusted with a matching checksum (the kernel will not mount it
  // otherwise; e2fsck stops at it). mmp_checksum is the struct's last field.
  if (g.csum && crc32c_update(seed, mmp.data(), 0x3FC) != le32(mmp.data() + 0x3FC)) {
    corrupt(path, where + ": bad MMP block checksum");
  }
  if (seq != 0xFF4D4D50u) dirty(path, where + " is in use according to MMP (mounted or being checked elsewhere)");
  g.mmp_block = mmp_block;
}

// What read_ext reports about the filesystem besides its free space.
void describe(const uint8_t* sb, const ExtLayout& g, ExtInfo& info) {
  info.type = type_from_superblock(sb);
  info.label.assign(reinterpret_cast<const char*>(sb + 0x78), strnlen(reinterpret_cast<const char*>(sb + 0x78), 16));
  info.block_size = g.bs;
  info.cluster_size = g.bs * g.ratio;
  info.blocks_count = g.blocks_count;
  info.groups = g.groups;
  // Every feature set, by its e2fsprogs name, in dumpe2fs's order.
  const uint32_t sets[3] = {g.compat, g.incompat, g.ro_compat};
  for (int set = 0; set < 3; ++set) {
    for (uint32_t b = 1; b != 0; b <<= 1) {
      if (sets[set] & b) info.features.push_back(feature_name(set, b));
    }
  }
}

// Every group's own metadata blocks, for BLOCK_UNINIT groups (whose
// bitmap is not on disk): with flex_bg a group may hold other groups'.
// (ranges [begin, end) of block numbers, sorted by begin).
using BlockRanges = std::vector<std::pair<uint64_t, uint64_t>>;
BlockRanges group_metadata_ranges(const ExtLayout& g, const std::string& path, const std::string& where) {
  BlockRanges meta;
  for (uint32_t grp = 0; grp < g.groups; ++grp) {
    uint64_t bb = g.block_bitmap(grp), ib = g.inode_bitmap(grp), it = g.inode_table(grp);
    if (bb < g.first_data_block || ib < g.first_data_block || it < g.first_data_block || bb >= g.blocks_count ||
        ib >= g.blocks_count || it >= g.blocks_count || g.itable_blocks > g.blocks_count - it) {
      corrupt(path, where + ": group " + std::to_string(grp) + " has metadata outside the filesystem");
    }
    meta.push_back({bb, bb + 1});
    meta.push_back({ib, ib + 1});
    meta.push_back({it, it + g.itable_blocks});
  }
  std::sort(meta.begin(), meta.end());
  return meta;
}

// The block bitmap of a BLOCK_UNINIT group, computed into `computed`: in
// use are the superblock + old-style descriptors + reserved GDT, the
// meta_bg descriptor block, and any group's bitmaps / inode table here.
void compute_uninit_bitmap(const ExtLayout& g, uint32_t grp, uint64_t first_cluster, uint32_t nclusters,
                           const BlockRanges& meta, std::vector<uint8_t>& computed) {
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
  const uint64_t base = g.group_head_blocks(grp);
  for (uint64_t b = gfirst; b < gfirst + base && b < g.blocks_count; ++b) mark_block(b);
  const uint64_t glast = gfirst + static_cast<uint64_t>(nclusters) * g.ratio;
  const uint64_t from = gfirst > g.itable_blocks ? gfirst - g.itable_blocks : 0;  // no range is longer
  auto it = std::lower_bound(meta.begin(), meta.end(), std::make_pair(from, uint64_t{0}));
  for (; it != meta.end() && it->first < glast; ++it) {
    for (uint64_t b = std::max(it->first, gfirst); b < std::min(it->second, glast); ++b) mark_block(b);
  }
}

// A group's block bitmap as on disk, its checksum checked (metadata_csum).
std::vector<uint8_t> read_block_bitmap(Reader& reader, const ExtLayout& g, uint32_t grp, uint32_t seed, uint64_t end,
                                       const std::string& where) {
  uint64_t bb = g.block_bitmap(grp);
  auto on_disk = read_checked(reader, g.offset + bb * g.bs, g.bs, end, "block bitmap");
  if (g.csum) {
    uint32_t c = crc32c_update(seed, on_disk.data(), g.cpg / 8);
    uint32_t want = le16(g.desc(grp) + 0x18);
    if (g.desc_size >= 0x3C) want |= static_cast<uint32_t>(le16(g.desc(grp) + 0x38)) << 16;
    else c &= 0xFFFF;
    if (c != want) corrupt(reader.path(), where + ": bad block bitmap checksum in group " + std::to_string(grp));
  }
  return on_disk;
}

// Every group's free clusters as byte ranges in info.free (one or more a
// group, in order), counted against the group's descriptor.
void collect_free_ranges(Reader& reader, const ExtLayout& g, uint32_t seed, uint64_t end, const std::string& where,
                         ExtInfo& info) {
  const std::string& path = reader.path();
  const BlockRanges meta = group_metadata_ranges(g, path, where);
  const uint64_t total_clusters = (g.blocks_count - g.first_data_block + g.ratio - 1) / g.ratio;
  std::vector<uint8_t> computed(g.cpg / 8 + 1);

  for (uint32_t grp = 0; grp < g.groups; ++grp) {
    const uint64_t first_cluster = static_cast<uint64_t>(grp) * g.cpg;
    const uint32_t nclusters = static_cast<uint32_t>(std::min<uint64_t>(g.cpg, total_clusters - first_cluster));
    const uint32_t desc_free = g.free_clusters(grp);
    const uint8_t* bitmap = nullptr;
    std::vector<uint8_t> on_disk;
    const bool uninit = (g.group_flags(grp) & kBgBlockUninit) && (g.csum || g.gdt_csum);
    if (uninit && grp == g.groups - 1) {
      corrupt(path, where + ": the last group (" + std::to_string(grp) +
                        ") is marked BLOCK_UNINIT, which e2fsck rejects; run e2fsck -f on it first");
    }
    if (uninit) {
      ++info.uninit_groups;
      compute_uninit_bitmap(g, grp, first_cluster, nclusters, meta, computed);
      bitmap = computed.data();
    } else {
      on_disk = read_block_bitmap(reader, g, grp, seed, end, where);
      bitmap = on_disk.data();
    }
    const uint64_t free_here = free_ranges_from_bitmap(bitmap, nclusters, first_cluster, g, info.free, path, where);
    // The bitmap and the descriptor must agree (a computed bitmap may only
    // be more careful than the descriptor); otherwise trust neither.
    if ((!uninit && free_here != desc_free) || (uninit && free_here > desc_free)) {
      corrupt(path, where + ": group " + std::to_string(grp) + " has " + std::to_string(free_here) +
                        " free clusters in its bitmap but " + std::to_string(desc_free) +
                        " in its descriptor; run e2fsck first");
    }
    info.free_blocks += free_here * g.ratio;
  }
}

// Adjacent ranges become one (groups are contiguous).
std::vector<ByteRange> merge_adjacent(const std::vector<ByteRange>& ranges) {
  std::vector<ByteRange> merged;
  for (const auto& r : ranges) {
    if (!merged.empty() && merged.back().end == r.begin) merged.back().end = r.end;
    else merged.push_back(r);
  }
  return merged;
}

}  // namespace

uint32_t check_ext_superblock(const uint8_t* sb, uint64_t offset, uint64_t limit, const std::string& path,
                              const std::string& where, ExtLayout& g) {
  g.offset = offset;
  g.compat = le32(sb + 0x5C);
  g.incompat = le32(sb + 0x60);
  g.ro_compat = le32(sb + 0x64);
  const uint32_t seed = check_checksum_and_features(sb, g, path, where);
  check_clean(sb, g, path, where);
  check_feature_conflicts(sb, g, path, where);
  read_block_geometry(sb, g, limit, path, where);
  read_inode_geometry(sb, g, path, where);
  return seed;
}

void read_group_descriptors(Reader& reader, ExtLayout& g, uint64_t end, const std::string& where) {
  g.descs.assign(static_cast<size_t>(g.groups) * g.desc_size, 0);
  for (uint64_t i = 0; i < g.desc_blocks; ++i) {
    uint64_t blk = g.desc_block(i);
    if (blk >= g.blocks_count) corrupt(reader.path(), where + ": group descriptor block outside the filesystem");
    auto b = read_checked(reader, g.offset + blk * g.bs, g.bs, end, "group descriptor block");
    size_t at = static_cast<size_t>(i * g.descs_per_block * g.desc_size);
    std::memcpy(g.descs.data() + at, b.data(), std::min<size_t>(g.bs, g.descs.size() - at));
  }
}

void check_group_descriptors(const ExtLayout& g, const uint8_t* sb, uint32_t seed, const std::string& path,
                             const std::string& where) {
  for (uint32_t grp = 0; grp < g.groups; ++grp) {
    const uint8_t* d = g.desc(grp);
    uint8_t group_le[4] = {static_cast<uint8_t>(grp), static_cast<uint8_t>(grp >> 8), static_cast<uint8_t>(grp >> 16),
                           static_cast<uint8_t>(grp >> 24)};
    const uint8_t zero2[2] = {0, 0};
    if (g.csum) {
      uint32_t c = crc32c_update(seed, group_le, 4);
      c = crc32c_update(c, d, 0x1E);
      c = crc32c_update(c, zero2, 2);
      if (g.desc_size > 0x20) c = crc32c_update(c, d + 0x20, g.desc_size - 0x20);
      if ((c & 0xFFFF) != le16(d + 0x1E)) corrupt(path, where + ": bad checksum of group descriptor " + std::to_string(grp));
    } else if (g.gdt_csum) {
      uint16_t c = crc16_update(0xFFFF, sb + 0x68, 16);
      c = crc16_update(c, group_le, 4);
      c = crc16_update(c, d, 0x1E);
      if (g.desc_size > 0x20) c = crc16_update(c, d + 0x20, g.desc_size - 0x20);
      if (c != le16(d + 0x1E)) corrupt(path, where + ": bad checksum of group descriptor " + std::to_string(grp));
    }
  }
}

uint64_t free_ranges_from_bitmap(const uint8_t* bitmap, uint32_t nclusters, uint64_t first_cluster, const ExtLayout& g,
                                 std::vector<ByteRange>& out, const std::string& path, const std::string& where) {
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
    if (out.size() >= kMaxFreeRanges) {
      unsupported(path, where + " has its free space in more than " + std::to_string(kMaxFreeRanges) +
                            " pieces; use sparsify without --fs");
    }
    out.push_back({g.offset + b0 * g.bs, g.offset + b1 * g.bs});
    free_here += j - i;
    i = j;
  }
  return free_here;
}

ExtInfo read_ext(Reader& reader, uint64_t offset, uint64_t limit, const ExtReadOptions& options) {
  const std::string& path = reader.path();
  limit = std::min(limit, reader.size() > offset ? reader.size() - offset : 0);
  const uint64_t end = offset + limit;
  auto sbv = read_checked(reader, offset + 1024, 1024, end, "ext superblock");
  const uint8_t* sb = sbv.data();
  if (le16(sb + 0x38) != 0xEF53) corrupt(path, "no ext superblock at byte " + std::to_string(offset + 1024));
  const std::string where =
      options.where.empty() ? "the ext filesystem at byte " + std::to_string(offset) : options.where;

  ExtInfo info;
  ExtLayout& g = info.layout;
  const uint32_t seed = check_ext_superblock(sb, offset, limit, path, where, g);
  if (g.incompat & kIncompatMmp) check_mmp(reader, sb, g, seed, end, where);
  read_group_descriptors(reader, g, end, where);
  check_group_descriptors(g, sb, seed, path, where);
  describe(sb, g, info);
  collect_free_ranges(reader, g, seed, end, where, info);
  info.free = merge_adjacent(info.free);
  for (const auto& r : info.free) info.free_bytes += r.end - r.begin;

  // The bitmaps say what is free; the inodes say what is used. Both must
  // agree before a free block is dropped (ext_refs.h).
  if (options.verify_references) info.verified = check_free_against_references(reader, g, info.free, where);
  return info;
}

}  // namespace blocksmith::fs
