// The jbd2 journal as a history (guest_fs/jbd2.cc). First journals the
// kernel wrote: ext4 (metadata_csum, 64bit: csum v3 tags) and ext3 (v2
// tags, 32-bit), a file written, synced, deleted, synced: the committed
// transactions and every copy agree with `debugfs -R 'logdump -Oa'`, and an
// older copy of the deleted file's inode still maps its blocks (through its
// indirect block on ext3) to the file's bytes while the newest copy is
// emptied; and an ext3 log the kernel wrapped (data=journal), checked
// against sleuthkit's jls. Then journals built by hand: wrap-around in every order,
// revokes, escaped blocks, 64-bit tags, unfinished transactions, and hostile
// logs (tags past the block, a log outside its inode, cycles, a sequence
// twice, revoke counts past the block) that give problems or one-line
// ERR_FS_CORRUPT errors, never a crash or a hang.
#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "core/base/error.h"
#include "core/guest_fs/bytes.h"
#include "core/guest_fs/checksum.h"
#include "core/guest_fs/ext.h"
#include "core/guest_fs/ext_block_map.h"
#include "core/guest_fs/jbd2.h"
#include "core/readers/file_reader.h"
#include "core/readers/memory_reader.h"
#include "ext_image.h"
#include "test.h"
#include "test_bytes.h"

using namespace blocksmith;
using namespace blocksmith::fs;
using ext_image::ImageDir;

namespace {

void put32be(uint8_t* p, uint32_t v) { p[0] = v >> 24, p[1] = v >> 16, p[2] = v >> 8, p[3] = static_cast<uint8_t>(v); }
void put16be(uint8_t* p, uint16_t v) { p[0] = v >> 8, p[1] = v & 0xff; }
void put16(uint8_t* p, uint16_t v) { p[0] = v & 0xff, p[1] = v >> 8; }
void put32(uint8_t* p, uint32_t v) { for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i)); }

bool has_problem(const JournalHistory& h, const std::string& part) {
  for (const auto& p : h.problems) {
    if (p.find(part) != std::string::npos) return true;
  }
  return false;
}

std::string all_problems(const JournalHistory& h) {
  std::string s;
  for (const auto& p : h.problems) s += "[" + p + "] ";
  return s;
}

// ---- kernel-made journals ----

struct Logdump {
  std::set<uint32_t> committed;
  std::set<std::tuple<uint32_t, uint64_t, uint64_t>> copies;  // sequence, fs block, log block
};

// `debugfs -R 'logdump -Oa'`: every transaction in the log, old ones too.
Logdump logdump(const ImageDir& d) {
  Logdump out;
  std::map<uint32_t, std::vector<std::pair<uint64_t, uint64_t>>> logged;
  std::istringstream in(d.out("debugfs -R 'logdump -Oa' fs.img"));
  std::string line;
  uint32_t seq = 0;
  while (std::getline(in, line)) {
    unsigned s = 0, type = 0;
    unsigned long long fs = 0, jb = 0;
    if (std::sscanf(line.c_str(), "Found expected sequence %u, type %u", &s, &type) == 2) {
      seq = s;
      if (type == 2) out.committed.insert(s);
    } else if (std::sscanf(line.c_str(), "  FS block %llu logged at journal block %llu", &fs, &jb) == 2) {
      logged[seq].push_back({fs, jb});
    }
  }
  for (const auto& [s, v] : logged) {
    if (!out.committed.count(s)) continue;
    for (const auto& [fs, jb] : v) out.copies.insert({s, fs, jb});
  }
  return out;
}

struct KernelJournal {
  ImageDir d;
  ExtLayout g;
  uint32_t victim = 0;
  std::vector<uint8_t> original;
  // mkfs, a kept file and `victim` of `size` bytes written and synced, the
  // victim deleted and synced, unmounted.
  KernelJournal(const std::string& mkfs, size_t size) {
    d.make(mkfs);
    d.sh("head -c 20000 /dev/urandom > mnt/kept && head -c " + std::to_string(size) + " /dev/urandom > mnt/victim && sync");
    victim = d.ino("victim");
    original = d.read("mnt/victim");
    d.sh("rm mnt/victim && sync");
    d.umount();
  }
};

