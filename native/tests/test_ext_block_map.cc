// map_inode_blocks (guest_fs/ext_block_map.cc): the block maps and extent
// trees of files the kernel wrote (ext3 with single and double indirect
// blocks, ext4 with a depth-1 extent tree, holes and an unwritten extent),
// read back through the map and compared byte for byte with the files; then
// hostile maps built by hand: tree blocks that cannot be read, are zeroed,
// point outside the filesystem, go back in the file, loop, or map a block
// twice, each stopping the map with a problem and the file block where the
// map stops being known.
#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "core/guest_fs/bytes.h"
#include "core/guest_fs/ext.h"
#include "core/guest_fs/ext_block_map.h"
#include "core/readers/file_reader.h"
#include "ext_image.h"
#include "test.h"
#include "test_bytes.h"

using namespace blocksmith;
using namespace blocksmith::fs;
using ext_image::ImageDir;

namespace {

BlockFetch disk_fetch(Reader& r, const ExtLayout& g) {
  return [&r, &g](uint64_t block, uint8_t* out) {
    return block < g.blocks_count && r.read_at(out, g.bs, g.offset + block * g.bs) == g.bs;
  };
}

// The file's bytes as the map says: unmapped and unwritten blocks read as zeros.
std::vector<uint8_t> bytes_of(Reader& r, const ExtLayout& g, const BlockMap& m, uint64_t size) {
  std::vector<uint8_t> out((size + g.bs - 1) / g.bs * g.bs, 0);
  for (const auto& run : m.runs) {
    if (run.uninitialized) continue;
    r.read_at(out.data() + run.logical * g.bs, run.count * g.bs, g.offset + run.physical * g.bs);
  }
  out.resize(size);
  return out;
}

std::vector<uint64_t> physical_blocks(const BlockMap& m) {
  std::vector<uint64_t> v;
  for (const auto& r : m.runs) {
    for (uint64_t i = 0; i < r.count; ++i) v.push_back(r.physical + i);
  }
  return v;
}

void put16(uint8_t* p, uint16_t v) { p[0] = v & 0xff, p[1] = v >> 8; }
void put32(uint8_t* p, uint32_t v) { for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i)); }

// A 1 KiB-block filesystem of 1000 blocks whose tree blocks live in a map.
struct Fake {
  ExtLayout g;
  std::map<uint64_t, std::vector<uint8_t>> blocks;
  std::vector<uint8_t> inode = std::vector<uint8_t>(256, 0);
  int fetches = 0;
  Fake() {
    g.bs = 1024;
    g.blocks_count = 1000;
    g.first_data_block = 1;
  }
  uint8_t* block(uint64_t b) {
    auto& v = blocks[b];
    v.resize(1024, 0);
    return v.data();
  }
  BlockMap map(uint64_t max_blocks) {
    BlockFetch f = [this](uint64_t b, uint8_t* out) {
      ++fetches;
      auto it = blocks.find(b);
      if (it == blocks.end()) return false;
      std::memcpy(out, it->second.data(), 1024);
      return true;
    };
    return map_inode_blocks(inode.data(), g, f, max_blocks);
  }
  void extents_on() { put32(inode.data() + 0x20, 0x80000); }
  // An extent header at p: entries, max, depth.
  static void header(uint8_t* p, uint16_t entries, uint16_t max, uint16_t depth) {
    put16(p, 0xF30A);
    put16(p + 2, entries);
    put16(p + 4, max);
    put16(p + 6, depth);
  }
  static void leaf(uint8_t* node, int i, uint32_t logical, uint16_t len, uint64_t start) {
    uint8_t* e = node + 12 + 12 * i;
    put32(e, logical);
    put16(e + 4, len);
    put16(e + 6, static_cast<uint16_t>(start >> 32));
    put32(e + 8, static_cast<uint32_t>(start));
  }
  static void index(uint8_t* node, int i, uint32_t logical, uint64_t child) {
    uint8_t* e = node + 12 + 12 * i;
    put32(e, logical);
    put32(e + 4, static_cast<uint32_t>(child));
    put16(e + 8, static_cast<uint16_t>(child >> 32));
  }
};

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST("block map: an ext3 file of 300 1-KiB blocks (direct, indirect, double indirect) reads back byte for byte") {
  ImageDir d;
  d.make("mkfs.ext3 -q -b 1024");
  d.sh("head -c 307000 /dev/urandom > mnt/big && sync");
  const uint32_t ino = d.ino("big");
  const auto original = d.read("mnt/big");
  d.umount();
  FileReader r = FileReader::open(d.img());
  ExtInfo info = read_ext(r, 0, r.size());
  const ExtLayout& g = info.layout;
  auto inode = ext_image::raw_inode(r, g, ino);
  const BlockMap m = map_inode_blocks(inode.data(), g, disk_fetch(r, g), (307000 + 1023) / 1024);
  CHECK_EQ(m.problem, "");
  CHECK_EQ(m.known_blocks, 300u);
  CHECK(bytes_of(r, g, m, 307000) == original);
  // The same data and tree blocks as debugfs lists; the tree blocks are the
  // IND, the DIND and the one IND under it that debugfs names.
  auto all = physical_blocks(m);
  all.insert(all.end(), m.tree_blocks.begin(), m.tree_blocks.end());
  std::sort(all.begin(), all.end());
  auto listed = ext_image::numbers(d.out("debugfs -R 'blocks <" + std::to_string(ino) + ">' fs.img"));
  std::sort(listed.begin(), listed.end());
  CHECK(all == listed);
  const std::string stat = d.out("debugfs -R 'stat <" + std::to_string(ino) + ">' fs.img");
  std::vector<uint64_t> tree;
  for (size_t at = 0; (at = stat.find("IND):", at)) != std::string::npos; at += 5) {
    tree.push_back(std::stoull(stat.substr(at + 5)));
  }
  CHECK_EQ(tree.size(), 3u);
  CHECK(m.tree_blocks == tree);
}

