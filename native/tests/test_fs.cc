// sparsify --fs building blocks: checksums against known vectors, the
// pipeline's free ranges (never read, delivered as on_free, off the grid),
// MBR/GPT parsing with hostile tables, ext superblocks that must be refused.
#include <cstring>
#include <vector>

#include "core/sinks/counting_sink.h"
#include "core/sinks/extent_map_sink.h"
#include "core/guest_fs/checksum.h"
#include "core/guest_fs/ext.h"
#include "core/guest_fs/inspect.h"
#include "core/guest_fs/partition.h"
#include "core/readers/memory_reader.h"
#include "core/sinks/punch_sink.h"
#include "core/pipeline/scan_pipeline.h"
#include "core/guest_fs/ext_read_steps.h"
#include "test.h"

using namespace blocksmith;
using namespace blocksmith::fs;

namespace {

void put16(uint8_t* p, uint16_t v) { p[0] = v & 0xff; p[1] = v >> 8; }
void put32(uint8_t* p, uint32_t v) { for (int i = 0; i < 4; ++i) p[i] = (v >> (8 * i)) & 0xff; }
void put64(uint8_t* p, uint64_t v) { put32(p, static_cast<uint32_t>(v)); put32(p + 4, static_cast<uint32_t>(v >> 32)); }

struct Recorder final : Sink {
  std::vector<Extent> ext;
  uint64_t free_bytes = 0;
  void add(uint64_t o, uint64_t l, ExtentKind k) { ext.push_back({o, l, k}); }
  void on_hole(uint64_t o, uint64_t l) override { add(o, l, ExtentKind::hole); }
  void on_zero(uint64_t o, uint64_t l) override { add(o, l, ExtentKind::zero); }
  void on_free(uint64_t o, uint64_t l) override { free_bytes += l; add(o, l, static_cast<ExtentKind>(3)); }
  void on_data(uint64_t o, const uint8_t*, size_t l) override {
    if (!ext.empty() && ext.back().kind == ExtentKind::data && ext.back().offset + ext.back().length == o) ext.back().length += l;
    else add(o, l, ExtentKind::data);
  }
};

std::ostream& operator<<(std::ostream& os, const std::vector<Extent>& v) {
  for (const auto& e : v) os << "{" << e.offset << "," << e.length << "," << int(e.kind) << "}";
  return os;
}

}  // namespace

TEST("crc16 (ARC), crc32c and crc32 match the standard check values") {
  const char* s = "123456789";
  CHECK_EQ(crc16_update(0, s, 9), 0xBB3D);
  CHECK_EQ(~crc32c_update(~0u, s, 9), 0xE3069283u);
  CHECK_EQ(crc32(s, 9), 0xCBF43926u);
}

TEST("free ranges are never read, arrive as on_free, and split blocks off the grid") {
  const size_t bs = 4096;
  std::vector<uint8_t> buf(bs * 16, 0xEE);  // all non-zero
  MemoryReader r(buf.data(), buf.size());
  FreeMap fm;
  fm.add(bs * 2 + 1024, bs * 5);  // starts mid-block
  fm.add(bs * 5, bs * 6);         // touches: merged
  fm.add(bs * 10, bs * 16);       // to the end
  fm.normalize();
  CHECK_EQ(fm.ranges().size(), 2u);
  r.faults = {{bs * 2 + 1024, bs * 6}, {bs * 10, bs * 16}};  // reading them fails the test
  ScanOptions opt;
  opt.chunk_size = bs * 2;
  opt.free = &fm;
  Recorder rec;
  Control control;
  run_scan(r, opt, rec, control);
  std::vector<Extent> expected = {{0, bs * 2 + 1024, ExtentKind::data},
                                  {bs * 2 + 1024, bs * 4 - 1024, static_cast<ExtentKind>(3)},
                                  {bs * 6, bs * 4, ExtentKind::data},
                                  {bs * 10, bs * 6, static_cast<ExtentKind>(3)}};
  CHECK_EQ(rec.ext, expected);
  CHECK_EQ(rec.free_bytes, bs * 10 - 1024);
}