// Log block of each copy (from the journal inode's map), to compare with logdump.
std::set<std::tuple<uint32_t, uint64_t, uint64_t>> copies_with_log_blocks(Reader& r, const ExtLayout& g,
                                                                         const JournalHistory& h) {
  auto inode8 = ext_image::raw_inode(r, g, 8);
  BlockFetch disk = [&](uint64_t b, uint8_t* out) { return r.read_at(out, g.bs, b * g.bs) == g.bs; };
  const BlockMap m = map_inode_blocks(inode8.data(), g, disk, h.log_blocks);
  std::map<uint64_t, uint64_t> log_of;  // physical -> log block
  for (const auto& run : m.runs) {
    for (uint64_t i = 0; i < run.count; ++i) log_of[run.physical + i] = run.logical + i;
  }
  std::set<std::tuple<uint32_t, uint64_t, uint64_t>> out;
  for (const auto* v : {&h.copies, &h.revoked_copies}) {
    for (const auto& c : *v) out.insert({c.sequence, c.fs_block, log_of.at(c.source_offset / g.bs)});
  }
  return out;
}

// Checks the journal against logdump and returns it.
JournalHistory read_and_cross_check(KernelJournal& k, Reader& r) {
  ExtInfo info = read_ext(r, 0, r.size());
  k.g = info.layout;
  auto inode8 = ext_image::raw_inode(r, k.g, 8);
  JournalHistory h = read_journal(r, k.g, inode8.data(), "fs");
  CHECK(h.present);
  CHECK_EQ(h.block_size, k.g.bs);
  const uint64_t total = ext_image::numbers(k.d.out("dumpe2fs -h fs.img 2>/dev/null | grep 'Total journal blocks'")).at(0);
  CHECK_EQ(h.log_blocks, total);
  CHECK_EQ(all_problems(h), "");
  const Logdump ld = logdump(k.d);
  CHECK(ld.committed.size() >= 2);
  CHECK_EQ(h.transactions, ld.committed.size());
  CHECK_EQ(h.oldest_sequence, *ld.committed.begin());
  CHECK_EQ(h.newest_sequence, *ld.committed.rbegin());
  CHECK(copies_with_log_blocks(r, k.g, h) == ld.copies);
  CHECK_EQ(h.revoked, h.revoked_copies.size());
  // Sorted by block, newest first.
  for (size_t i = 1; i < h.copies.size(); ++i) {
    CHECK(h.copies[i - 1].fs_block < h.copies[i].fs_block ||
          (h.copies[i - 1].fs_block == h.copies[i].fs_block && h.copies[i - 1].sequence > h.copies[i].sequence));
  }
  return h;
}

// The copies of the victim's inode: the newest emptied by the delete, an
// older one still mapping the file's blocks. Returns that older inode.
std::vector<uint8_t> inode_before_delete(KernelJournal& k, Reader& r, const JournalHistory& h) {
  const auto [block, off] = ext_image::inode_location(k.g, k.victim);
  const auto copies = h.copies_of(block);
  CHECK(copies.size() >= 2);
  std::vector<uint8_t> buf(k.g.bs);
  CHECK(read_copy(r, h, *copies[0], buf.data()));
  const uint8_t* newest = buf.data() + off;
  CHECK_EQ(le32(newest + 0x4), 0u);   // size 0
  CHECK(le32(newest + 0x14) != 0);    // dtime set
  for (const JournalCopy* c : copies) {
    CHECK(read_copy(r, h, *c, buf.data()));
    const uint8_t* ino = buf.data() + off;
    if (le32(ino + 0x4) == k.original.size() && le32(ino + 0x14) == 0) {
      return std::vector<uint8_t>(ino, ino + k.g.inode_size);
    }
  }
  coretest::fail(__FILE__, __LINE__, "no copy of the victim's inode from before the delete");
}

// The file's bytes through `m` (no holes in these files).
std::vector<uint8_t> bytes_of(Reader& r, const ExtLayout& g, const BlockMap& m, uint64_t size) {
  std::vector<uint8_t> out((size + g.bs - 1) / g.bs * g.bs, 0);
  for (const auto& run : m.runs) r.read_at(out.data() + run.logical * g.bs, run.count * g.bs, run.physical * g.bs);
  out.resize(size);
  return out;
}

}  // namespace

