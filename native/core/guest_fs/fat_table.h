// The File Allocation Table in use (FAT #1, or FAT32's active one when
// mirroring is off), read once and kept as stored (1.5, 2 or 4 bytes per
// cluster), and a one-bit-per-cluster bitmap (live clusters, directory
// clusters already walked).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/guest_fs/fat_boot.h"
#include "core/pipeline/reader.h"

namespace blocksmith::fs {

class FatTable {
 public:
  // Reads fat_bytes at fat_offset (in pieces: it may be hundreds of MiB).
  FatTable(Reader& reader, const FatGeometry& g);

  enum class Kind : uint8_t { free, next, end, bad, invalid };
  struct Entry {
    Kind kind;
    uint32_t next;  // kind == next: a valid data cluster
  };
  // The entry of data cluster `cluster` (2 .. cluster_count + 1).
  Entry get(uint32_t cluster) const;
  uint32_t raw(uint32_t cluster) const;  // FAT32's upper 4 bits masked

 private:
  int bits_;
  uint64_t clusters_;
  std::vector<uint8_t> bytes_;
};

class ClusterBitmap {
 public:
  explicit ClusterBitmap(uint64_t cluster_count) : words_((cluster_count + 2 + 63) / 64, 0) {}
  bool test(uint64_t c) const { return (words_[c >> 6] >> (c & 63)) & 1; }
  void set(uint64_t c) { words_[c >> 6] |= uint64_t(1) << (c & 63); }

 private:
  std::vector<uint64_t> words_;
};

}  // namespace blocksmith::fs
