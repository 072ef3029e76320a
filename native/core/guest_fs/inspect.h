// What `sparsify --fs` knows about an image: its partitions, which hold an
// ext filesystem (and how much of it is free), and the merged map of free
// byte ranges the pipeline skips and reclaims.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/pipeline/reader.h"
#include "core/guest_fs/ext_refs.h"
#include "core/guest_fs/free_map.h"
#include "core/guest_fs/partition.h"
#include "core/host/mount_check.h"

namespace blocksmith::fs {

struct VolumeReport {
  uint32_t number = 0;         // partition number; 0 for a filesystem on the whole image
  std::string type;            // partition type ("0x83", GUID), empty for the whole image
  std::string name;            // GPT partition name
  uint64_t offset = 0, length = 0;
  std::string filesystem;      // "ext2", "ext3", "ext4", or "" when not recognised
  std::string label;
  std::string action;          // "free-blocks", "zero-detection" or "refused"
  // action "refused": why, as the Error sparsify --fs throws for it; `reason`
  // is `message` without the leading "'path': ".
  std::string error_code, error_syscall, error_message, reason;
  int error_errno = 0;
  uint32_t block_size = 0;
  uint32_t cluster_size = 0;
  uint64_t blocks_count = 0;
  uint64_t free_blocks = 0;
  uint64_t free_bytes = 0;     // bytes of free blocks (reclaimable without reading)
  uint64_t used_bytes = 0;     // filesystem bytes minus free bytes
  uint32_t groups = 0, uninit_groups = 0;
  std::vector<std::string> features;
  RefStats verified;           // free-blocks: the cross-check of the bitmaps against the inodes
};

struct Inspection {
  std::string scheme;          // "none", "mbr", "gpt"
  bool gpt_backup_used = false;
  std::vector<VolumeReport> volumes;
  FreeMap free;                // of the "free-blocks" volumes only
  // The partition table could not be trusted (then there are no volumes).
  std::string error_code, error_message, reason;
};

// Lists every partition: an ext filesystem that cannot be trusted (corrupt,
// unsupported, dirty, or in use according to `uses`, which is checked
// first) is listed with action "refused" and the reason; unknown
// filesystems with action "zero-detection". A partition table that cannot
// be trusted sets `error_*` and lists no volume. Throws only what is not
// about the image's content (an I/O error).
Inspection inspect_filesystems(Reader& reader, uint32_t sector_size = 512, const std::vector<host::FsUse>* uses = nullptr);

// The partition table as inspect_filesystems reads it: MBR or GPT (also GPT
// with 4 KiB sectors); an MBR over an ext superblock at the start is refused
// (ERR_FS_UNSUPPORTED) rather than guessed. Throws Error ERR_FS_* when the
// table cannot be trusted, what reading throws otherwise.
PartitionTable read_source_table(Reader& reader, uint32_t sector_size = 512);

// One volume (v.number, v.offset, v.length set): an ext filesystem there is
// read into `v` (action "free-blocks" and its free ranges added to `free`,
// or "refused" with the reason); anything else gets "zero-detection".
void inspect_volume(VolumeReport& v, Reader& reader, FreeMap& free, const std::vector<host::FsUse>* uses = nullptr);

// What sparsify --fs does before its first punch: throws the table's or the
// first refused volume's Error (ERR_FS_CORRUPT / ERR_FS_UNSUPPORTED /
// ERR_FS_DIRTY / EBUSY).
void throw_if_refused(const Inspection& in, const std::string& path);

}  // namespace blocksmith::fs
