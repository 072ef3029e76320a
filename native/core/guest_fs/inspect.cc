#include "core/guest_fs/inspect.h"

#include <cerrno>
#include <cstring>

#include "core/base/error.h"
#include "core/guest_fs/ext.h"
#include "core/guest_fs/partition.h"

namespace blocksmith::fs {
namespace {

// The message without the "'path': " every fs error starts with.
std::string reason_of(const Error& e, const std::string& path) {
  std::string m = e.what();
  const std::string prefix = "'" + path + "': ";
  return m.rfind(prefix, 0) == 0 ? m.substr(prefix.size()) : m;
}

void refuse(VolumeReport& v, const Error& e, const std::string& path) {
  v.action = "refused";
  v.error_code = e.code();
  v.error_syscall = e.syscall();
  v.error_errno = e.errnum();
  v.error_message = e.what();
  v.reason = reason_of(e, path);
}

}  // namespace

void inspect_volume(VolumeReport& v, Reader& reader, FreeMap& free, const std::vector<host::FsUse>* uses) {
  if (!probe_ext(reader, v.offset, v.length)) {
    v.action = "zero-detection";
    return;
  }
  const std::string& path = reader.path();
  v.filesystem = probe_ext_type(reader, v.offset, v.length);
  const std::string where = "the " + v.filesystem + " filesystem " +
                            (v.number == 0 ? "at byte " + std::to_string(v.offset)
                                           : "in partition " + std::to_string(v.number) + " (at byte " +
                                                 std::to_string(v.offset) + ")");
  // In use first: a mounted filesystem's state on disk (needs_recovery,
  // bitmaps) says nothing about what it holds now.
  if (uses) {
    for (const auto& u : *uses) {
      if (u.partition != 0 && u.partition != v.number) continue;
      refuse(v,
             Error(EBUSY, "EBUSY", "open", path,
                   "'" + path + "': " + where + " is in use: " + u.text +
                       " (what is on disk is not current while it is); unmount it first"),
             path);
      return;
    }
  }
  ExtInfo e;
  try {
    ExtReadOptions options;
    options.where = where;
    e = read_ext(reader, v.offset, v.length, options);
  } catch (const Error& err) {
    if (err.code().rfind("ERR_FS_", 0) != 0) throw;  // I/O errors are not the filesystem's
    refuse(v, err, path);
    return;
  }
  v.filesystem = e.type;
  v.label = e.label;
  v.action = "free-blocks";
  v.block_size = e.block_size;
  v.cluster_size = e.cluster_size;
  v.blocks_count = e.blocks_count;
  v.free_blocks = e.free_blocks;
  v.free_bytes = e.free_bytes;
  v.used_bytes = e.blocks_count * e.block_size - e.free_bytes;
  v.groups = e.groups;
  v.uninit_groups = e.uninit_groups;
  v.features = e.features;
  v.verified = e.verified;
  for (const auto& r : e.free) free.add(r.begin, r.end);
}

PartitionTable read_source_table(Reader& reader, uint32_t sector_size) {
  PartitionTable t = read_partition_table(reader, sector_size);
  if (t.scheme == "none" && sector_size == 512 && reader.size() >= 8192) {
    // A GPT disk with 4 KiB sectors has no 512-byte protective MBR sector of
    // its own; try GPT at 4 KiB LBAs only if its signature is there.
    uint8_t sig[8] = {};
    if (reader.read_at(sig, 8, 4096) == 8 && std::memcmp(sig, "EFI PART", 8) == 0) t = read_partition_table(reader, 4096);
  }
  if (t.scheme == "mbr" && probe_ext(reader, 0, reader.size())) {
    throw Error(0, "ERR_FS_UNSUPPORTED", "", reader.path(),
                "'" + reader.path() + "' has both an MBR partition table and an ext superblock at its start; "
                "refusing to guess which is real");
  }
  return t;
}

Inspection inspect_filesystems(Reader& reader, uint32_t sector_size, const std::vector<host::FsUse>* uses) {
  Inspection out;
  PartitionTable t;
  try {
    t = read_source_table(reader, sector_size);
  } catch (const Error& err) {
    if (err.code().rfind("ERR_FS_", 0) != 0) throw;
    out.scheme = "none";
    out.error_code = err.code();
    out.error_message = err.what();
    out.reason = reason_of(err, reader.path());
    return out;
  }
  out.scheme = t.scheme;
  out.gpt_backup_used = t.gpt_backup_used;
  if (t.scheme == "none") {
    VolumeReport v;
    v.offset = 0;
    v.length = reader.size();
    inspect_volume(v, reader, out.free, uses);
    out.volumes.push_back(std::move(v));
  } else {
    for (const auto& p : t.partitions) {
      VolumeReport v;
      v.number = p.number;
      v.type = p.type;
      v.name = p.name;
      v.offset = p.offset;
      v.length = p.length;
      if (p.type == "0xee") {
        v.action = "zero-detection";
      } else {
        inspect_volume(v, reader, out.free, uses);
      }
      out.volumes.push_back(std::move(v));
    }
  }
  out.free.normalize();
  return out;
}

void throw_if_refused(const Inspection& in, const std::string& path) {
  if (!in.error_code.empty()) throw Error(0, in.error_code, "", path, in.error_message);
  for (const auto& v : in.volumes) {
    if (v.action == "refused") throw Error(v.error_errno, v.error_code, v.error_syscall, path, v.error_message);
  }
}

}  // namespace blocksmith::fs
