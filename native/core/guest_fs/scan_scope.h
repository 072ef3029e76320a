// Which bytes `carve --scope` reads: the volumes of the source (the whole
// source, or its MBR/GPT partitions) and the filesystems recognised in them,
// as volumes.h finds them for undelete too (ext2/3/4 through the reader
// sparsify --fs uses; FAT12/16/32 and exFAT through volume_files.h) and, from
// their allocation maps, the byte ranges the scan skips:
//   free       the bytes live files, directories and the filesystem's own
//              structures own (plus ranges the caller excludes: what an
//              undelete already recovered) are skipped;
//   allocated  the free bytes are skipped;
//   all        nothing is skipped (no filesystem is read).
// Bytes outside every recognised volume (partition gaps, unrecognised
// partitions, the tail after a filesystem smaller than its partition) are
// scanned in every scope: nothing says what they hold.
//
// A free map is trusted only when every recognised filesystem that overlaps
// the scanned range reads as consistent: an ext filesystem the ext reader
// refuses (corrupt, dirty, unsupported), a FAT/exFAT reader that throws or
// reports problems, or a partition table that cannot be trusted make the
// scope "all", with the reason. So does finding no filesystem at all.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/guest_fs/free_map.h"
#include "core/pipeline/reader.h"

namespace blocksmith::fs {

struct ScopeVolume {
  uint32_t partition = 0;    // 1-based partition number; 0: the filesystem is on the whole source
  std::string filesystem;    // "ext4", "fat32", "exfat", ...; "" when not recognised
  uint64_t offset = 0, length = 0;  // of the filesystem (the partition when not recognised)
  uint64_t free_bytes = 0, allocated_bytes = 0;
  std::string problem;       // why its maps are not trusted (then the whole source is scanned)
};

// What the report says about the scope.
struct ScopeReport {
  std::string requested;  // "auto", "free", "all", "allocated"
  std::string used;       // "free", "all", "allocated"
  std::string reason;     // why `used` is "all" when another scope was asked for (or "auto" chose it)
  uint64_t bytes_in_scope = 0;  // of the scanned range: bytes the scan reads
  uint64_t bytes_skipped = 0;   // of the scanned range: bytes the scope leaves out
  std::vector<ScopeVolume> volumes;
};

struct ScanScope {
  ScopeReport report;
  FreeMap skip;  // normalized; source coordinates
};

// True for "auto", "free", "all", "allocated".
bool valid_scope(const std::string& scope);

// The scope of a scan of [begin, end) of `reader`. `exclude`: further ranges
// scope "free" skips (ignored by the other scopes). Throws Error EINVAL for an
// unknown scope name, and what reading the source throws (EIO); a filesystem
// or partition table that cannot be trusted is not an error: the scope falls
// back to "all" with the reason.
ScanScope plan_scan_scope(Reader& reader, const std::string& requested, uint64_t begin, uint64_t end,
                          const std::vector<ByteRange>& exclude = {});

}  // namespace blocksmith::fs
