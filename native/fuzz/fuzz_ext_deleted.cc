// Fuzz harness: the ext2/3/4 deleted-file reader (read_ext_files: inode
// copies, the jbd2 journal, block maps, directory blocks and their slack)
// on mutated small ext images (seeds: native/fuzz/seeds/fuzz_ext_deleted.sh),
// and the directory-block parser alone on the input's first 4 KiB. Either
// a blocksmith::Error, or a result whose every extent lies inside the
// filesystem, whose file offsets match the extents and stay within the
// size, and whose recoverable files are covered exactly (extents plus
// gaps add up to the size).
#include <cstdint>
#include <cstdlib>

#include "core/base/error.h"
#include "core/guest_fs/ext_dirents.h"
#include "core/guest_fs/volume_files.h"
#include "core/readers/memory_reader.h"

using namespace blocksmith;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (uint32_t bs : {1024u, 4096u}) {
    if (size < bs) continue;
    fs::DirBlock d = fs::parse_dir_block(data, bs, true, 1u << 20);
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