TEST("jbd2 ext4 (metadata_csum, 64bit: v3 tags): the log agrees with logdump; an older inode copy maps the deleted file") {
  KernelJournal k("mkfs.ext4 -q", 40000);
  FileReader r = FileReader::open(k.d.img());
  JournalHistory h = read_and_cross_check(k, r);
  auto before = inode_before_delete(k, r, h);
  CHECK(le32(before.data() + 0x20) & 0x80000);  // extents
  BlockFetch disk = [&](uint64_t b, uint8_t* out) { return r.read_at(out, k.g.bs, b * k.g.bs) == k.g.bs; };
  const BlockMap m = map_inode_blocks(before.data(), k.g, disk, (k.original.size() + k.g.bs - 1) / k.g.bs);
  CHECK_EQ(m.problem, "");
  CHECK(bytes_of(r, k.g, m, k.original.size()) == k.original);
  // The same filesystem 1 MiB into an image (a partition): the same copies, 1 MiB further.
  k.d.sh("dd if=fs.img of=part.img bs=1M seek=1 status=none");
  FileReader pr = FileReader::open(k.d.path + "/part.img");
  ExtInfo pinfo = read_ext(pr, 1 << 20, pr.size() - (1 << 20));
  auto pinode8 = ext_image::raw_inode(pr, pinfo.layout, 8);
  const JournalHistory ph = read_journal(pr, pinfo.layout, pinode8.data(), "fs");
  CHECK_EQ(ph.transactions, h.transactions);
  CHECK_EQ(ph.copies.size(), h.copies.size());
  for (size_t i = 0; i < h.copies.size(); ++i) {
    CHECK_EQ(ph.copies[i].fs_block, h.copies[i].fs_block);
    CHECK_EQ(ph.copies[i].source_offset, h.copies[i].source_offset + (1 << 20));
  }
}

TEST("jbd2 ext3 (v2 tags, 32-bit): the log agrees with logdump; an older inode copy maps the deleted file through its indirect block") {
  KernelJournal k("mkfs.ext3 -q -b 1024", 300000);  // 293 blocks: direct, indirect, double indirect
  FileReader r = FileReader::open(k.d.img());
  JournalHistory h = read_and_cross_check(k, r);
  CHECK_EQ(k.d.out("dumpe2fs -h fs.img 2>/dev/null | grep -c 'journal_64bit\\|journal_checksum'"), "0\n");
  auto before = inode_before_delete(k, r, h);
  CHECK(le32(before.data() + 0x28 + 48) != 0);  // the IND pointer
  // Tree blocks: the newest journal copy (revoked ones too: a delete revokes
  // the indirect blocks it frees), else the block on disk.
  BlockFetch fetch = [&](uint64_t b, uint8_t* out) {
    for (const auto* v : {&h.copies, &h.revoked_copies}) {
      for (const auto& c : *v) {
        if (c.fs_block == b) return read_copy(r, h, c, out);
      }
    }
    return r.read_at(out, k.g.bs, b * k.g.bs) == k.g.bs;
  };
  const BlockMap m = map_inode_blocks(before.data(), k.g, fetch, (k.original.size() + k.g.bs - 1) / k.g.bs);
  CHECK_EQ(m.problem, "");
  CHECK_EQ(m.tree_blocks.size(), 3u);
  // The delete freed and revoked the three tree blocks: their only copies
  // are revoked ones, from the transaction that wrote the file.
  for (uint64_t t : m.tree_blocks) {
    CHECK(h.copies_of(t).empty());
    CHECK_EQ(std::count_if(h.revoked_copies.begin(), h.revoked_copies.end(), [&](const JournalCopy& c) { return c.fs_block == t; }), 1);
  }
  CHECK(bytes_of(r, k.g, m, k.original.size()) == k.original);
}

// ---- journals built by hand ----

namespace {

constexpr uint32_t kMagic = 0xC03B3998;
constexpr uint32_t k64 = 0x2, kCsum2 = 0x8, kCsum3 = 0x10;
constexpr uint16_t kEscape = 1, kSameUuid = 2, kLast = 8;

uint32_t be32_of(const std::vector<uint8_t>& b) {
  return (uint32_t(b[0]) << 24) | (uint32_t(b[1]) << 16) | (uint32_t(b[2]) << 8) | b[3];
}

// A 1 KiB-block filesystem whose journal inode maps log block i to
// filesystem block 1000 + i; the log blocks are written one by one.
struct Built {
  ExtLayout g;
  std::vector<uint8_t> img = std::vector<uint8_t>(2048 * 1024, 0);
  std::vector<uint8_t> inode8 = std::vector<uint8_t>(256, 0);
  uint32_t incompat;
  uint32_t seed = 0;
  static constexpr uint64_t kStart = 1000;

