// FAT12/16/32 reader for undelete (guest_fs/fat*.cc): real volumes made by
// mkfs.fat and mtools (as the users make them: files with long
// names, nested directories, mdel and mdeltree), read back by read_fat; every
// deleted file's plan is read from the image and compared byte for byte with
// the original, with its name, size and mtime. Then hostile volumes: BPB
// fields out of range, a FAT past the end, a chain loop, a directory cycle.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/guest_fs/fat_boot.h"
#include "core/guest_fs/fat_dir.h"
#include "core/guest_fs/volume_files.h"
#include "core/readers/memory_reader.h"
#include "test.h"

using namespace blocksmith;
using namespace blocksmith::fs;

namespace {

struct FatDir {
  std::string path;
  FatDir() {
    char t[] = "/tmp/blocksmith-fat-XXXXXX";
    path = mkdtemp(t);
  }
  ~FatDir() { std::system(("rm -rf '" + path + "'").c_str()); }
  // Runs a shell command in the directory; mtools writes FAT local time, so
  // TZ=UTC makes the stored times the UTC times the tests expect.
  void sh(const std::string& cmd) const {
    const std::string full = "cd '" + path + "' && export MTOOLS_SKIP_CHECK=1 TZ=UTC && { " + cmd + "; } >/dev/null 2>&1";
    if (std::system(full.c_str()) != 0) coretest::fail(__FILE__, __LINE__, "command failed: " + cmd);
  }
  std::vector<uint8_t> read(const std::string& name) const {
    std::ifstream f(path + "/" + name, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
  }
  // A file of `size` random bytes with mtime `when` (UTC, even seconds: FAT keeps 2 s).
  void make(const std::string& name, size_t size, const char* when = "2021-03-04 05:06:08") const {
    sh("head -c " + std::to_string(size) + " /dev/urandom > '" + name + "' && touch -d '" + when + " UTC' '" + name + "'");
  }
};

int64_t utc(int y, int mo, int d, int h, int mi, int s) {
  std::tm t{};
  t.tm_year = y - 1900;
  t.tm_mon = mo - 1;
  t.tm_mday = d;
  t.tm_hour = h;
  t.tm_min = mi;
  t.tm_sec = s;
  return timegm(&t);
}

const DeletedFile* find(const VolumeFiles& v, const std::string& path) {
  for (const auto& f : v.deleted) {
    if (f.path == path) return &f;
  }
  return nullptr;
}

const DeletedFile& must_find(const VolumeFiles& v, const std::string& path) {
  const DeletedFile* f = find(v, path);
  if (!f) {
    std::string all;
    for (const auto& d : v.deleted) all += " '" + d.path + "'";
    coretest::fail(__FILE__, __LINE__, "no deleted '" + path + "' among" + all);
  }
  return *f;
}

// The bytes a plan points at, read from the image.
std::vector<uint8_t> recover(const std::vector<uint8_t>& img, const DeletedFile& f) {
  std::vector<uint8_t> out;
  for (const auto& e : f.extents) {
    if (e.end > img.size() || e.begin > e.end) coretest::fail(__FILE__, __LINE__, "extent outside the image");
    out.insert(out.end(), img.begin() + e.begin, img.begin() + e.end);
  }
  return out;
}

bool overlaps(const FreeMap& m, uint64_t b, uint64_t e) {
  for (const auto& r : m.ranges()) {
    if (r.begin < e && b < r.end) return true;
  }
  return false;
}

VolumeFiles read_image(const std::vector<uint8_t>& img, uint64_t offset = 0) {
  MemoryReader r(img.data(), img.size(), "card.img");
  CHECK(probe_fat(r, offset, img.size() - offset));
  return read_fat(r, offset, img.size() - offset);
}

std::string error_of(const std::vector<uint8_t>& img) {
  MemoryReader r(img.data(), img.size(), "card.img");
  try {
    read_fat(r, 0, img.size());
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find('\n') == std::string::npos);
    return e.code() + " " + e.what();
  }
  return "no error";
}

bool has_problem(const VolumeFiles& v, const std::string& part) {
  for (const auto& p : v.problems) {
    if (p.find(part) != std::string::npos) return true;
  }
  return false;
}

void put16(uint8_t* p, uint16_t v) { p[0] = v & 0xff; p[1] = v >> 8; }
uint16_t get16(const uint8_t* p) { return p[0] | (p[1] << 8); }

}  // namespace

