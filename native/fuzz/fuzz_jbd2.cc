// Fuzz harness: the jbd2 journal reader and the inode block mapper
// (issue 17) on arbitrary bytes. The input is an image of 1 KiB blocks;
// its first 256 bytes are an inode. Byte 256 picks the journal inode: bit 0
// set, one extent mapping log block i to block 1 + i (so the input's block
// 1 on is the journal: superblock, then the log); clear, the input's own
// inode (block map or extent tree through the input's blocks). Bytes
// 258-259 are the file size in blocks for the mapper; bytes 260-263 the
// filesystem's block count when more than the image holds (a journal names
// blocks of the whole filesystem; reads past the image fail).
// Invariants: the map's runs are in logical order, inside the filesystem,
// never on one block twice, within max_blocks and the known part; the
// journal's copies lie inside the image on block boundaries, name blocks of
// the filesystem, are sorted, and read back; problems and errors are one
// line, errors only ERR_FS_CORRUPT.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/guest_fs/bytes.h"
#include "core/guest_fs/ext_block_map.h"
#include "core/guest_fs/jbd2.h"
#include "core/readers/memory_reader.h"

using namespace blocksmith;
using namespace blocksmith::fs;

namespace {

void one_line(const std::string& s) {
  if (s.find('\n') != std::string::npos) std::abort();
}

void put16(uint8_t* p, uint16_t v) { p[0] = v & 0xff, p[1] = v >> 8; }
void put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2048 || size > (4u << 20)) return 0;
  ExtLayout g;
  g.bs = 1024;
  g.blocks_count = std::max<uint64_t>(size / 1024, std::min<uint32_t>(le32(data + 260), 1u << 20));
  g.first_data_block = 1;
  g.compat = kCompatHasJournal;
  g.named_inodes[0] = 8;
  MemoryReader reader(data, size);
  BlockFetch fetch = [&](uint64_t b, uint8_t* out) {
    if (b >= g.blocks_count) std::abort();  // the mapper checks before it fetches
    return reader.read_at(out, 1024, b * 1024) == 1024;  // short past the image's end
  };

  // The mapper on the input's inode.
  const uint64_t max = data[258] | (data[259] << 8);
  const BlockMap m = map_inode_blocks(data, g, fetch, max);
  one_line(m.problem);
  if (m.known_blocks > max || m.problem.empty() != (m.known_blocks == max)) std::abort();
  std::vector<bool> used(g.blocks_count, false);
  uint64_t next = 0;
  for (const auto& r : m.runs) {
    if (r.count == 0 || r.logical < next || r.logical + r.count > m.known_blocks) std::abort();
    if (r.physical < 1 || r.physical + r.count > g.blocks_count) std::abort();
    for (uint64_t i = 0; i < r.count; ++i) {
      if (used[r.physical + i]) std::abort();
      used[r.physical + i] = true;
    }
    next = r.logical + r.count;
  }

  // The journal.
  std::vector<uint8_t> inode(data, data + 256);
  if (data[256] & 1) {
    std::fill(inode.begin(), inode.end(), 0);
    put32(inode.data() + 0x4, static_cast<uint32_t>((g.blocks_count - 1) * 1024));
    put32(inode.data() + 0x20, 0x80000);
    uint8_t* root = inode.data() + 0x28;
    put16(root, 0xF30A);
    put16(root + 2, 1);
    put16(root + 4, 4);
    put16(root + 16, static_cast<uint16_t>(std::min<uint64_t>(g.blocks_count - 1, 32768)));
    put32(root + 20, 1);
  }
  try {
    const JournalHistory h = read_journal(reader, g, inode.data(), "fuzz");
    for (const auto& p : h.problems) one_line(p);
    if (h.revoked != h.revoked_copies.size()) std::abort();
    std::vector<uint8_t> buf(1024);
    for (const auto* v : {&h.copies, &h.revoked_copies}) {
      for (size_t i = 0; i < v->size(); ++i) {
        const JournalCopy& c = (*v)[i];
        if (c.fs_block >= g.blocks_count || c.source_offset % 1024 || c.source_offset + 1024 > size) std::abort();
        if (i && (*v)[i - 1].fs_block > c.fs_block) std::abort();
        if (!read_copy(reader, h, c, buf.data())) std::abort();
      }
    }
    if (h.copies.size() + h.revoked_copies.size() > g.blocks_count) std::abort();
    for (const auto& c : h.copies) {
      const auto same = h.copies_of(c.fs_block);
      if (same.empty() || same[0]->fs_block != c.fs_block) std::abort();
    }
  } catch (const Error& e) {
    if (e.code() != "ERR_FS_CORRUPT") std::abort();
    one_line(e.what());
  }
  return 0;
}