TEST("a free range over a hole stays a hole; CountingSink counts free apart") {
  const size_t bs = 4096;
  std::vector<uint8_t> buf(bs * 8, 0);
  MemoryReader r(buf.data(), buf.size());
  r.holes = {{0, bs * 4}};
  FreeMap fm;
  fm.add(bs * 2, bs * 6);
  fm.normalize();
  ScanOptions opt;
  opt.free = &fm;
  CountingSink counted(nullptr);
  Control control;
  run_scan(r, opt, counted, control);
  CHECK_EQ(counted.totals().hole, bs * 4);
  CHECK_EQ(counted.free_bytes(), bs * 2);
  CHECK_EQ(counted.totals().zero, bs * 2);
}

static std::vector<uint8_t> mbr_image(size_t size) {
  std::vector<uint8_t> img(size, 0);
  img[510] = 0x55;
  img[511] = 0xAA;
  return img;
}
static void mbr_entry(uint8_t* sector, int i, uint8_t type, uint32_t start, uint32_t count) {
  uint8_t* e = sector + 446 + 16 * i;
  e[4] = type;
  put32(e + 8, start);
  put32(e + 12, count);
}

TEST("MBR: primaries and a logical chain are listed with Linux numbers") {
  auto img = mbr_image(1 << 20);
  mbr_entry(img.data(), 0, 0x83, 2048 / 8, 128);
  mbr_entry(img.data(), 1, 0x05, 1024, 1024);
  uint8_t* ebr1 = img.data() + 1024 * 512;
  ebr1[510] = 0x55; ebr1[511] = 0xAA;
  mbr_entry(ebr1, 0, 0x83, 1, 100);
  mbr_entry(ebr1, 1, 0x05, 200, 300);
  uint8_t* ebr2 = img.data() + (1024 + 200) * 512;
  ebr2[510] = 0x55; ebr2[511] = 0xAA;
  mbr_entry(ebr2, 0, 0x07, 2, 50);
  MemoryReader r(img.data(), img.size());
  auto t = read_partition_table(r, 512);
  CHECK_EQ(t.scheme, std::string("mbr"));
  CHECK_EQ(t.partitions.size(), 3u);
  CHECK_EQ(t.partitions[1].number, 5u);
  CHECK_EQ(t.partitions[1].offset, 1025u * 512);
  CHECK_EQ(t.partitions[2].number, 6u);
  CHECK_EQ(t.partitions[2].offset, (1024u + 200 + 2) * 512);
  CHECK_EQ(t.partitions[2].type, std::string("0x07"));
}

TEST("MBR: a looping logical chain, overlaps and out-of-image EBRs are refused") {
  auto img = mbr_image(1 << 20);
  mbr_entry(img.data(), 0, 0x05, 1024, 1024);
  uint8_t* ebr = img.data() + 1024 * 512;
  ebr[510] = 0x55; ebr[511] = 0xAA;
  mbr_entry(ebr, 0, 0x83, 1, 10);
  mbr_entry(ebr, 1, 0x05, 0 + 1, 10);  // next EBR at ext_start + 1 ...
  uint8_t* ebr2 = img.data() + 1025 * 512;
  ebr2[510] = 0x55; ebr2[511] = 0xAA;
  mbr_entry(ebr2, 1, 0x05, 0, 10);  // start 0 ends the chain: make it loop instead
  put32(ebr2 + 446 + 16 + 8, 0);
  mbr_entry(ebr2, 1, 0x05, 1, 10);  // ... which points to itself
  MemoryReader r(img.data(), img.size());
  CHECK_THROWS_CODE(read_partition_table(r, 512), "ERR_FS_CORRUPT");

  auto img2 = mbr_image(1 << 20);
  mbr_entry(img2.data(), 0, 0x83, 100, 200);
  mbr_entry(img2.data(), 1, 0x83, 250, 200);
  MemoryReader r2(img2.data(), img2.size());
  CHECK_THROWS_CODE(read_partition_table(r2, 512), "ERR_FS_CORRUPT");

  auto img3 = mbr_image(1 << 20);
  mbr_entry(img3.data(), 0, 0x05, 100000, 10);  // EBR past the end
  MemoryReader r3(img3.data(), img3.size());
  CHECK_THROWS_CODE(read_partition_table(r3, 512), "ERR_FS_CORRUPT");
}

