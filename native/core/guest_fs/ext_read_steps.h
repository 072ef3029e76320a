// The steps read_ext (ext.h) takes, each checkable alone: the superblock's
// checks and geometry, the group descriptor table, and a block bitmap turned
// into free byte ranges. They throw as read_ext does (ERR_FS_CORRUPT,
// ERR_FS_UNSUPPORTED, ERR_FS_DIRTY); `path` and `where` name the image and
// the filesystem in messages.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/guest_fs/ext_layout.h"
#include "core/guest_fs/free_map.h"
#include "core/pipeline/reader.h"

namespace blocksmith::fs {

// Checks the 1024-byte superblock `sb` (magic already checked) of the
// filesystem at `offset` with `limit` bytes available: its checksum, the
// features blocksmith supports, a clean state, the feature combinations
// e2fsck accepts, and the block, group and inode geometry. Fills `g` but for
// the descriptor table and MMP block; returns the metadata checksum seed (0
// without metadata_csum).
uint32_t check_ext_superblock(const uint8_t* sb, uint64_t offset, uint64_t limit, const std::string& path,
                              const std::string& where, ExtLayout& g);

// Reads the group descriptor table into g.descs (every block inside the
// filesystem and before `end`, the image offset where the partition ends).
void read_group_descriptors(Reader& reader, ExtLayout& g, uint64_t end, const std::string& where);

// Each descriptor's checksum: crc32c with metadata_csum, crc16 with
// uninit_bg (`sb`: the superblock, whose UUID seeds it), none otherwise.
void check_group_descriptors(const ExtLayout& g, const uint8_t* sb, uint32_t seed, const std::string& path,
                             const std::string& where);

// Appends the free (clear) runs among the first `nclusters` bits of a
// group's block bitmap, whose first cluster is `first_cluster`, to `out` as
// byte ranges of the image (cut at the filesystem's end); returns how many
// clusters are free. Refuses free space in more than 16 Mi pieces.
uint64_t free_ranges_from_bitmap(const uint8_t* bitmap, uint32_t nclusters, uint64_t first_cluster, const ExtLayout& g,
                                 std::vector<ByteRange>& out, const std::string& path, const std::string& where);

}  // namespace blocksmith::fs