TEST("FAT12 floppy: a file deleted after a delete-and-rewrite is taken around the live clusters it skipped") {
  FatDir d;
  d.make("A", 3000);
  d.make("B", 3000);
  d.make("C", 3000);
  d.make("D", 9000, "2022-07-08 09:10:12");
  d.sh("truncate -s 1440K f.img && mkfs.fat -F 12 -n TESTVOL f.img");
  // D fills B's hole (6 clusters of 512 bytes) and continues after C.
  d.sh("mcopy -m -i f.img A ::a.bin && mcopy -m -i f.img B '::Long Name B.bin' && mcopy -m -i f.img C ::c.bin");
  d.sh("mdel -i f.img '::Long Name B.bin' && mcopy -m -i f.img D '::d file.dat' && mdel -i f.img '::d file.dat'");
  auto img = d.read("f.img");
  VolumeFiles v = read_image(img);
  CHECK_EQ(v.filesystem, "fat12");
  CHECK_EQ(v.label, "TESTVOL");
  CHECK_EQ(v.cluster_size, 512u);
  CHECK_EQ(v.live_files, 2u);
  CHECK(v.problems.empty());
  const DeletedFile& df = must_find(v, "d file.dat");
  CHECK(df.status == DeletedStatus::recoverable);
  CHECK(df.rule == Recovery::skip_live_clusters);
  CHECK_EQ(df.size, 9000u);
  CHECK_EQ(df.extents.size(), 2u);  // B's hole, then after C
  CHECK(recover(img, df) == d.read("D"));
  CHECK(df.times.modified.known && df.times.modified.local_time);
  CHECK_EQ(df.times.modified.seconds, utc(2022, 7, 8, 9, 10, 12));
  CHECK_EQ(df.times.accessed.seconds, utc(2022, 7, 8, 0, 0, 0));
  // B's long name slots went to D: its 8.3 entry is left, first letter lost.
  const DeletedFile& b = must_find(v, "_ONGNA~1.BIN");
  CHECK_EQ(b.size, 3000u);
  CHECK_EQ(b.first_cluster, df.first_cluster);
  // D, written later into B's clusters, holds them: B is overwritten.
  CHECK(b.status == DeletedStatus::overwritten);
  CHECK_EQ(b.overwritten_bytes, 3000u);
  // Live files are allocated, the deleted file's clusters free.
  CHECK(!v.free.empty());
  for (const auto& e : df.extents) CHECK(!overlaps(v.allocated, e.begin, e.end) && overlaps(v.free, e.begin, e.end));
  CHECK_EQ(v.allocated.ranges().front().begin, 0u);
  CHECK_EQ(v.allocated.total() + v.free.total(), v.data_offset + v.cluster_count * v.cluster_size);
}