static void write_gpt_header(std::vector<uint8_t>& img, uint64_t lba, uint64_t alt, uint64_t entries_lba,
                             const std::vector<uint8_t>& entries) {
  uint8_t* h = img.data() + lba * 512;
  std::memset(h, 0, 512);
  std::memcpy(h, "EFI PART", 8);
  put32(h + 8, 0x00010000);
  put32(h + 12, 92);
  put64(h + 24, lba);
  put64(h + 32, alt);
  put64(h + 40, 34);                    // first usable LBA
  put64(h + 48, img.size() / 512 - 34);  // last usable LBA
  put64(h + 72, entries_lba);
  put32(h + 80, 128);
  put32(h + 84, 128);
  put32(h + 88, crc32(entries.data(), entries.size()));
  put32(h + 16, crc32(h, 92));
  std::memcpy(img.data() + entries_lba * 512, entries.data(), entries.size());
}

// A protective MBR and both GPT headers with one partition "r" (LBAs first..last).
static std::vector<uint8_t> one_partition_gpt(size_t sectors, uint64_t first, uint64_t last) {
  auto img = mbr_image(sectors * 512);
  mbr_entry(img.data(), 0, 0xEE, 1, static_cast<uint32_t>(sectors - 1));
  std::vector<uint8_t> entries(128 * 128, 0);
  entries[0] = 0xAF;  // a non-zero type GUID
  put64(entries.data() + 32, first);
  put64(entries.data() + 40, last);
  put16(entries.data() + 56, 'r');
  write_gpt_header(img, 1, sectors - 1, 2, entries);
  write_gpt_header(img, sectors - 1, 1, sectors - 33, entries);
  return img;
}

TEST("GPT: entries read; a corrupt primary falls back to the backup; both corrupt is refused") {
  const size_t sectors = 4096;
  auto img = one_partition_gpt(sectors, 2048, 3071);
  {
    MemoryReader r(img.data(), img.size());
    auto t = read_partition_table(r, 512);
    CHECK_EQ(t.scheme, std::string("gpt"));
    CHECK_EQ(t.partitions.size(), 1u);
    CHECK_EQ(t.partitions[0].offset, 2048u * 512);
    CHECK_EQ(t.partitions[0].length, 1024u * 512);
    CHECK_EQ(t.partitions[0].name, std::string("r"));
    CHECK(!t.gpt_backup_used);
  }
  img[2 * 512 + 40] ^= 1;  // primary entry array corrupt
  {
    MemoryReader r(img.data(), img.size());
    auto t = read_partition_table(r, 512);
    CHECK(t.gpt_backup_used);
    CHECK_EQ(t.partitions[0].length, 1024u * 512);
  }
  img[(sectors - 1) * 512 + 30] ^= 1;  // backup header corrupt too
  MemoryReader r(img.data(), img.size());
  CHECK_THROWS_CODE(read_partition_table(r, 512), "ERR_FS_CORRUPT");
}

TEST("GPT: a partition over the GPT's own entry array is refused") {
  auto img = one_partition_gpt(4096, 2, 3071);  // over the primary entries
  MemoryReader r(img.data(), img.size());
  CHECK_THROWS_CODE(read_partition_table(r, 512), "ERR_FS_CORRUPT");
}

