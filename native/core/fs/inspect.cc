#include "inspect.h"

#include <cstring>

#include "../error.h"
#include "ext.h"
#include "partition.h"

namespace blocksmith::fs {
namespace {

void fill(VolumeReport& v, Reader& reader, FreeMap& free) {
  if (!probe_ext(reader, v.offset, v.length)) {
    v.action = "zero-detection";
    return;
  }
  ExtInfo e = read_ext(reader, v.offset, v.length);
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
  for (const auto& r : e.free) free.add(r.begin, r.end);
}

}  // namespace

Inspection inspect_filesystems(Reader& reader, uint32_t sector_size) {
  Inspection out;
  PartitionTable t = read_partition_table(reader, sector_size);
  if (t.scheme == "none" && sector_size == 512 && reader.size() >= 8192) {
    // A GPT disk with 4 KiB sectors has no 512-byte protective MBR sector of
    // its own; try GPT at 4 KiB LBAs only if its signature is there.
    uint8_t sig[8] = {};
    if (reader.read_at(sig, 8, 4096) == 8 && std::memcmp(sig, "EFI PART", 8) == 0) t = read_partition_table(reader, 4096);
  }
  out.scheme = t.scheme;
  out.gpt_backup_used = t.gpt_backup_used;
  if (t.scheme == "none") {
    VolumeReport v;
    v.offset = 0;
    v.length = reader.size();
    fill(v, reader, out.free);
    out.volumes.push_back(std::move(v));
  } else {
    if (t.scheme == "mbr" && probe_ext(reader, 0, reader.size())) {
      throw Error(0, "ERR_FS_UNSUPPORTED", "", reader.path(),
                  "'" + reader.path() + "' has both an MBR partition table and an ext superblock at its start; "
                  "refusing to guess which is real");
    }
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
        fill(v, reader, out.free);
      }
      out.volumes.push_back(std::move(v));
    }
  }
  out.free.normalize();
  return out;
}

}  // namespace blocksmith::fs
