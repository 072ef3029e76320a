// The volumes of a source and the filesystem recognised in each: the whole
// source when its first sector is a FAT or exFAT boot sector, else every
// partition of its MBR/GPT table (read as sparsify --fs reads it,
// inspect.h), else the whole source. FAT12/16/32 and exFAT volumes are read
// by their readers (volume_files.h); with FindVolumesOptions::ext, ext2/3/4
// ones by the reader sparsify --fs uses (their free maps), and with
// FindVolumesOptions::ext_files by read_ext_files (their deleted files). One
// that is not recognised or cannot be trusted is listed with why, so a report
// can say what was not looked at.
//
// The one place that finds volumes: `blocksmith undelete` recovers from the
// FAT/exFAT/ext ones, and `carve --scope` (scan_scope.h) takes the free and
// allocated maps of all of them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/guest_fs/free_map.h"
#include "core/guest_fs/volume_files.h"
#include "core/pipeline/reader.h"

namespace blocksmith::fs {

struct FoundVolume {
  uint32_t partition = 0;  // 1-based partition number; 0 for the whole source
  std::string type;        // partition type ("0x0c", a GPT GUID), empty for the whole source
  uint64_t offset = 0, length = 0;
  bool read = false;       // `files` holds what its reader found (FAT/exFAT; ext with FindVolumesOptions::ext_files)
  std::string problem;     // when not read: why (not a filesystem read here, or the reader's one-line refusal)
  std::string error_code;  // the refusal's code (ERR_FS_CORRUPT, ERR_FS_UNSUPPORTED), empty when not recognised
  VolumeFiles files;
  // The FAT/exFAT boot sector was there ("fat" or "exfat"), read or not.
  std::string fat_family;
  // ext2/3/4 (only with FindVolumesOptions::ext): the filesystem ("ext4"),
  // empty when not ext. ext_problem: why it cannot be trusted (the reader's
  // refusal); else ext_free holds its free byte ranges (source coordinates,
  // normalized) and ext_length the bytes it spans (it may be smaller than its
  // partition).
  std::string ext;
  std::string ext_problem;
  FreeMap ext_free;
  uint64_t ext_length = 0;
};

struct SourceVolumes {
  std::string scheme;  // "none", "mbr", "gpt"
  std::string table_problem;  // the partition table could not be trusted: why (the whole source was tried)
  std::vector<FoundVolume> volumes;
};

struct FindVolumesOptions {
  bool ext = false;  // also recognise and read ext2/3/4 filesystems (their free maps: `ext`, `ext_free`)
  // Also read ext2/3/4 filesystems' files (read_ext_files: their deleted
  // files) into `files` (read = true), as FAT/exFAT ones always are.
  bool ext_files = false;
};

// Throws only on read errors of the source (EIO); filesystem problems are
// recorded in the volumes.
SourceVolumes find_volumes(Reader& reader, const FindVolumesOptions& options = {});

}  // namespace blocksmith::fs