TEST("MBR: a logical partition covering the next EBR is refused") {
  auto img = mbr_image(1 << 20);
  mbr_entry(img.data(), 0, 0x05, 1024, 1024);
  uint8_t* ebr1 = img.data() + 1024 * 512;
  ebr1[510] = 0x55; ebr1[511] = 0xAA;
  mbr_entry(ebr1, 0, 0x83, 1, 500);  // sectors 1025..1524 ...
  mbr_entry(ebr1, 1, 0x05, 200, 300);  // ... cover the next EBR at 1224
  uint8_t* ebr2 = img.data() + (1024 + 200) * 512;
  ebr2[510] = 0x55; ebr2[511] = 0xAA;
  mbr_entry(ebr2, 0, 0x83, 400, 50);
  MemoryReader r(img.data(), img.size());
  CHECK_THROWS_CODE(read_partition_table(r, 512), "ERR_FS_CORRUPT");
}

TEST("ext: hostile superblocks are refused, never parsed out of bounds") {
  std::vector<uint8_t> img(64 * 1024, 0);
  uint8_t* sb = img.data() + 1024;
  put16(sb + 0x38, 0xEF53);
  put16(sb + 0x3A, 1);
  put32(sb + 0x04, 1000000);  // far larger than the image
  put32(sb + 0x18, 0);
  put32(sb + 0x14, 1);
  put32(sb + 0x20, 8192);
  put32(sb + 0x28, 128);
  MemoryReader r(img.data(), img.size());
  CHECK(probe_ext(r, 0, img.size()));
  CHECK_THROWS_CODE(read_ext(r, 0, img.size()), "ERR_FS_CORRUPT");
  put32(sb + 0x04, 64);
  put32(sb + 0x60, 0x80000);  // unknown incompat
  CHECK_THROWS_CODE(read_ext(r, 0, img.size()), "ERR_FS_UNSUPPORTED");
  put32(sb + 0x60, 0x4);  // needs_recovery
  CHECK_THROWS_CODE(read_ext(r, 0, img.size()), "ERR_FS_DIRTY");
  put32(sb + 0x60, 0);
  put16(sb + 0x3A, 0);  // not clean
  CHECK_THROWS_CODE(read_ext(r, 0, img.size()), "ERR_FS_DIRTY");
  put16(sb + 0x3A, 1);
  put32(sb + 0x08 + 0xE0, 0);
  put32(sb + 0x20, 0);  // zero blocks per group
  CHECK_THROWS_CODE(read_ext(r, 0, img.size()), "ERR_FS_CORRUPT");
  // Every truncation of a plausible superblock fails cleanly.
  put32(sb + 0x20, 8192);
  for (size_t cut : {0, 1000, 1500, 2047}) {
    MemoryReader t(img.data(), cut);
    try {
      read_ext(t, 0, cut);
    } catch (const Error&) {
    }
  }
}

namespace {
// A huge image that is zeros but for its first bytes (a sparse file as a
// reader: nothing past the head is stored).
class HeadOnlyReader final : public Reader {
 public:
  HeadOnlyReader(std::vector<uint8_t> head, uint64_t size) : head_(std::move(head)), size_(size) {}
  uint64_t size() const override { return size_; }
  const std::string& path() const override { return path_; }
  size_t read_at(void* buf, size_t len, uint64_t off) override {
    if (off >= size_) return 0;
    len = static_cast<size_t>(std::min<uint64_t>(len, size_ - off));
    std::memset(buf, 0, len);
    if (off < head_.size()) std::memcpy(buf, head_.data() + off, std::min<size_t>(len, head_.size() - off));
    return len;
  }

 private:
  std::vector<uint8_t> head_;
  uint64_t size_;
  std::string path_ = "huge.img";
};
}  // namespace