  explicit Built(uint32_t features, uint32_t maxlen = 16, uint32_t sequence = 100, uint64_t blocks = 2048)
      : incompat(features) {
    g.bs = 1024;
    g.blocks_count = blocks;
    g.first_data_block = 1;
    g.compat = kCompatHasJournal;
    g.named_inodes[0] = 8;
    put32(inode8.data() + 0x4, maxlen * 1024);
    put32(inode8.data() + 0x20, 0x80000);
    uint8_t* root = inode8.data() + 0x28;
    put16(root, 0xF30A);
    put16(root + 2, 1);
    put16(root + 4, 4);
    put32(root + 12, 0);
    put16(root + 16, static_cast<uint16_t>(maxlen));
    put32(root + 20, kStart);
    superblock(1, maxlen, sequence, 0);
  }
  uint8_t* log(uint64_t pos) { return img.data() + (kStart + pos) * 1024; }
  bool csum() const { return incompat & (kCsum2 | kCsum3); }
  size_t tag_bytes() const { return (incompat & kCsum3) ? 16 : 8 + ((incompat & k64) ? 4 : 0) + ((incompat & kCsum2) ? 2 : 0); }
  void sign(uint8_t* p, size_t field) {
    if (!csum()) return;
    put32be(p + field, 0);
    put32be(p + field, crc32c_update(seed, p, 1024));
  }
  void superblock(uint32_t first, uint32_t maxlen, uint32_t sequence, uint32_t start, uint32_t bs = 1024) {
    uint8_t* p = log(0);
    std::memset(p, 0, 1024);
    put32be(p, kMagic);
    put32be(p + 4, 4);
    put32be(p + 0xC, bs);
    put32be(p + 0x10, maxlen);
    put32be(p + 0x14, first);
    put32be(p + 0x18, sequence);
    put32be(p + 0x1C, start);
    put32be(p + 0x28, incompat);
    for (int i = 0; i < 16; ++i) p[0x30 + i] = static_cast<uint8_t>(0x40 + i);
    p[0x50] = 4;  // crc32c
    seed = crc32c_update(0xFFFFFFFF, p + 0x30, 16);
    if (csum()) put32be(p + 0xFC, crc32c_update(0xFFFFFFFF, p, 1024));
  }
  void header(uint8_t* p, uint32_t type, uint32_t seq) {
    std::memset(p, 0, 1024);
    put32be(p, kMagic);
    put32be(p + 4, type);
    put32be(p + 8, seq);
  }
  // Tags (block, extra flags); the UUID after the first, LAST_TAG on the last unless `last` is false.
  void descriptor(uint64_t pos, uint32_t seq, const std::vector<std::pair<uint64_t, uint16_t>>& tags, bool last = true) {
    uint8_t* p = log(pos);
    header(p, 1, seq);
    size_t off = 12;
    for (size_t i = 0; i < tags.size(); ++i) {
      uint8_t* t = p + off;
      const uint16_t flags = tags[i].second | (i ? kSameUuid : 0) | (last && i + 1 == tags.size() ? kLast : 0);
      put32be(t, static_cast<uint32_t>(tags[i].first));
      if (incompat & kCsum3) put32be(t + 4, flags);
      else put16be(t + 6, flags);
      if (incompat & k64) put32be(t + 8, static_cast<uint32_t>(tags[i].first >> 32));
      off += tag_bytes() + (i ? 0 : 16);
    }
    sign(p, 1020);
  }
  void data(uint64_t pos, uint8_t fill) { std::memset(log(pos), fill, 1024); }
  void commit(uint64_t pos, uint32_t seq) {
    header(log(pos), 2, seq);
    sign(log(pos), 16);
  }
  void revoke(uint64_t pos, uint32_t seq, const std::vector<uint64_t>& blocks, uint32_t count = 0) {
    uint8_t* p = log(pos);
    header(p, 5, seq);
    const size_t rec = (incompat & k64) ? 8 : 4;
    for (size_t i = 0; i < blocks.size(); ++i) {
      if (rec == 8) put32be(p + 16 + 8 * i, static_cast<uint32_t>(blocks[i] >> 32)), put32be(p + 20 + 8 * i, static_cast<uint32_t>(blocks[i]));
      else put32be(p + 16 + 4 * i, static_cast<uint32_t>(blocks[i]));
    }
    put32be(p + 12, count ? count : static_cast<uint32_t>(16 + rec * blocks.size()));
    sign(p, 1020);
  }
  JournalHistory read() {
    MemoryReader r(img.data(), img.size(), "built.img");
    return read_journal(r, g, inode8.data(), "fs");
  }
  std::string error() {
    try {
      read();
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find('\n') == std::string::npos);
      return e.code() + " " + e.what();
    }
    return "no error";
  }
  // Log block a copy lies in.
  static uint64_t log_block(const JournalCopy& c) { return c.source_offset / 1024 - kStart; }
  std::vector<uint8_t> copy(const JournalHistory& h, const JournalCopy& c) {
    MemoryReader r(img.data(), img.size(), "built.img");
    std::vector<uint8_t> out(1024);
    CHECK(read_copy(r, h, c, out.data()));
    return out;
  }
};

