// What `sparsify --fs` knows about an image: its partitions, which hold an
// ext filesystem (and how much of it is free), and the merged map of free
// byte ranges the pipeline skips and reclaims.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../reader.h"
#include "free_map.h"

namespace blocksmith::fs {

struct VolumeReport {
  uint32_t number = 0;         // partition number; 0 for a filesystem on the whole image
  std::string type;            // partition type ("0x83", GUID), empty for the whole image
  std::string name;            // GPT partition name
  uint64_t offset = 0, length = 0;
  std::string filesystem;      // "ext2", "ext3", "ext4", or "" when not recognised
  std::string label;
  std::string action;          // "free-blocks" or "zero-detection"
  uint32_t block_size = 0;
  uint32_t cluster_size = 0;
  uint64_t blocks_count = 0;
  uint64_t free_blocks = 0;
  uint64_t free_bytes = 0;     // bytes of free blocks (reclaimable without reading)
  uint64_t used_bytes = 0;     // filesystem bytes minus free bytes
  uint32_t groups = 0, uninit_groups = 0;
  std::vector<std::string> features;
};

struct Inspection {
  std::string scheme;          // "none", "mbr", "gpt"
  bool gpt_backup_used = false;
  std::vector<VolumeReport> volumes;
  FreeMap free;
};

// Throws Error (ERR_FS_CORRUPT / ERR_FS_UNSUPPORTED / ERR_FS_DIRTY) when a
// table or an ext filesystem cannot be trusted; unknown filesystems are
// listed with action "zero-detection".
Inspection inspect_filesystems(Reader& reader, uint32_t sector_size = 512);

}  // namespace blocksmith::fs