TEST("block map: an ext4 extent tree of depth 1 with holes and an unwritten extent reads back byte for byte") {
  ImageDir d;
  d.make("mkfs.ext4 -q -b 4096");
  // Every other 4 KiB block written: 10 extents, more than the inode's 4,
  // so the tree gets an index level; then a preallocated (unwritten) tail.
  std::string cmd = "head -c 4096 /dev/urandom > blk";
  for (int i = 0; i < 20; i += 2) cmd += " && dd if=blk of=mnt/sparse bs=4096 seek=" + std::to_string(i) + " conv=notrunc";
  d.sh(cmd + " && fallocate -o 81920 -l 16384 mnt/sparse && sync");
  const uint32_t ino = d.ino("sparse");
  const auto original = d.read("mnt/sparse");
  CHECK_EQ(original.size(), 98304u);
  d.umount();
  FileReader r = FileReader::open(d.img());
  ExtInfo info = read_ext(r, 0, r.size());
  const ExtLayout& g = info.layout;
  auto inode = ext_image::raw_inode(r, g, ino);
  CHECK_EQ(le16(inode.data() + 0x28 + 6), 1u);  // depth 1 in the inode
  const BlockMap m = map_inode_blocks(inode.data(), g, disk_fetch(r, g), 24);
  CHECK_EQ(m.problem, "");
  CHECK_EQ(m.tree_blocks.size(), 1u);
  CHECK(bytes_of(r, g, m, original.size()) == original);
  CHECK_EQ(m.runs.size(), 11u);
  CHECK_EQ(m.runs.back().logical, 20u);
  CHECK_EQ(m.runs.back().count, 4u);
  CHECK(m.runs.back().uninitialized);
  for (size_t i = 0; i + 1 < m.runs.size(); ++i) CHECK_EQ(m.runs[i].logical, 2 * i);
  // Cut at max_blocks: 5 blocks map file blocks 0, 2, 4.
  const BlockMap cut = map_inode_blocks(inode.data(), g, disk_fetch(r, g), 5);
  CHECK_EQ(cut.runs.size(), 3u);
  CHECK_EQ(cut.known_blocks, 5u);
}

TEST("block map: an indirect block that cannot be read, is zeroed, or holds garbage stops the map at file block 12") {
  Fake f;
  for (uint32_t i = 0; i < 12; ++i) put32(f.inode.data() + 0x28 + 4 * i, 100 + i);
  put32(f.inode.data() + 0x28 + 48, 300);  // IND, not in the map: cannot be read
  BlockMap m = f.map(40);
  CHECK_EQ(m.runs.size(), 1u);
  CHECK_EQ(m.runs[0].physical, 100u);
  CHECK_EQ(m.runs[0].count, 12u);
  CHECK_EQ(m.known_blocks, 12u);
  CHECK_EQ(m.problem, "the indirect block 300 (file blocks 12-39) could not be read");
  CHECK(m.tree_blocks == std::vector<uint64_t>{300});

  f.block(300);  // zeroed, as ext3's delete leaves it
  m = f.map(40);
  CHECK_EQ(m.problem, "the indirect block 300 (file blocks 12-39) holds no block numbers (zeroed, as a delete leaves it)");
  CHECK_EQ(m.known_blocks, 12u);

  uint8_t* ind = f.block(300);
  for (uint32_t i = 0; i < 28; ++i) put32(ind + 4 * i, 112 + i);
  m = f.map(40);
  CHECK_EQ(m.problem, "");
  CHECK_EQ(m.runs.size(), 1u);
  CHECK_EQ(m.runs[0].count, 40u);
  CHECK_EQ(m.known_blocks, 40u);

  put32(ind + 4 * 20, 5000);  // past the filesystem: the whole block is garbage
  m = f.map(40);
  CHECK_EQ(m.problem, "the indirect block 300 (file blocks 12-39) holds block numbers outside the filesystem (entry 20: 5000)");
  CHECK_EQ(m.runs[0].count, 12u);
  CHECK_EQ(m.known_blocks, 12u);

  put32(f.inode.data() + 0x28 + 48, 7000);  // the pointer itself outside
  m = f.map(40);
  CHECK_EQ(m.problem, "the inode's indirect block pointer is 7000, outside the filesystem");
  CHECK(m.tree_blocks.empty());
}

