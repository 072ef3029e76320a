// Fuzz harness: the ext2/3/4 deleted-file reader (read_ext_files: inode
// copies, the jbd2 journal, block maps, directory blocks and their slack)
// on mutated small ext images, and the directory-block parser alone.
//
// libFuzzer caps inputs at 1 MiB, and an ext3/ext4 journal alone is at
// least 1024 blocks: so the input is a sparse 4 MiB image of 1 KiB blocks,
// as records of a 2-byte block number (little-endian, modulo 4096) and the
// block's 1024 bytes; blocks no record names are zeros. Seeds
// (native/fuzz/seeds/fuzz_ext_deleted.sh) are kernel-written images in that
// form. Either a blocksmith::Error, or a result whose every extent lies
// inside the filesystem, whose file offsets match the extents and stay
// within the size, whose recoverable files are covered exactly (extents
// plus gaps add up to the size), and where nothing overwritten is called
// recoverable.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <vector>

#include "core/base/error.h"
#include "core/guest_fs/ext_dirents.h"
#include "core/guest_fs/volume_files.h"
#include "core/readers/memory_reader.h"

using namespace blocksmith;

namespace {
constexpr size_t kBlock = 1024, kBlocks = 4096, kRecord = 2 + kBlock;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* in, size_t in_size) {
  static std::vector<uint8_t> image(kBlock * kBlocks);
  std::fill(image.begin(), image.end(), 0);
  for (size_t at = 0; at + 2 < in_size; at += kRecord) {
    const size_t block = (in[at] | (in[at + 1] << 8)) % kBlocks;
    std::memcpy(&image[block * kBlock], in + at + 2, std::min(kBlock, in_size - at - 2));
  }
  const uint8_t* data = image.data();
  const size_t size = image.size();
  for (uint32_t bs : {1024u, 4096u}) {
    fs::DirBlock d = fs::parse_dir_block(in_size > 2 + bs ? in + 2 : data, bs, in_size > 2 + bs, 1u << 20);
    for (const auto& e : d.entries) {
      if (e.name.empty() || e.name.size() > 255 || e.inode == 0 || e.inode > (1u << 20)) std::abort();
      if (e.name.find('/') != std::string::npos || e.name.find('\0') != std::string::npos) std::abort();
    }
  }
  MemoryReader reader(data, size);
  try {
    fs::VolumeFiles v = fs::read_ext_files(reader, 0, size);
    const uint64_t end = v.offset + v.cluster_count * v.cluster_size;
    if (end > size) std::abort();
    for (const auto& f : v.deleted) {
      if (f.path.empty() || f.path.front() == '/') std::abort();
      if (!f.file_offsets.empty() && f.file_offsets.size() != f.extents.size()) std::abort();
      uint64_t total = 0;
      for (size_t i = 0; i < f.extents.size(); ++i) {
        const auto& e = f.extents[i];
        if (e.begin >= e.end || e.begin < v.offset || e.end > end) std::abort();
        if (!f.file_offsets.empty() && f.file_offsets[i] + (e.end - e.begin) > f.size) std::abort();
        total += e.end - e.begin;
      }
      if (f.status == fs::DeletedStatus::recoverable && !f.directory && f.file_offsets.empty() && total != f.size) {
        std::abort();
      }
      if (f.overwritten_bytes > 0 && f.status == fs::DeletedStatus::recoverable) std::abort();
    }
  } catch (const Error&) {
  }
  return 0;
}