TEST("FAT16: a deleted directory tree (mdeltree) is walked: long names, full paths, exact bytes and mtimes") {
  FatDir d;
  d.make("P1", 70000, "2020-01-02 03:04:06");
  d.make("P2", 5000, "2020-01-02 03:04:10");
  d.make("P3", 1, "2019-12-31 23:59:58");
  d.make("K", 4000);
  d.sh("truncate -s 16M f.img && mkfs.fat -F 16 f.img");
  d.sh("mmd -i f.img ::DCIM ::DCIM/100CANON ::keep && mcopy -m -i f.img P1 '::DCIM/100CANON/Holiday Photo 001.jpg'");
  d.sh("mcopy -m -i f.img P2 '::DCIM/100CANON/Día de playa.JPG' && mcopy -m -i f.img P3 ::DCIM/NOTE.TXT");
  d.sh("mcopy -m -i f.img K ::keep/k.bin && mcopy -m -i f.img P2 ::keep/gone.bin && mdel -i f.img ::keep/gone.bin");
  d.sh("mdeltree -i f.img ::DCIM");
  auto img = d.read("f.img");
  VolumeFiles v = read_image(img);
  CHECK_EQ(v.filesystem, "fat16");
  CHECK(v.problems.empty());
  CHECK_EQ(v.live_files, 1u);
  CHECK_EQ(v.live_directories, 1u);
  // Directories have no long name here (upper-case 8.3): their first letter is lost.
  const DeletedFile& dcim = must_find(v, "_CIM");
  CHECK(dcim.directory && !dcim.parent_deleted && dcim.status == DeletedStatus::recoverable);
  const DeletedFile& canon = must_find(v, "_CIM/_00CANON");
  CHECK(canon.directory && canon.parent_deleted);
  const DeletedFile& p1 = must_find(v, "_CIM/_00CANON/Holiday Photo 001.jpg");
  CHECK(p1.parent_deleted && p1.status == DeletedStatus::recoverable);
  CHECK(recover(img, p1) == d.read("P1"));
  CHECK_EQ(p1.times.modified.seconds, utc(2020, 1, 2, 3, 4, 6));
  const DeletedFile& p2 = must_find(v, "_CIM/_00CANON/D\xc3\xad" "a de playa.JPG");
  CHECK(recover(img, p2) == d.read("P2"));
  CHECK_EQ(p2.times.modified.seconds, utc(2020, 1, 2, 3, 4, 10));
  const DeletedFile& p3 = must_find(v, "_CIM/_OTE.TXT");  // no long name: the first letter is lost
  CHECK(recover(img, p3) == d.read("P3"));
  CHECK_EQ(p3.times.modified.seconds, utc(2019, 12, 31, 23, 59, 58));
  const DeletedFile& gone = must_find(v, "keep/_one.bin");
  CHECK(!gone.parent_deleted);
  CHECK(recover(img, gone) == d.read("P2"));
}

TEST("FAT32: the first cluster's high word is kept; a file on an MBR partition has source offsets") {
  FatDir d;
  d.make("X", 20000, "2023-05-06 07:08:10");
  d.make("Y", 3000);
  // 34 MB of zeros first: the deleted file starts past cluster 65535.
  d.sh("truncate -s 40M f.img && mkfs.fat -F 32 -s 1 -n CARD f.img && head -c 34000000 /dev/zero > big");
  d.sh("mmd -i f.img ::a ::a/b && mcopy -i f.img big ::big && mcopy -m -i f.img X '::a/b/x long name.bin'");
  d.sh("mcopy -m -i f.img Y ::a/y.bin && mdel -i f.img '::a/b/x long name.bin'");
  d.sh("truncate -s 1M card && cat f.img >> card && truncate -s +1M card && printf '2048,81920,c\\n' | sfdisk -q card");
  auto img = d.read("card");
  VolumeFiles v = read_image(img, 1 << 20);
  CHECK_EQ(v.filesystem, "fat32");
  CHECK_EQ(v.label, "CARD");
  CHECK_EQ(v.offset, uint64_t(1) << 20);
  CHECK(v.problems.empty());
  const DeletedFile& x = must_find(v, "a/b/x long name.bin");
  CHECK(x.first_cluster > 65535);
  CHECK(x.status == DeletedStatus::recoverable);
  CHECK(x.extents.front().begin > (uint64_t(1) << 20) + 34000000);
  CHECK(recover(img, x) == d.read("X"));
  CHECK_EQ(x.times.modified.seconds, utc(2023, 5, 6, 7, 8, 10));
  CHECK(v.allocated.ranges().front().begin == (uint64_t(1) << 20));
  MemoryReader r(img.data(), img.size());
  CHECK(!probe_fat(r, 0, img.size()));  // the MBR is not a FAT boot sector
}

