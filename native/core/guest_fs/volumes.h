// The FAT/exFAT volumes of a source, for recovery by name: the whole source
// when its first sector is a FAT or exFAT boot sector, else every partition
// of its MBR/GPT table (partition.h). Each is probed and read by its reader
// (volume_files.h); one that is not recognised or cannot be trusted is
// listed with why, so a report can say what was not looked at.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/guest_fs/volume_files.h"
#include "core/pipeline/reader.h"

namespace blocksmith::fs {

struct FoundVolume {
  uint32_t partition = 0;  // 1-based partition number; 0 for the whole source
  std::string type;        // partition type ("0x0c", a GPT GUID), empty for the whole source
  uint64_t offset = 0, length = 0;
  bool read = false;       // `files` holds what its reader found
  std::string problem;     // when not read: why (not FAT/exFAT, or the reader's one-line refusal)
  std::string error_code;  // the refusal's code (ERR_FS_CORRUPT, ERR_FS_UNSUPPORTED), empty when not recognised
  VolumeFiles files;
};

struct SourceVolumes {
  std::string scheme;  // "none", "mbr", "gpt"
  std::string table_problem;  // the partition table could not be trusted: why (the whole source was tried)
  std::vector<FoundVolume> volumes;
};

// Throws only on read errors of the source (EIO); filesystem problems are
// recorded in the volumes.
SourceVolumes find_volumes(Reader& reader);

}  // namespace blocksmith::fs