TEST("ext: a superblock claiming billions of groups is refused before anything is allocated") {
  // 16 TiB of 4 KiB blocks in groups of 8 blocks: 2^29 groups, a 32 GiB
  // descriptor table. The image really is that large (sparse), so the
  // size check passes and only the memory bound can stop it.
  std::vector<uint8_t> head(64 * 1024, 0);
  uint8_t* sb = head.data() + 1024;
  put16(sb + 0x38, 0xEF53);
  put16(sb + 0x3A, 1);        // clean
  put32(sb + 0x18, 2);        // 4 KiB blocks
  put32(sb + 0x14, 0);        // first data block
  put32(sb + 0x20, 8);        // blocks per group
  put32(sb + 0x28, 8);        // inodes per group
  put32(sb + 0x04, 0);        // blocks count: 2^32 (lo 0, hi 1)
  put32(sb + 0x150, 1);
  put32(sb + 0x60, 0xC0);     // incompat: 64bit, extent
  put16(sb + 0xFE, 64);       // descriptor size
  HeadOnlyReader r(head, uint64_t(1) << 44);
  CHECK(probe_ext(r, 0, r.size()));
  CHECK_THROWS_CODE(read_ext(r, 0, r.size()), "ERR_FS_UNSUPPORTED");
  try {
    read_ext(r, 0, r.size());
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("536870912 block groups") != std::string::npos);
  }
}

static void reseal_gpt_header(std::vector<uint8_t>& img, uint64_t lba) {
  uint8_t* h = img.data() + lba * 512;
  put32(h + 16, 0);
  put32(h + 16, crc32(h, 92));
}

TEST("GPT: a partition past the end of the image is cut there and marked truncated; an entry array past the end falls back to the backup") {
  const size_t sectors = 4096;
  auto img = one_partition_gpt(sectors, 2048, 4 * sectors);  // the disk was larger than this image
  for (uint64_t lba : {uint64_t(1), uint64_t(sectors - 1)}) {
    put64(img.data() + lba * 512 + 48, 8 * sectors);  // last usable LBA as on the larger disk
    reseal_gpt_header(img, lba);
  }
  {
    MemoryReader r(img.data(), img.size());
    auto t = read_partition_table(r, 512);
    CHECK_EQ(t.partitions.size(), 1u);
    CHECK(t.partitions[0].truncated);
    CHECK_EQ(t.partitions[0].offset, 2048u * 512);
    CHECK_EQ(t.partitions[0].length, (sectors - 2048) * 512);
  }
  put64(img.data() + 512 + 72, 10 * sectors);  // the primary's entry array: past the end
  reseal_gpt_header(img, 1);
  {
    MemoryReader r(img.data(), img.size());
    auto t = read_partition_table(r, 512);
    CHECK(t.gpt_backup_used);
    CHECK(t.partitions[0].truncated);
  }
  put64(img.data() + (sectors - 1) * 512 + 72, uint64_t(1) << 60);  // and the backup's, far past it
  reseal_gpt_header(img, sectors - 1);
  MemoryReader r(img.data(), img.size());
  CHECK_THROWS_CODE(read_partition_table(r, 512), "ERR_FS_CORRUPT");
}

TEST("PunchSink: what the punches free is the run's allocated bytes inside the aligned range, dry run included") {
  // A run of zeros [1024, 8192), a hole [8192, 16384), zeros [16384, 22384), then data: punched [4096, 20480) of
  // which [8192, 16384) was a hole already; the unaligned slivers at both ends stay.
  PunchSink sink(-1, "dry.img", 4096, false, true);
  sink.on_zero(1024, 7168);
  sink.on_hole(8192, 8192);
  sink.on_free(16384, 6000);  // free in a filesystem counts as allocated zeros
  std::vector<uint8_t> data(4096, 1);
  sink.on_data(22384, data.data(), data.size());
  // A run reaching the end of the file frees its last partial block too.
  sink.on_zero(26480, 5000);
  sink.on_end(31480);
  CHECK_EQ(sink.stats().punch_calls, 2u);
  CHECK_EQ(sink.stats().punched_bytes, 16384u + (31480u - 28672u));
  CHECK_EQ(sink.stats().reclaimed_bytes, 4096u + 4096u + (31480u - 28672u));
}