TEST("FAT16: a deleted file whose first clusters a later file took is reported overwritten, with the bytes lost") {
  FatDir d;
  d.make("X", 10000);
  d.make("Y", 3000);
  d.sh("truncate -s 16M f.img && mkfs.fat -F 16 -s 4 f.img");  // 2 KiB clusters
  // y's three directory slots do not fit in x's one: x's entry survives; y's clusters are x's first two.
  d.sh("mcopy -m -i f.img X ::x.bin && mcopy -m -i f.img Y ::z.bin && mdel -i f.img ::x.bin");
  d.sh("mcopy -m -i f.img Y '::y long name.bin'");
  auto img = d.read("f.img");
  VolumeFiles v = read_image(img);
  const DeletedFile& x = must_find(v, "_.bin");
  CHECK(x.status == DeletedStatus::overwritten);
  CHECK_EQ(x.overwritten_bytes, 4096u);  // y.bin's 2 clusters
  CHECK_EQ(x.size, 10000u);
}

TEST("FAT: hostile boot sectors are refused with one line naming the field and its value") {
  FatDir d;
  d.sh("truncate -s 4M f.img && mkfs.fat -F 16 -s 1 f.img");
  const auto good = d.read("f.img");
  auto img = good;
  put16(&img[11], 0);
  CHECK_EQ(error_of(img), "ERR_FS_CORRUPT 'card.img' at byte 0: FAT boot sector: bytes per sector 0 is not 512, 1024, 2048 or 4096");
  img = good;
  img[13] = 3;
  CHECK_EQ(error_of(img), "ERR_FS_CORRUPT 'card.img' at byte 0: FAT boot sector: sectors per cluster 3 is not a power of two");
  img = good;
  put16(&img[22], 40000);  // FAT size past the end of the volume
  CHECK_EQ(error_of(img).rfind("ERR_FS_CORRUPT 'card.img' at byte 0: FAT boot sector: FAT size 40000 sectors x 2 FATs", 0), 0u);
  img = good;
  put16(&img[19], 20000);  // total sectors past the end
  CHECK_EQ(error_of(img), "ERR_FS_CORRUPT 'card.img' at byte 0: FAT boot sector: total sectors 20000 (10240000 bytes) extend past the end of the volume (4194304 bytes)");
  img = good;
  img[510] = 0;
  CHECK_EQ(error_of(img).rfind("ERR_FS_UNSUPPORTED", 0), 0u);
  MemoryReader r(img.data(), img.size());
  CHECK(!probe_fat(r, 0, img.size()));
}

TEST("FAT: a cluster chain loop and a directory cycle are cut short and recorded, never followed forever") {
  FatDir d;
  d.make("L", 5000);
  d.sh("truncate -s 4M f.img && mkfs.fat -F 16 -s 1 f.img && mmd -i f.img ::SUBA ::SUBA/SUBB && mcopy -i f.img L ::LOOP.BIN");
  auto img = d.read("f.img");
  const uint32_t bps = get16(&img[11]), reserved = get16(&img[14]), fatsz = get16(&img[22]), root = get16(&img[17]);
  const uint64_t fat = uint64_t(reserved) * bps, root_off = fat + 2ull * fatsz * bps;
  const uint64_t data = root_off + root * 32ull;
  auto entry = [&](uint64_t dir, const char* name) -> uint8_t* {
    for (uint64_t o = dir;; o += 32) {
      if (std::memcmp(&img[o], name, 11) == 0) return &img[o];
      if (img[o] == 0) coretest::fail(__FILE__, __LINE__, std::string("no entry ") + name);
    }
  };
  // LOOP.BIN's last cluster points back at its first.
  const uint16_t first = get16(entry(root_off, "LOOP    BIN") + 26);
  put16(&img[fat + 2 * (first + 9)], first);
  // SUBB's first cluster is its parent's.
  const uint16_t suba = get16(entry(root_off, "SUBA       ") + 26);
  put16(entry(data + uint64_t(suba - 2) * bps, "SUBB       ") + 26, suba);
  VolumeFiles v = read_image(img);
  CHECK(has_problem(v, "LOOP.BIN: cluster " + std::to_string(first) + " is already in use"));
  CHECK(has_problem(v, "SUBA/SUBB: directory cycle"));
}