TEST("block map: a double indirect block whose indirect block is zeroed stops where that block's file blocks begin") {
  Fake f;
  for (uint32_t i = 0; i < 12; ++i) put32(f.inode.data() + 0x28 + 4 * i, 10 + i);
  put32(f.inode.data() + 0x28 + 48, 0);    // IND a hole (sparse)
  put32(f.inode.data() + 0x28 + 52, 400);  // DIND
  uint8_t* dind = f.block(400);
  put32(dind, 401);
  put32(dind + 4, 402);
  uint8_t* ind = f.block(401);
  for (uint32_t i = 0; i < 256; ++i) put32(ind + 4 * i, 500 + i % 200 + (i >= 200 ? 250 : 0));
  f.block(402);  // zeroed
  const uint64_t dind_base = 12 + 256;
  BlockMap m = f.map(dind_base + 300);
  CHECK_EQ(m.known_blocks, dind_base + 256);
  CHECK_EQ(m.problem, "the indirect block 402 (file blocks 524-567) holds no block numbers (zeroed, as a delete leaves it)");
  CHECK(m.tree_blocks == (std::vector<uint64_t>{400, 401, 402}));
  CHECK_EQ(m.runs.size(), 3u);
  CHECK_EQ(m.runs[1].logical, dind_base);
  CHECK_EQ(m.runs[1].physical, 500u);
  CHECK_EQ(m.runs[1].count, 200u);
  CHECK_EQ(m.runs[2].physical, 750u);
}

TEST("block map: two file blocks on the same filesystem block stop the map at the second") {
  Fake f;
  for (uint32_t i = 0; i < 12; ++i) put32(f.inode.data() + 0x28 + 4 * i, 100 + i);
  put32(f.inode.data() + 0x28 + 4 * 9, 103);
  BlockMap m = f.map(12);
  CHECK_EQ(m.problem, "file block 3 and file block 9 both map to block 103");
  CHECK_EQ(m.known_blocks, 9u);
  CHECK_EQ(m.runs.size(), 1u);
  CHECK_EQ(m.runs[0].count, 9u);
}

TEST("extent map: a depth-2 tree through index blocks; a bad child header, depth or order stops it") {
  Fake f;
  f.extents_on();
  uint8_t* root = f.inode.data() + 0x28;
  Fake::header(root, 2, 4, 2);
  Fake::index(root, 0, 0, 600);
  Fake::index(root, 1, 1000, 601);
  uint8_t* a = f.block(600);
  Fake::header(a, 1, 84, 1);
  Fake::index(a, 0, 0, 610);
  uint8_t* la = f.block(610);
  Fake::header(la, 2, 84, 0);
  Fake::leaf(la, 0, 0, 10, 100);
  Fake::leaf(la, 1, 20, 32768 + 5, 200);  // unwritten
  uint8_t* b = f.block(601);
  Fake::header(b, 1, 84, 1);
  Fake::index(b, 0, 1000, 611);
  uint8_t* lb = f.block(611);
  Fake::header(lb, 1, 84, 0);
  Fake::leaf(lb, 0, 1000, 8, 300);
  BlockMap m = f.map(1008);
  CHECK_EQ(m.problem, "");
  CHECK_EQ(m.runs.size(), 3u);
  CHECK(m.runs[1].uninitialized);
  CHECK_EQ(m.runs[1].count, 5u);
  CHECK_EQ(m.runs[2].logical, 1000u);
  CHECK(m.tree_blocks == (std::vector<uint64_t>{600, 610, 601, 611}));

  Fake::header(lb, 1, 84, 1);  // a leaf that says it is an index: wrong depth
  m = f.map(1008);
  CHECK_EQ(m.problem, "the extent tree block 611 is an extent node of depth 1 where depth 0 belongs");
  CHECK_EQ(m.known_blocks, 1000u);
  CHECK_EQ(m.runs.size(), 2u);

  Fake::header(lb, 1, 84, 0);
  Fake::leaf(lb, 0, 15, 8, 300);  // goes back into file blocks already mapped
  m = f.map(1008);
  CHECK_EQ(m.problem, "file block 15 is mapped twice (extents overlap or are out of order)");
  CHECK_EQ(m.runs.size(), 1u);  // nothing from file block 15 on: the unwritten run at 20 goes too
  CHECK_EQ(m.known_blocks, 15u);

  Fake::leaf(lb, 0, 1000, 8, 995);  // runs past the filesystem's 1000 blocks
  m = f.map(1008);
  CHECK_EQ(m.problem, "the extent tree block 611 maps file blocks 1000-1007 to blocks outside the filesystem (995, 8 blocks)");

  std::memset(lb, 0xAB, 1024);  // garbage
  m = f.map(1008);
  CHECK_EQ(m.problem, "the extent tree block 611 has no extent header");

  f.blocks.erase(611);
  m = f.map(1008);
  CHECK_EQ(m.problem, "the extent tree block 611 (from file block 1000) could not be read");
  CHECK_EQ(m.known_blocks, 1000u);
}