std::vector<std::pair<uint32_t, uint64_t>> seq_and_log(const JournalHistory& h, uint64_t block) {
  std::vector<std::pair<uint32_t, uint64_t>> v;
  for (const JournalCopy* c : h.copies_of(block)) v.push_back({c->sequence, Built::log_block(*c)});
  return v;
}

}  // namespace

TEST("jbd2 built: v3 64-bit tags, copies newest first, an escaped block gets its magic back") {
  Built j(k64 | kCsum3, 16, 102, uint64_t(1) << 33);
  const uint64_t high = (uint64_t(1) << 32) + 7;
  j.descriptor(1, 100, {{5, 0}, {high, kEscape}});
  j.data(2, 0x11);
  j.data(3, 0x22);
  put32be(j.log(3), 0);  // escaped: the magic was zeroed on write
  j.commit(4, 100);
  j.descriptor(5, 101, {{5, 0}});
  j.data(6, 0x33);
  j.commit(7, 101);
  JournalHistory h = j.read();
  CHECK_EQ(all_problems(h), "");
  CHECK_EQ(h.transactions, 2u);
  CHECK_EQ(h.oldest_sequence, 100u);
  CHECK_EQ(h.newest_sequence, 101u);
  CHECK(seq_and_log(h, 5) == (std::vector<std::pair<uint32_t, uint64_t>>{{101, 6}, {100, 2}}));
  CHECK(j.copy(h, *h.copies_of(5)[0]) == std::vector<uint8_t>(1024, 0x33));
  const auto esc = h.copies_of(high);
  CHECK_EQ(esc.size(), 1u);
  CHECK(esc[0]->escaped);
  auto bytes = j.copy(h, *esc[0]);
  CHECK_EQ(be32_of(bytes), kMagic);
  CHECK(std::all_of(bytes.begin() + 4, bytes.end(), [](uint8_t b) { return b == 0x22; }));
  // Without the 64bit feature the same tag bytes mean 8-byte tags: v2
  // 32-bit journals are read with their own tag size.
  Built v2(0, 16, 102);
  v2.descriptor(1, 100, {{5, 0}, {6, 0}, {7, 0}});
  v2.commit(5, 100);
  h = v2.read();
  CHECK_EQ(h.copies.size(), 3u);
  CHECK_EQ(Built::log_block(*h.copies_of(7)[0]), 4u);
}

TEST("jbd2 built: transactions that wrap from the last log block to s_first, in every order") {
  // Log blocks 1-15. (a) the commit after the wrap.
  Built a(kCsum2, 16, 60);
  a.descriptor(13, 50, {{300, 0}, {301, 0}});
  a.commit(1, 50);
  JournalHistory h = a.read();
  CHECK_EQ(all_problems(h), "");
  CHECK_EQ(h.transactions, 1u);
  CHECK_EQ(Built::log_block(*h.copies_of(301)[0]), 15u);
  // (b) the descriptor in the last block, its copies after the wrap.
  Built b(kCsum2, 16, 60);
  b.descriptor(15, 50, {{300, 0}, {301, 0}});
  b.commit(3, 50);
  h = b.read();
  CHECK_EQ(h.transactions, 1u);
  CHECK_EQ(Built::log_block(*h.copies_of(300)[0]), 1u);
  CHECK_EQ(Built::log_block(*h.copies_of(301)[0]), 2u);
  // (c) the commit in the last block, the next transaction from s_first.
  Built c(kCsum2, 16, 60);
  c.descriptor(12, 50, {{300, 0}, {301, 0}});
  c.commit(15, 50);
  c.descriptor(1, 51, {{300, 0}});
  c.commit(3, 51);
  h = c.read();
  CHECK_EQ(h.transactions, 2u);
  CHECK(seq_and_log(h, 300) == (std::vector<std::pair<uint32_t, uint64_t>>{{51, 2}, {50, 13}}));
  // (d) one transaction with a descriptor on each side of the wrap.
  Built d(kCsum2, 16, 60);
  d.descriptor(14, 50, {{300, 0}});
  d.descriptor(1, 50, {{301, 0}});
  d.commit(3, 50);
  h = d.read();
  CHECK_EQ(h.transactions, 1u);
  CHECK_EQ(h.copies.size(), 2u);
  CHECK_EQ(Built::log_block(*h.copies_of(300)[0]), 15u);
  CHECK_EQ(Built::log_block(*h.copies_of(301)[0]), 2u);
  // Without its commit block the same transaction does not count.
  d.data(3, 0);
  h = d.read();
  CHECK_EQ(h.transactions, 0u);
  CHECK(h.copies.empty());
  CHECK_EQ(all_problems(h), "");
}