TEST("FAT 8.3 names: padding off, code page 437, the 0x05 stand-in for 0xE5, NT's lower-case flags, a lost first letter") {
  auto name = [](const char* stored, uint8_t flags = 0, bool lost = false) {
    return short_name(reinterpret_cast<const uint8_t*>(stored), flags, lost);
  };
  CHECK_EQ(name("README  TXT"), "README.TXT");
  CHECK_EQ(name("MAKEFILE   "), "MAKEFILE");  // no extension: no dot
  CHECK_EQ(name("README  TXT", 0x08), "readme.TXT");
  CHECK_EQ(name("README  TXT", 0x10), "README.txt");
  CHECK_EQ(name("README  TXT", 0x18), "readme.txt");
  CHECK_EQ(name("\x05" "BC     DAT"), "\xcf\x83" "BC.DAT");   // 0xE5 is sigma in code page 437
  CHECK_EQ(name("\x81" "BER    TXT"), "\xc3\xbc" "BER.TXT");  // 0x81 is u-umlaut
  CHECK_EQ(name("\xe5" "EADME  TXT", 0, true), "_EADME.TXT");
}

TEST("FAT long names: the checksum mtools writes, and a deleted 8.3 name's first letter restored from it") {
  FatDir d;
  d.make("X", 100);
  d.sh("truncate -s 1440K f.img && mkfs.fat -F 12 f.img && mcopy -i f.img X ::Quarter.pdf && "
       "mcopy -i f.img X '::Keep me.bin' && mdel -i f.img ::Quarter.pdf");
  auto img = d.read("f.img");
  const uint64_t root = (uint64_t(get16(&img[14])) + 2ull * get16(&img[22])) * get16(&img[11]);
  // The deleted name: one long-name part (0x0F), then the 8.3 entry, both
  // starting with 0xE5 now.
  const uint8_t* part = &img[root];
  const uint8_t* entry = &img[root + 32];
  CHECK_EQ(int(part[0]), 0xE5);
  CHECK_EQ(int(part[11]), int(kAttrLongName));
  CHECK_EQ(int(entry[0]), 0xE5);
  CHECK_EQ(std::string(reinterpret_cast<const char*>(entry) + 1, 10), "UARTER PDF");
  CHECK_EQ(int(restore_first_char(entry, part[13])), int('Q'));
  uint8_t name[11];
  std::memcpy(name, entry, 11);
  name[0] = 'Q';
  CHECK_EQ(int(lfn_checksum(name)), int(part[13]));
  // 'Keep me.bin': its live part and its 8.3 entry agree too.
  CHECK_EQ(std::string(reinterpret_cast<const char*>(&img[root + 96]), 11), "KEEPME~1BIN");
  CHECK_EQ(int(lfn_checksum(&img[root + 96])), int(img[root + 64 + 13]));
  // Only one first byte gives a checksum: when that byte cannot start an
  // 8.3 name (lower case here), nothing is restored.
  std::memcpy(name, "aBC     TXT", 11);
  CHECK_EQ(int(restore_first_char(name, lfn_checksum(name))), 0);
}

