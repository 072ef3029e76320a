// Partition tables: MBR (with the extended/logical chain) and GPT (header
// and entry-array CRC32, backup header when the primary is bad). Functions
// over a Reader; every offset is checked against the image size.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/pipeline/reader.h"

namespace blocksmith::fs {

struct Partition {
  uint32_t number = 0;      // 1-based as Linux names them (MBR logicals from 5)
  std::string type;         // MBR: "0x83"; GPT: the type GUID
  std::string name;         // GPT name (ASCII part), empty for MBR
  uint64_t offset = 0;      // bytes
  uint64_t length = 0;      // bytes (clipped to the image)
  bool truncated = false;   // the table says it extends past the image's end
};

struct PartitionTable {
  std::string scheme;       // "none", "mbr", "gpt"
  bool gpt_backup_used = false;
  std::vector<Partition> partitions;
};

// MBR only: partitions listed in sector 0 and the EBR chain. Returns an
// empty scheme "none" when sector 0 has no 0x55AA signature or no entries.
// Throws Error (ERR_FS_CORRUPT) on loops, out-of-bounds chains, overlaps.
PartitionTable read_mbr(Reader& reader, uint32_t sector_size);

// GPT at LBA 1 (or the backup at the last LBA). Throws Error when neither
// header with its entry array is valid.
PartitionTable read_gpt(Reader& reader, uint32_t sector_size);

// Detects the scheme: a protective MBR (type 0xEE) means GPT, else MBR,
// else "none". Partitions overlapping each other are refused.
PartitionTable read_partition_table(Reader& reader, uint32_t sector_size);

}  // namespace blocksmith::fs
