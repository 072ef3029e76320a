// The geometry of an ext2/3/4 filesystem as read_ext validated it: block and
// cluster sizes, groups, inode tables, the group descriptor table (raw), and
// where each group's own metadata lies. Shared by the free-block reader
// (ext.cc) and the cross-check of the bitmaps against the inodes
// (ext_refs.cc). Every number here was checked against the filesystem size.
#pragma once

#include <cstdint>
#include <vector>

#include "core/guest_fs/bytes.h"

namespace blocksmith::fs {

// s_feature_compat
constexpr uint32_t kCompatHasJournal = 0x4, kCompatExtAttr = 0x8, kCompatResizeInode = 0x10,
                   kCompatSparseSuper2 = 0x200, kCompatOrphanFile = 0x1000;
// s_feature_incompat
constexpr uint32_t kIncompatFiletype = 0x2, kIncompatRecover = 0x4, kIncompatJournalDev = 0x8,
                   kIncompatMetaBg = 0x10, kIncompatExtents = 0x40, kIncompat64bit = 0x80, kIncompatMmp = 0x100,
                   kIncompatFlexBg = 0x200, kIncompatEaInode = 0x400, kIncompatCsumSeed = 0x2000,
                   kIncompatLargedir = 0x4000, kIncompatInlineData = 0x8000, kIncompatEncrypt = 0x10000,
                   kIncompatCasefold = 0x20000;
// s_feature_ro_compat
constexpr uint32_t kRoSparseSuper = 0x1, kRoLargeFile = 0x2, kRoBtreeDir = 0x4, kRoHugeFile = 0x8,
                   kRoGdtCsum = 0x10, kRoDirNlink = 0x20, kRoExtraIsize = 0x40, kRoQuota = 0x100,
                   kRoBigalloc = 0x200, kRoMetadataCsum = 0x400, kRoReadonly = 0x1000, kRoProject = 0x2000,
                   kRoSharedBlocks = 0x4000, kRoVerity = 0x8000, kRoOrphanPresent = 0x10000;

// i_flags, and the extent tree's on-disk facts (read by the reference walk,
// the block mapper and the inode-copy judge alike).
constexpr uint32_t kIndexFl = 0x1000, kExtentsFl = 0x80000, kEaInodeFl = 0x200000, kInlineDataFl = 0x10000000;
constexpr uint16_t kExtentMagic = 0xF30A;
constexpr int kMaxExtentDepth = 5;       // EXT4_MAX_EXTENT_DEPTH
constexpr uint32_t kInitMaxLen = 32768;  // longer ee_len: an unwritten extent of ee_len - 32768

// Group descriptor flags.
constexpr uint16_t kBgInodeUninit = 0x1, kBgBlockUninit = 0x2;

inline bool is_power_of(uint64_t n, uint64_t base) {
  while (n > 1 && n % base == 0) n /= base;
  return n == 1;
}

struct ExtLayout {
  uint64_t offset = 0;  // of the filesystem in the image, bytes
  uint32_t bs = 0, ratio = 1, bpg = 0, cpg = 0, first_data_block = 0, desc_size = 0, descs_per_block = 0,
           groups = 0;
  uint32_t compat = 0, incompat = 0, ro_compat = 0, first_meta_bg = 0, reserved_gdt = 0;
  uint32_t backup_bgs[2] = {0, 0};
  uint64_t blocks_count = 0;
  uint64_t desc_blocks = 0;
  bool csum = false;      // metadata_csum
  bool gdt_csum = false;  // uninit_bg (crc16 descriptors)
  // Inodes.
  uint32_t inodes_count = 0, ipg = 0, inode_size = 128, first_ino = 11;
  uint64_t itable_blocks = 0;  // per group
  // Inodes the superblock names (0: none): journal, quota files, orphan file.
  uint32_t named_inodes[5] = {0, 0, 0, 0, 0};
  uint64_t mmp_block = 0;  // 0: no MMP
  std::vector<uint8_t> descs;  // groups * desc_size bytes, as on disk

  bool group_desc_csum() const { return csum || gdt_csum; }

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
  // How many blocks at the start of group g hold the superblock copy, the
  // old-style descriptors with the reserved GDT blocks, and the meta_bg
  // descriptor block (ext2fs_super_and_bgd_loc2).
  uint64_t group_head_blocks(uint32_t g) const {
    const uint32_t old_desc_blocks =
        (incompat & kIncompatMetaBg) ? first_meta_bg : static_cast<uint32_t>(desc_blocks + reserved_gdt);
    uint64_t base = 0;
    if (has_super(g)) base = 1 + old_desc_blocks;
    if (incompat & kIncompatMetaBg) {
      uint32_t mbg = g / descs_per_block, idx = g % descs_per_block;
      if (mbg >= first_meta_bg && (idx == 0 || idx == 1 || idx == descs_per_block - 1)) ++base;
    }
    if (g == 0 && bs == 1024 && ratio > 1) ++base;
    return base;
  }

  const uint8_t* desc(uint32_t g) const { return descs.data() + static_cast<size_t>(g) * desc_size; }
  uint64_t desc_u32(uint32_t g, int lo, int hi) const {
    uint64_t v = le32(desc(g) + lo);
    if (desc_size >= 64 && hi >= 0) v |= static_cast<uint64_t>(le32(desc(g) + hi)) << 32;
    return v;
  }
  uint32_t desc_u16(uint32_t g, int lo, int hi) const {
    uint32_t v = le16(desc(g) + lo);
    if (desc_size >= 64 && hi >= 0) v |= static_cast<uint32_t>(le16(desc(g) + hi)) << 16;
    return v;
  }
  uint64_t block_bitmap(uint32_t g) const { return desc_u32(g, 0x0, 0x20); }
  uint64_t inode_bitmap(uint32_t g) const { return desc_u32(g, 0x4, 0x24); }
  uint64_t inode_table(uint32_t g) const { return desc_u32(g, 0x8, 0x28); }
  uint32_t free_clusters(uint32_t g) const { return desc_u16(g, 0xC, 0x2C); }
  uint32_t free_inodes(uint32_t g) const { return desc_u16(g, 0xE, 0x2E); }
  uint16_t group_flags(uint32_t g) const { return le16(desc(g) + 0x12); }
  uint32_t itable_unused(uint32_t g) const { return desc_u16(g, 0x1C, 0x32); }
};

}  // namespace blocksmith::fs