TEST("FAT type by cluster count (fatgen103 boundaries) and the FAT size each type needs") {
  CHECK_EQ(fat_bits_for(1), 12);
  CHECK_EQ(fat_bits_for(4084), 12);
  CHECK_EQ(fat_bits_for(4085), 16);
  CHECK_EQ(fat_bits_for(65524), 16);
  CHECK_EQ(fat_bits_for(65525), 32);
  CHECK_EQ(fat_bytes_needed(12, 4084), 6129u);  // 4086 entries of 1.5 bytes, rounded up
  CHECK_EQ(fat_bytes_needed(12, 3), 8u);
  CHECK_EQ(fat_bytes_needed(16, 4085), 8174u);
  CHECK_EQ(fat_bytes_needed(32, 65525), 262108u);
}

TEST("FAT boot sector fields: each check names its field and value, and a good sector gives its geometry") {
  FatDir d;
  d.sh("truncate -s 4M f16.img && mkfs.fat -F 16 -s 1 -n BOOTS f16.img && truncate -s 40M f32.img && mkfs.fat -F 32 f32.img");
  const auto f16 = d.read("f16.img"), f32 = d.read("f32.img");
  auto check = [](std::vector<uint8_t> img, uint64_t length, const std::function<void(uint8_t*)>& edit) {
    edit(img.data());
    FatGeometry g;
    const FatBootCheck c = check_fat_boot(img.data(), 0, length, g);
    return std::string(c.code) + " " + c.message;
  };
  const uint64_t l16 = f16.size(), l32 = f32.size();
  FatGeometry g;
  CHECK_EQ(check_fat_boot(f16.data(), 1000, l16, g).message, "");
  CHECK_EQ(g.bits, 16);
  CHECK_EQ(g.label, "BOOTS");
  CHECK_EQ(g.fat_offset, 1000 + uint64_t(get16(&f16[14])) * 512);
  CHECK_EQ(g.data_offset, g.root_offset + get16(&f16[17]) * 32ull);
  CHECK_EQ(g.cluster_offset(2), g.data_offset);
  CHECK_EQ(check(f16, l16, [](uint8_t* b) { put16(b + 14, 0); }),
           "ERR_FS_CORRUPT FAT boot sector: reserved sector count 0 (the boot sector itself is reserved)");
  CHECK_EQ(check(f16, l16, [](uint8_t* b) { b[16] = 17; }), "ERR_FS_CORRUPT FAT boot sector: number of FATs 17 is not 1..16");
  CHECK_EQ(check(f16, l16, [](uint8_t* b) { put16(b + 17, 0); }),
           "ERR_FS_CORRUPT FAT boot sector: FAT12/16 layout with 0 root directory entries");
  CHECK_EQ(check(f16, l16, [](uint8_t* b) { b[32] = 1; }),
           "ERR_FS_CORRUPT FAT boot sector: total sectors given twice and different (8192, 1)");
  CHECK_EQ(check(f16, l16, [](uint8_t* b) { b[0] = 0; }),
           "ERR_FS_UNSUPPORTED no FAT boot sector (jump instruction or 0x55AA signature missing)");
  CHECK_EQ(check_fat_boot(f32.data(), 0, l32, g).message, "");
  CHECK_EQ(g.bits, 32);
  CHECK_EQ(g.root_cluster, 2u);
  CHECK_EQ(check(f32, l32, [](uint8_t* b) { put16(b + 42, 0x0102); }),
           "ERR_FS_UNSUPPORTED FAT32 version 1.2 (only 0.0 exists)");
  CHECK_EQ(check(f32, l32, [](uint8_t* b) { put16(b + 17, 512); }),
           "ERR_FS_CORRUPT FAT boot sector: FAT32 layout with 512 fixed root entries (must be 0)");
  CHECK_EQ(check(f32, l32, [](uint8_t* b) { b[44] = 1; }).rfind("ERR_FS_CORRUPT FAT boot sector: root cluster 1 is not a data cluster (2..", 0), 0u);
}
