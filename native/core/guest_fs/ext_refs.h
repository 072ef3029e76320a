// The blocks an ext2/3/4 filesystem uses according to its inodes and its
// group metadata, found without the block bitmaps: so `sparsify --fs` can
// check, before its first punch, that no block the bitmaps call free is one
// that something still references (a bitmap that disagrees with the inodes
// is what e2fsck reports as "Block bitmap differences: +N").
//
// Walked: every group's superblock copy, descriptors, reserved GDT blocks,
// bitmaps and inode table; the MMP block; then every inode in use in the
// inode tables (INODE_UNINIT groups and the itable_unused tail skipped when
// the descriptors are checksummed): the reserved inodes (bad blocks, root,
// quota, resize inode 7 with the reserved GDT blocks it lists, journal 8)
// and those the superblock names always, the others when their link count
// is not zero, as e2fsck's pass 1 does. Per inode: the extended-attribute
// block, and for directories, regular files and slow symlinks the extent
// tree (index and leaf blocks, initialized and uninitialized extents) or
// the block map (direct, indirect, double and triple indirect blocks).
// Inline-data inodes, fast symlinks and device/fifo/socket inodes have no
// blocks.
//
// Bounded on hostile input: every block number is checked against the
// filesystem before it is visited or read; extent trees are read level by
// level with the depth a node must have (so a loop cannot recur) and at
// most 5 levels; tree blocks are read once per level, in block order;
// inode tables must fit the filesystem together; at most kMaxTreeRefs
// tree blocks wait to be read at once.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/pipeline/reader.h"
#include "core/guest_fs/ext_layout.h"
#include "core/guest_fs/free_map.h"

namespace blocksmith::fs {

enum class RefKind : uint8_t { metadata, data, extent_tree, indirect, xattr };

// Who uses a block range: group metadata ("the inode table" of a group), or
// an inode and the role of the block for it.
struct BlockOwner {
  RefKind kind = RefKind::data;
  uint32_t ino = 0;
  uint32_t group = 0;
  const char* what = "";  // metadata only
};

// "inode 12 (data)", "inode 8, the journal (an extent tree block)",
// "the inode table of group 3".
std::string describe_owner(const BlockOwner& owner, const ExtLayout& layout);

struct RefStats {
  uint64_t inodes = 0;       // inodes walked
  uint64_t blocks = 0;       // blocks referenced (a block referenced twice counts twice)
  uint64_t tree_blocks = 0;  // extent-tree and indirect blocks read
  double seconds = 0;
};

// visit(first_block, count, owner) for every range in use, after checking
// it lies inside the filesystem. Throws Error: ERR_FS_CORRUPT naming the
// inode and the block when a reference is impossible (outside the
// filesystem, a bad extent header, ...), ERR_FS_UNSUPPORTED past the bounds.
using RefVisitor = std::function<void(uint64_t first, uint64_t count, const BlockOwner& owner)>;
RefStats walk_references(Reader& reader, const ExtLayout& layout, const RefVisitor& visit, const std::string& where);

// Walks the references and throws ERR_FS_CORRUPT at the first one that
// lies in `free` (absolute byte ranges, sorted and merged), e.g. "block
// 1096 is marked free in the block bitmap but belongs to inode 12 (data);
// run e2fsck -f on it first".
RefStats check_free_against_references(Reader& reader, const ExtLayout& layout, const std::vector<ByteRange>& free,
                                       const std::string& where);

}  // namespace blocksmith::fs