TEST("jbd2 built: a revoke drops the older copies, not the newer; an unfinished transaction is ignored") {
  Built j(0, 16, 13);
  j.descriptor(1, 10, {{400, 0}});
  j.data(2, 0xA1);
  j.commit(3, 10);
  j.revoke(4, 11, {400, 999});
  j.descriptor(5, 11, {{401, 0}});
  j.commit(7, 11);
  j.descriptor(8, 12, {{400, 0}});
  j.data(9, 0xA2);
  j.commit(10, 12);
  j.descriptor(11, 13, {{400, 0}});  // no commit: the journal's next, unfinished
  j.data(12, 0xA3);
  JournalHistory h = j.read();
  CHECK_EQ(all_problems(h), "");
  CHECK_EQ(h.transactions, 3u);
  CHECK(seq_and_log(h, 400) == (std::vector<std::pair<uint32_t, uint64_t>>{{12, 9}}));
  CHECK_EQ(h.revoked, 1u);
  CHECK_EQ(h.revoked_copies.size(), 1u);
  CHECK_EQ(h.revoked_copies[0].sequence, 10u);
  CHECK(j.copy(h, h.revoked_copies[0]) == std::vector<uint8_t>(1024, 0xA1));
  // 64-bit revoke records.
  Built w(k64, 16, 13);
  w.descriptor(1, 10, {{400, 0}});
  w.commit(3, 10);
  w.revoke(4, 11, {400});
  w.commit(5, 11);
  h = w.read();
  CHECK_EQ(h.transactions, 2u);
  CHECK(h.copies.empty());
  CHECK_EQ(h.revoked, 1u);
}

TEST("jbd2 built: hostile logs give problems, never a crash or a hang") {
  {  // Tags past the end of the block (no LAST_TAG): ignored, the next transaction still read.
    Built j(0, 16, 30);
    std::vector<std::pair<uint64_t, uint16_t>> tags(126, {5, 0});
    j.descriptor(1, 20, tags, false);
    j.descriptor(8, 21, {{6, 0}});
    j.commit(10, 21);
    JournalHistory h = j.read();
    CHECK(has_problem(h, "the descriptor block at log block 1 (transaction 20) has tags past the end of its block (no last tag)"));
    CHECK_EQ(h.transactions, 1u);
    CHECK(h.copies_of(5).empty());
  }
  {  // More copies than the log has blocks.
    Built j(kCsum3, 16, 30);
    std::vector<std::pair<uint64_t, uint16_t>> tags(20, {5, 0});
    j.descriptor(1, 20, tags);
    JournalHistory h = j.read();
    CHECK(has_problem(h, "names 20 copies, more than the log holds"));
    CHECK_EQ(h.transactions, 0u);
  }
  {  // Two descriptors of one sequence pointing at each other round the log: a cycle.
    Built j(0, 16, 30);
    j.descriptor(1, 7, std::vector<std::pair<uint64_t, uint16_t>>(6, {5, 0}));
    j.descriptor(8, 7, std::vector<std::pair<uint64_t, uint16_t>>(7, {5, 0}));
    JournalHistory h = j.read();
    CHECK(has_problem(h, "the journal blocks from log block 1 (transaction 7) form a cycle; ignored"));
    CHECK_EQ(h.transactions, 0u);
  }
  {  // One sequence twice: neither counts; another transaction does.
    Built j(0, 16, 30);
    j.descriptor(1, 20, {{5, 0}});
    j.commit(3, 20);
    j.descriptor(4, 20, {{6, 0}});
    j.commit(6, 20);
    j.descriptor(7, 21, {{7, 0}});
    j.commit(9, 21);
    JournalHistory h = j.read();
    CHECK(has_problem(h, "the transaction 20 is in the log twice"));
    CHECK_EQ(h.transactions, 1u);
    CHECK_EQ(h.copies.size(), 1u);
    CHECK_EQ(h.copies[0].fs_block, 7u);
  }
  {  // A revoke block claiming more record bytes than the block: its transaction does not count.
    Built j(0, 16, 31);
    j.revoke(1, 30, {5}, 5000);
    j.descriptor(2, 30, {{6, 0}});
    j.commit(4, 30);
    JournalHistory h = j.read();
    CHECK(has_problem(h, "the revoke block at log block 1 (transaction 30) claims 5000 bytes of records, more than its block holds"));
    CHECK_EQ(h.transactions, 0u);
  }
  {  // A tag naming a block outside the filesystem; a descriptor failing its checksum; a stale future sequence.
    Built j(kCsum3, 16, 40);
    j.descriptor(1, 30, {{5000, 0}});
    j.commit(3, 30);
    j.descriptor(4, 31, {{6, 0}});
    j.commit(6, 31);
    j.log(4)[40] ^= 1;
    j.descriptor(7, 90, {{7, 0}});
    j.commit(9, 90);
    j.descriptor(10, 32, {{8, 0}});
    j.commit(12, 32);
    JournalHistory h = j.read();
    CHECK(has_problem(h, "the descriptor block at log block 1 (transaction 30) names block 5000, outside the filesystem's 2048 blocks"));
    CHECK(has_problem(h, "the descriptor block at log block 4 (transaction 31) fails its checksum"));
    CHECK(has_problem(h, "the transaction 90 at log block 7 is newer than the journal's next, 40 (left from an earlier journal); ignored"));
    CHECK_EQ(h.transactions, 1u);
    CHECK_EQ(h.newest_sequence, 32u);
    CHECK_EQ(h.copies.size(), 1u);
  }
  {  // A transaction whose first descriptor is unusable: none of it counts, and that is no cycle.
    Built j(0, 16, 40);
    j.descriptor(1, 33, {{5000, 0}});
    j.descriptor(3, 33, {{6, 0}});
    j.commit(5, 33);
    JournalHistory h = j.read();
    CHECK_EQ(all_problems(h), "[the descriptor block at log block 1 (transaction 33) names block 5000, outside the filesystem's 2048 blocks] ");
    CHECK_EQ(h.transactions, 0u);
  }
  {  // A commit block failing its checksum: the transaction is not committed.
    Built j(kCsum2, 16, 40);
    j.descriptor(1, 30, {{5, 0}});
    j.commit(3, 30);
    j.log(3)[100] = 1;
    JournalHistory h = j.read();
    CHECK(has_problem(h, "the commit block at log block 3 (transaction 30) fails its checksum"));
    CHECK_EQ(h.transactions, 0u);
  }
}