TEST("extent map: an index block pointing at itself or its parent cannot loop (the depth must drop)") {
  Fake f;
  f.extents_on();
  uint8_t* root = f.inode.data() + 0x28;
  Fake::header(root, 1, 4, 3);
  Fake::index(root, 0, 0, 700);
  uint8_t* n = f.block(700);
  Fake::header(n, 1, 84, 2);
  Fake::index(n, 0, 0, 700);  // itself
  BlockMap m = f.map(100);
  CHECK_EQ(m.problem, "the extent tree block 700 is an extent node of depth 2 where depth 1 belongs");
  CHECK(f.fetches <= 2);
  // Depth beyond 5 in the inode.
  Fake::header(root, 1, 4, 6);
  m = f.map(100);
  CHECK_EQ(m.problem, "the inode is an extent node of depth 6");
  // More entries than fit.
  Fake::header(root, 5, 5, 0);
  m = f.map(100);
  CHECK_EQ(m.problem, "the inode has a bad extent header (5 of 5 entries)");
}

TEST("block map: inline data and a zero size map nothing; an empty extent root maps nothing without a problem") {
  Fake f;
  put32(f.inode.data() + 0x20, 0x10000000);
  put32(f.inode.data() + 0x28, 5);
  BlockMap m = f.map(10);
  CHECK(m.runs.empty());
  CHECK_EQ(m.problem, "");
  f.extents_on();
  Fake::header(f.inode.data() + 0x28, 0, 4, 0);
  m = f.map(10);
  CHECK(m.runs.empty());
  CHECK_EQ(m.problem, "");
  m = f.map(0);
  CHECK(m.runs.empty());
}

TEST("block map: random inodes and tree blocks never map outside the filesystem, twice, or past max_blocks") {
  for (uint32_t seed = 1; seed <= 3000; ++seed) {
    Fake f;
    auto rnd = test_bytes::random_bytes(256 + 8 * 1024, seed);
    std::memcpy(f.inode.data(), rnd.data(), 256);
    // Small block numbers and sane headers now and then, so the walk goes deep.
    if (seed % 2) put32(f.inode.data() + 0x20, 0x80000);
    if (seed % 3 == 0) Fake::header(f.inode.data() + 0x28, 3, 4, seed % 4);
    for (int k = 0; k < 8; ++k) {
      uint8_t* b = f.block(1 + (rnd[k] % 16));
      std::memcpy(b, rnd.data() + 256 + 1024 * k, 1024);
      if (k % 2) Fake::header(b, 20, 84, k % 3);
      for (int e = 0; e < 40; ++e) put32(b + 16 + 12 * e, rnd[k * 40 + e] % 20);
    }
    for (int i = 0; i < 15; ++i) put32(f.inode.data() + 0x28 + 4 * i, rnd[100 + i] % 20);
    const uint64_t max = rnd[200] * 37u;
    const BlockMap m = f.map(max);
    uint64_t next = 0, total = 0;
    std::vector<bool> used(1000, false);
    for (const auto& r : m.runs) {
      CHECK(r.logical >= next);
      CHECK(r.count > 0);
      CHECK(r.physical >= 1 && r.physical + r.count <= 1000);
      CHECK(r.logical + r.count <= m.known_blocks);
      for (uint64_t i = 0; i < r.count; ++i) {
        CHECK(!used[r.physical + i]);
        used[r.physical + i] = true;
      }
      next = r.logical + r.count;
      total += r.count;
    }
    CHECK(m.known_blocks <= max);
    CHECK(m.problem.empty() == (m.known_blocks == max));
    CHECK(contains(m.problem, "\n") == false);
  }
}
