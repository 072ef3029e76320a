#include "core/guest_fs/volumes.h"

#include "core/base/error.h"
#include "core/guest_fs/ext.h"
#include "core/guest_fs/inspect.h"
#include "core/guest_fs/partition.h"

namespace blocksmith::fs {
namespace {

// The reader's message without its leading "'path': ", which the report
// already names.
std::string reason_of(const Error& e, const std::string& path) {
  std::string m = e.what();
  std::string prefix = "'" + path + "': ";
  if (m.rfind(prefix, 0) == 0) m.erase(0, prefix.size());
  return m;
}

// The ext reader's view of `v` (sparsify --fs's): true when it is ext.
bool read_ext_volume(Reader& reader, FoundVolume& v) {
  VolumeReport r;
  r.number = v.partition;
  r.offset = v.offset;
  r.length = v.length;
  FreeMap free;
  inspect_volume(r, reader, free);
  if (r.action == "free-blocks") {
    v.ext = r.filesystem;
    // A filesystem smaller than its partition: the tail is not its own.
    v.ext_length = std::min<uint64_t>(v.length, r.blocks_count * r.block_size);
    free.normalize();
    v.ext_free = std::move(free);
  } else if (r.action == "refused") {
    v.ext = r.filesystem;
    v.ext_problem = r.reason;
  } else {
    return false;
  }
  v.problem = "not a FAT or exFAT filesystem";
  return true;
}

// ext2/3/4's files (read_ext_files), as FAT/exFAT ones are read below. The
// free-map reader's refusal (a dirty journal, a feature sparsify --fs does
// not handle) does not stop it: undelete reads what that reader will not
// change.
void read_ext_files_volume(Reader& reader, FoundVolume& v) {
  v.problem.clear();
  try {
    v.files = read_ext_files(reader, v.offset, v.length);
    v.read = true;
  } catch (const Error& e) {
    if (e.code().rfind("ERR_FS_", 0) != 0) throw;
    v.problem = reason_of(e, reader.path());
    v.error_code = e.code();
  }
  if (v.ext.empty()) v.ext = v.read ? v.files.filesystem : probe_ext_type(reader, v.offset, v.length);
}

void read_volume(Reader& reader, FoundVolume& v, const FindVolumesOptions& opt) {
  if (opt.ext && read_ext_volume(reader, v)) {
    if (opt.ext_files) read_ext_files_volume(reader, v);
    return;
  }
  if (!opt.ext && opt.ext_files && probe_ext(reader, v.offset, v.length)) {
    read_ext_files_volume(reader, v);
    return;
  }
  bool fat = false, exfat = false;
  try {
    exfat = probe_exfat(reader, v.offset, v.length);
    fat = !exfat && probe_fat(reader, v.offset, v.length);
  } catch (const Error& e) {
    if (e.code().rfind("ERR_FS_", 0) != 0) throw;
  }
  if (!fat && !exfat) {
    v.problem = opt.ext_files ? "not a FAT, exFAT or ext filesystem" : "not a FAT or exFAT filesystem";
    return;
  }
  v.fat_family = exfat ? "exfat" : "fat";
  try {
    v.files = exfat ? read_exfat(reader, v.offset, v.length) : read_fat(reader, v.offset, v.length);
    v.read = true;
  } catch (const Error& e) {
    // I/O errors are the source's, not the filesystem's: they stop the run.
    if (e.code().rfind("ERR_FS_", 0) != 0) throw;
    v.problem = reason_of(e, reader.path());
    v.error_code = e.code();
  }
}

bool whole_source_is_fat(Reader& reader) {
  try {
    return probe_exfat(reader, 0, reader.size()) || probe_fat(reader, 0, reader.size());
  } catch (const Error& e) {
    if (e.code().rfind("ERR_FS_", 0) != 0) throw;
    return false;
  }
}

}  // namespace

SourceVolumes find_volumes(Reader& reader, const FindVolumesOptions& opt) {
  SourceVolumes out;
  out.scheme = "none";
  // A FAT boot sector ends in 0x55AA like an MBR, and its boot code lies
  // where an MBR keeps its entries: read as a table it would give garbage
  // partitions. So the boot sector is asked first (its BPB checks are far
  // stricter than an MBR's), then the table.
  if (!whole_source_is_fat(reader)) {
    try {
      PartitionTable t = read_source_table(reader, 512);
      out.scheme = t.scheme;
      for (const auto& p : t.partitions) {
        FoundVolume v;
        v.partition = p.number;
        v.type = p.type;
        v.offset = p.offset;
        v.length = p.length;
        if (p.type == "0xee" || p.type == "0x05" || p.type == "0x0f" || p.type == "0x85") {
          v.problem = "a partition-table container, not a filesystem";
        } else {
          read_volume(reader, v, opt);
        }
        out.volumes.push_back(std::move(v));
      }
    } catch (const Error& e) {
      if (e.code().rfind("ERR_FS_", 0) != 0) throw;
      out.scheme = "none";
      out.table_problem = reason_of(e, reader.path());
      out.volumes.clear();
    }
  }
  if (out.scheme == "none") {
    FoundVolume v;
    v.offset = 0;
    v.length = reader.size();
    read_volume(reader, v, opt);
    out.volumes.push_back(std::move(v));
  }
  return out;
}

}  // namespace blocksmith::fs