TEST("jbd2 built: an unusable journal superblock is one ERR_FS_CORRUPT line; no journal is not an error") {
  Built j(kCsum3, 16, 40);
  j.superblock(1, 17, 40, 0);  // one block longer than the inode
  CHECK_EQ(j.error(), "ERR_FS_CORRUPT 'built.img': fs: the journal log (s_first 1, s_maxlen 17) lies outside its inode's 16 blocks");
  j.superblock(0, 16, 40, 0);
  CHECK(j.error().find("lies outside its inode's 16 blocks") != std::string::npos);
  j.superblock(1, 16, 40, 0, 4096);
  CHECK_EQ(j.error(), "ERR_FS_CORRUPT 'built.img': fs: the journal block size is 4096, not the filesystem's 1024");
  j.superblock(1, 16, 40, 0);
  j.log(0)[0x18] ^= 1;  // the sequence changed after the checksum
  CHECK_EQ(j.error(), "ERR_FS_CORRUPT 'built.img': fs: the journal superblock's checksum does not match");
  j.log(0)[0] = 0;
  CHECK(j.error().find("has no jbd2 magic") != std::string::npos);
  put32(j.inode8.data() + 4, 0);
  CHECK_EQ(j.error(), "ERR_FS_CORRUPT 'built.img': fs: the journal inode has no log (0 bytes)");
  put32(j.inode8.data() + 4, 4000u << 10);
  CHECK(j.error().find("claims 4000 blocks, more than the filesystem's 2048") != std::string::npos);
  j.g.compat = 0;
  CHECK(!j.read().present);
}

TEST("jbd2 built: random damage to a journal's blocks gives problems or one-line errors, copies inside the log") {
  for (uint32_t seed = 1; seed <= 2000; ++seed) {
    Built j(seed % 3 == 0 ? (k64 | kCsum3) : seed % 3 == 1 ? 0u : kCsum2, 16, 13);
    j.descriptor(1, 10, {{400, 0}, {401, kEscape}});
    j.commit(4, 10);
    j.revoke(5, 11, {400});
    j.descriptor(6, 11, {{402, 0}});
    j.commit(8, 11);
    j.descriptor(9, 12, {{400, 0}, {403, 0}, {404, 0}, {405, 0}, {406, 0}});
    j.commit(15, 12);
    auto rnd = test_bytes::random_bytes(64, seed);
    for (int k = 0; k < 8; ++k) {
      const uint64_t pos = rnd[k] % 16;
      j.log(pos)[rnd[8 + k] % 64 + (rnd[16 + k] % 4) * 256] = rnd[24 + k];
    }
    if (seed % 5 == 0) put32be(j.log(1 + rnd[40] % 15) + 12, rnd[41] * 50u);  // revoke count / tag noise
    try {
      JournalHistory h = j.read();
      CHECK(h.transactions <= 3);
      for (const auto* v : {&h.copies, &h.revoked_copies}) {
        for (const auto& c : *v) {
          CHECK(Built::log_block(c) >= 1 && Built::log_block(c) < 16);
          CHECK(c.fs_block < 2048);
        }
      }
    } catch (const Error& e) {
      CHECK_EQ(e.code(), std::string("ERR_FS_CORRUPT"));
      CHECK(std::string(e.what()).find('\n') == std::string::npos);
    }
  }
}

