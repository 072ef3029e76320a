// ext2/ext3/ext4: recognise a filesystem at an offset and list its free
// blocks as byte ranges of the image, from the superblock, the group
// descriptors and the block bitmaps (BLOCK_UNINIT groups: computed from the
// metadata). Refuses (Error) what it does not understand or what is not
// clean: unknown incompat/ro_compat features, external journal, bad
// superblock/descriptor/bitmap checksums, s_state not clean, needs_recovery,
// orphans, MMP in use, counts that disagree with the bitmaps, feature
// combinations e2fsck rejects, any structure outside [offset, offset +
// limit); and, unless told not to, a free block that an inode or the
// filesystem's own metadata uses (ext_refs.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/pipeline/reader.h"
#include "core/guest_fs/ext_layout.h"
#include "core/guest_fs/ext_refs.h"
#include "core/guest_fs/free_map.h"

namespace blocksmith::fs {

// True when the ext magic is at offset + 1080 (and inside the limit).
bool probe_ext(Reader& reader, uint64_t offset, uint64_t limit);

struct ExtInfo {
  std::string type;          // "ext2", "ext3", "ext4"
  std::string label;
  uint32_t block_size = 0;
  uint32_t cluster_size = 0;  // == block_size without bigalloc
  uint64_t blocks_count = 0;
  uint64_t free_blocks = 0;   // counted in the bitmaps (clusters * ratio)
  uint32_t groups = 0;
  uint32_t uninit_groups = 0;  // BLOCK_UNINIT groups (bitmap computed)
  std::vector<std::string> features;
  std::vector<ByteRange> free;  // absolute byte ranges in the image, sorted
  uint64_t free_bytes = 0;
  RefStats verified;           // what the cross-check of the bitmaps against the inodes walked
  ExtLayout layout;            // the validated geometry (descriptor table included)
};

struct ExtReadOptions {
  bool verify_references = true;  // cross-check the bitmaps against the inodes
  std::string where;              // names the filesystem in messages; default "the ext filesystem at byte N"
};

// "ext2", "ext3" or "ext4" from the superblock's features; "" without one.
std::string probe_ext_type(Reader& reader, uint64_t offset, uint64_t limit);

// `offset`: where the filesystem starts in the image; `limit`: bytes
// available from there (the partition's length). Throws Error with code
// ERR_FS_CORRUPT, ERR_FS_UNSUPPORTED or ERR_FS_DIRTY.
ExtInfo read_ext(Reader& reader, uint64_t offset, uint64_t limit, const ExtReadOptions& options = {});

}  // namespace blocksmith::fs