namespace {
// A clean ext2 superblock: 1 KiB blocks, 16384 blocks in 2 groups of 8192,
// 128 inodes of 128 bytes per group (revision 0).
std::vector<uint8_t> small_ext2_superblock() {
  std::vector<uint8_t> sb(1024, 0);
  put32(&sb[0x00], 256);    // inodes
  put32(&sb[0x04], 16384);  // blocks
  put32(&sb[0x14], 1);      // first data block
  put32(&sb[0x18], 0);      // 1 KiB blocks
  put32(&sb[0x20], 8192);   // blocks per group
  put32(&sb[0x28], 128);    // inodes per group
  put16(&sb[0x38], 0xEF53);
  put16(&sb[0x3A], 1);      // clean
  return sb;
}

template <typename F>
std::string error_message(F fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST("ext superblock check: the geometry of a sound superblock, each bad field refused by name") {
  auto sb = small_ext2_superblock();
  ExtLayout g;
  CHECK_EQ(check_ext_superblock(sb.data(), 4096, 16 << 20, "x.img", "fs", g), 0u);  // no metadata_csum: no seed
  CHECK_EQ(g.offset, 4096u);
  CHECK_EQ(g.bs, 1024u);
  CHECK_EQ(g.groups, 2u);
  CHECK_EQ(g.desc_size, 32u);
  CHECK_EQ(g.descs_per_block, 32u);
  CHECK_EQ(g.desc_blocks, 1u);
  CHECK_EQ(g.itable_blocks, 16u);
  CHECK_EQ(g.first_ino, 11u);
  CHECK_EQ(g.inode_size, 128u);
  CHECK(g.descs.empty());  // read_group_descriptors' job

  auto message = [&](auto&& edit) {
    auto bad = small_ext2_superblock();
    edit(bad.data());
    ExtLayout l;
    return error_message([&] { check_ext_superblock(bad.data(), 0, 16 << 20, "x.img", "fs", l); });
  };
  CHECK_EQ(message([](uint8_t* s) { put32(s + 0x00, 255); }),
           std::string("'x.img': fs: bad inode count (255 inodes, 128 per group in 2 groups)"));
  CHECK_EQ(message([](uint8_t* s) { put32(s + 0x04, 16385); }),
           std::string("'x.img': fs is 16385 blocks of 1024 bytes, larger than the 16777216 bytes available "
                       "(truncated image or wrong partition table)"));
  CHECK_EQ(message([](uint8_t* s) { put32(s + 0x20, 8191); }), std::string("'x.img': fs: bad blocks per group"));
  CHECK_EQ(message([](uint8_t* s) { put32(s + 0x14, 0); }), std::string("'x.img': fs: bad first data block"));
  CHECK_EQ(message([](uint8_t* s) { put16(s + 0xCE, 7); }),
           std::string("'x.img': fs has 7 reserved GDT blocks but no resize_inode, which e2fsck rejects; run e2fsck -f on it first"));
  CHECK_EQ(message([](uint8_t* s) { put16(s + 0x3A, 3); }),
           std::string("'x.img': fs was not cleanly unmounted or has errors (s_state 0x3); run e2fsck on it first"));
  CHECK_EQ(message([](uint8_t* s) { put32(s + 0x64, 0x400); }),  // metadata_csum over a zero checksum
           std::string("'x.img': fs uses an unknown checksum type 0"));
  CHECK_EQ(message([](uint8_t* s) { put32(s + 0x64, 0x800); }),
           std::string("'x.img': fs uses replica (ro_compat 0x800), which blocksmith does not support"));
}

TEST("ext group descriptors: read from the block after the superblock; a changed byte fails its uninit_bg checksum") {
  auto sb = small_ext2_superblock();
  put32(&sb[0x64], kRoGdtCsum);
  for (int i = 0; i < 16; ++i) sb[0x68 + i] = uint8_t(0xA0 + i);  // UUID: seeds the checksums
  std::vector<uint8_t> img(16384 * 1024, 0);
  std::memcpy(&img[1024], sb.data(), sb.size());
  uint8_t* table = &img[2 * 1024];  // block 2: first data block 1 + 1
  for (uint32_t grp = 0; grp < 2; ++grp) {
    uint8_t* d = table + grp * 32;
    put32(d + 0x0, 3 + grp * 8192);  // block bitmap
    put32(d + 0x4, 4 + grp * 8192);  // inode bitmap
    put32(d + 0x8, 5 + grp * 8192);  // inode table
    const uint8_t group_le[4] = {uint8_t(grp), 0, 0, 0};
    uint16_t c = crc16_update(0xFFFF, &sb[0x68], 16);
    c = crc16_update(c, group_le, 4);
    c = crc16_update(c, d, 0x1E);
    put16(d + 0x1E, c);
  }
  MemoryReader r(img.data(), img.size(), "x.img");
  ExtLayout g;
  check_ext_superblock(sb.data(), 0, img.size(), "x.img", "fs", g);
  read_group_descriptors(r, g, img.size(), "fs");
  CHECK_EQ(g.descs.size(), 64u);
  CHECK_EQ(g.block_bitmap(1), 8195u);
  CHECK_EQ(g.inode_table(0), 5u);
  check_group_descriptors(g, sb.data(), 0, "x.img", "fs");
  g.descs[32 + 0x0C] ^= 1;  // group 1's free block count
  CHECK_EQ(error_message([&] { check_group_descriptors(g, sb.data(), 0, "x.img", "fs"); }),
           std::string("'x.img': fs: bad checksum of group descriptor 1"));
  // A table that would lie past the end of the partition is refused.
  CHECK_THROWS_CODE(read_group_descriptors(r, g, 2 * 1024 + 512, "fs"), "ERR_FS_CORRUPT");
}

TEST("ext free ranges from a bitmap: clear bits become byte ranges, cut at the filesystem's end") {
  ExtLayout g;
  g.offset = 4096;
  g.bs = 1024;
  g.ratio = 1;
  g.first_data_block = 1;
  g.blocks_count = 10;                         // the group's last cluster lies past it
  const uint8_t bitmap[2] = {0x47, 0x00};      // clusters 0, 1, 2 and 6 used; 3-5 and 7-9 free
  std::vector<ByteRange> out;
  CHECK_EQ(free_ranges_from_bitmap(bitmap, 10, 0, g, out, "x.img", "fs"), 6u);
  CHECK_EQ(out.size(), 2u);
  CHECK_EQ(out[0].begin, 4096u + 4 * 1024);
  CHECK_EQ(out[0].end, 4096u + 7 * 1024);
  CHECK_EQ(out[1].begin, 4096u + 8 * 1024);
  CHECK_EQ(out[1].end, 4096u + 10 * 1024);  // block 10 would be past the last
  // Bigalloc: 4 blocks a cluster, the group's first cluster number counts.
  g.ratio = 4;
  g.first_data_block = 0;
  g.blocks_count = 1000;
  out.clear();
  const uint8_t one_free[1] = {0xFD};  // cluster 1 of 8 free
  CHECK_EQ(free_ranges_from_bitmap(one_free, 8, 16, g, out, "x.img", "fs"), 1u);
  CHECK_EQ(out.size(), 1u);
  CHECK_EQ(out[0].begin, 4096u + 17 * 4 * 1024);
  CHECK_EQ(out[0].end, 4096u + 18 * 4 * 1024);
}