TEST("jbd2 ext3 data=journal, a 1024-block log the kernel wrapped: the transaction across the wrap is read whole, as jls lists the log") {
  ImageDir d;
  d.sh("truncate -s 32M fs.img && mkfs.ext3 -q -F -J size=1 fs.img && mkdir mnt && mount -o loop,data=journal fs.img mnt");
  d.mounted = true;
  // 8 x 147 blocks of data logged: more than the log holds, so it wraps.
  d.sh("for i in 1 2 3 4 5 6 7 8; do head -c 150000 /dev/urandom > mnt/f$i; sync; done; rm mnt/f1 mnt/f2; sync");
  d.umount();
  FileReader r = FileReader::open(d.img());
  ExtInfo info = read_ext(r, 0, r.size());
  const ExtLayout& g = info.layout;
  auto inode8 = ext_image::raw_inode(r, g, 8);
  JournalHistory h = read_journal(r, g, inode8.data(), "fs");
  CHECK_EQ(all_problems(h), "");
  CHECK_EQ(h.log_blocks, 1024u);
  // jls (sleuthkit): every log block with its type; FS blocks after a
  // descriptor as far as the log's end (it does not follow the wrap).
  std::istringstream in(d.out("jls fs.img"));
  std::string line;
  std::set<uint32_t> committed;
  std::map<uint32_t, std::vector<uint64_t>> descs;  // sequence -> its descriptor blocks' log blocks
  std::map<uint32_t, uint64_t> commits;             // sequence -> its commit block's
  std::set<std::tuple<uint32_t, uint64_t, uint64_t>> listed;  // sequence, fs block, log block
  uint32_t seq = 0;
  while (std::getline(in, line)) {
    unsigned long long at = 0, fs = 0;
    unsigned s = 0;
    char kind[32] = {0};
    if (std::sscanf(line.c_str(), "%llu:\t%31s", &at, kind) != 2) continue;
    const auto desc = line.find("Descriptor Block (seq: "), commit = line.find("Commit Block (seq: "), fsb = line.find("FS Block ");
    if (desc != std::string::npos && std::sscanf(line.c_str() + desc, "Descriptor Block (seq: %u", &s) == 1) {
      seq = s;
      descs[s].push_back(at);
    } else if (commit != std::string::npos && std::sscanf(line.c_str() + commit, "Commit Block (seq: %u", &s) == 1) {
      committed.insert(s);
      commits[s] = at;
    } else if (fsb != std::string::npos && std::sscanf(line.c_str() + fsb, "FS Block %llu", &fs) == 1) {
      listed.insert({seq, fs, at});
    }
  }
  CHECK(committed.size() >= 8);
  CHECK_EQ(h.transactions, committed.size());
  CHECK_EQ(h.oldest_sequence, *committed.begin());
  CHECK_EQ(h.newest_sequence, *committed.rbegin());
  const auto mine = copies_with_log_blocks(r, g, h);
  for (const auto& e : listed) {
    if (committed.count(std::get<0>(e))) CHECK(mine.count(e));
  }
  // The transaction with a descriptor after its commit in the log: it
  // starts there and wraps. Every block from that descriptor round the end
  // of the log to the commit is one of its copies, but its descriptors.
  uint32_t wrapped = 0;
  for (const auto& [s, c] : commits) {
    if (descs.count(s) && descs[s].back() > c) wrapped = s;
  }
  CHECK(wrapped != 0);
  const uint64_t first = descs[wrapped].back(), commit = commits[wrapped];
  const uint64_t span = commit + 1023 - first;  // log blocks 1-1023
  uint64_t copies = 0, low = 0;
  for (const auto& [s, fs, at] : mine) {
    if (s != wrapped) continue;
    ++copies;
    if (at < first) ++low;
  }
  CHECK_EQ(copies, span - descs[wrapped].size());
  CHECK(low > 0);
}
