// The exFAT reader (guest_fs/exfat*.cc) against real volumes: mkfs.exfat
// formats them, exfat-fuse writes and deletes files through a loop device
// (as root, exfat-fuse asks for a block device), and read_exfat must list
// every deleted file with the name, size and mtime it had, and plan extents
// whose bytes are the original bytes. Hostile volumes are real ones with
// one field changed: a one-line error or a recorded problem, never a crash
// or a hang.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/guest_fs/bytes.h"
#include "core/guest_fs/exfat_boot.h"
#include "core/guest_fs/exfat_dir.h"
#include "core/guest_fs/volume_files.h"
#include "core/readers/file_reader.h"
#include "core/readers/memory_reader.h"
#include "test.h"

using namespace blocksmith;
using namespace blocksmith::fs;

namespace {

std::string q(const std::string& s) { return "'" + s + "'"; }

void sh(const std::string& cmd) {
  if (std::system(cmd.c_str()) != 0) coretest::fail(__FILE__, __LINE__, "command failed: " + cmd);
}

std::string out_of(const std::string& cmd) {
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[256];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    ::pclose(p);
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::vector<uint8_t> slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

void spill(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/blocksmith-exfat-XXXXXX";
    if (!::mkdtemp(tmpl)) coretest::fail(__FILE__, __LINE__, "mkdtemp failed");
    path = tmpl;
  }
  ~TempDir() { std::system(("rm -rf " + q(path)).c_str()); }
};

// An exFAT volume inside an image file at `offset`, mounted with exfat-fuse
// through a loop device until unmount() (or destruction).
struct Mounted {
  std::string loop, dir;
  Mounted(const std::string& img, uint64_t offset, uint64_t size, const std::string& mnt) : dir(mnt) {
    // losetup -f races with other users of loop devices: retry.
    for (int attempt = 0; attempt < 5 && loop.empty(); ++attempt) {
      loop = out_of("losetup -f --show -o " + std::to_string(offset) + " --sizelimit " + std::to_string(size) + " " +
                    q(img) + " 2>/dev/null");
      if (loop.empty()) ::usleep(200000);
    }
    if (loop.empty()) coretest::fail(__FILE__, __LINE__, "losetup failed on " + img);
    sh("mkdir -p " + q(dir) + " && mount.exfat-fuse " + loop + " " + q(dir) + " >/dev/null 2>&1");
  }
  void unmount() {
    if (loop.empty()) return;
    std::system(("umount " + q(dir) + " 2>/dev/null; losetup -d " + loop).c_str());
    loop.clear();
  }
  ~Mounted() { unmount(); }
};

// A file written into the volume, as stat saw it before it was deleted.
struct Original {
  std::string path;  // inside the volume
  std::vector<uint8_t> bytes;
  int64_t mtime = 0;
};

int64_t mtime_of(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) coretest::fail(__FILE__, __LINE__, "stat " + path);
  return st.st_mtim.tv_sec;
}

const DeletedFile* find(const VolumeFiles& v, const std::string& path) {
  for (const auto& f : v.deleted) {
    if (f.path == path) return &f;
  }
  return nullptr;
}

// The bytes the plan points at, read from the image.
std::vector<uint8_t> plan_bytes(const std::vector<uint8_t>& image, const DeletedFile& f) {
  std::vector<uint8_t> out;
  for (const auto& e : f.extents) {
    if (e.end > image.size() || e.begin > e.end) coretest::fail(__FILE__, __LINE__, f.path + ": extent outside the image");
    out.insert(out.end(), image.begin() + e.begin, image.begin() + e.end);
  }
  // Past ValidDataLength the file reads as zeros, whatever the clusters hold.
  if (f.valid_size < out.size()) std::fill(out.begin() + f.valid_size, out.end(), 0);
  return out;
}

// The files every real-volume test writes: long and non-ASCII names, nested
// directories, a large file, an empty one; then deletes some and a tree.
struct Card {
  TempDir tmp;
  std::string img = tmp.path + "/card.img";
  std::vector<Original> deleted;
  uint64_t offset, size;

  Card(uint64_t volume_offset, uint64_t volume_size) : offset(volume_offset), size(volume_size) {
    // Formatted apart, then placed at `offset` behind random bytes, so an
    // offset mistake cannot read zeros and pass.
    const std::string vol = tmp.path + "/volume";
    sh("truncate -s " + std::to_string(size) + " " + q(vol) + " && mkfs.exfat -c 4K -L CARD " + q(vol) + " >/dev/null");
    sh("head -c " + std::to_string(offset) + " /dev/urandom > " + q(img) + " && cat " + q(vol) + " >> " + q(img) +
       " && rm " + q(vol));
  }

  // Writes `size` random bytes to `rel` in the mounted volume with mtime `when`.
  void put(const std::string& mnt, const std::string& rel, size_t bytes, const char* when) {
    const std::string src = tmp.path + "/src";
    sh("head -c " + std::to_string(bytes) + " /dev/urandom > " + q(src) + " && cp " + q(src) + " " + q(mnt + "/" + rel) +
       " && touch -d " + q(when) + " " + q(mnt + "/" + rel));
  }
  void remember(const std::string& mnt, const std::string& rel) {
    deleted.push_back({rel, slurp(mnt + "/" + rel), mtime_of(mnt + "/" + rel)});
  }
};

void check_recovered(const VolumeFiles& v, const std::vector<uint8_t>& image, const Original& o) {
  const DeletedFile* f = find(v, o.path);
  if (!f) coretest::fail(__FILE__, __LINE__, "deleted file not listed: " + o.path);
  CHECK_EQ(f->size, o.bytes.size());
  CHECK(f->times.modified.known);
  CHECK_EQ(f->times.modified.seconds, o.mtime);
  if (o.bytes.empty()) {
    CHECK(f->status == DeletedStatus::empty);
    CHECK(f->extents.empty());
    return;
  }
  CHECK(f->status == DeletedStatus::recoverable);
  CHECK(plan_bytes(image, *f) == o.bytes);
}

VolumeFiles read_image(const std::string& img, uint64_t offset, uint64_t size) {
  FileReader r = FileReader::open(img);
  return read_exfat(r, offset, size);
}

// Rewrites the boot checksum (sector 11) after a field was changed, so the
// field's own check is what refuses the volume.
void fix_boot_checksum(std::vector<uint8_t>& img) {
  const uint32_t ss = 1u << img[108];
  const uint32_t sum = exfat_boot_checksum(img.data(), ss);
  for (uint32_t i = 0; i < ss; i += 4) std::memcpy(&img[11 * ss + i], &sum, 4);
}

void put32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }

// Where an entry of the root lies: the first 32-byte entry of type `type`.
size_t root_entry(const std::vector<uint8_t>& img, uint8_t type) {
  const uint32_t ss = 1u << img[108], cs = ss << img[109];
  const uint64_t heap = uint64_t(le32(&img[88])) * ss, root = le32(&img[96]);
  const size_t at = heap + (root - 2) * cs;
  for (size_t e = at; e < at + cs; e += 32) {
    if (img[e] == type) return e;
  }
  coretest::fail(__FILE__, __LINE__, "no root entry of that type");
}

std::string error_of(const std::vector<uint8_t>& img) {
  MemoryReader r(img.data(), img.size(), "hostile.img");
  try {
    read_exfat(r, 0, img.size());
  } catch (const Error& e) {
    CHECK_EQ(e.code(), std::string("ERR_FS_CORRUPT"));
    CHECK(std::string(e.what()).find('\n') == std::string::npos);
    return e.what();
  }
  return "";
}

// A freshly formatted 4 MiB volume (4 KiB clusters) holding one directory
// with a file, as bytes.
std::vector<uint8_t> small_volume() {
  TempDir tmp;
  const std::string img = tmp.path + "/v.img";
  sh("truncate -s 4M " + q(img) + " && mkfs.exfat -c 4K " + q(img) + " >/dev/null");
  Mounted m(img, 0, 4 << 20, tmp.path + "/m");
  sh("mkdir " + q(m.dir + "/sub") + " && head -c 10000 /dev/urandom > " + q(m.dir + "/sub/f"));
  m.unmount();
  return slurp(img);
}

}  // namespace

TEST("exfat: deleted files and a deleted tree are listed with names, sizes, mtimes, and their exact bytes") {
  Card card(0, 16 << 20);
  {
    Mounted m(card.img, 0, card.size, card.tmp.path + "/m");
    const std::string& d = m.dir;
    sh("mkdir -p " + q(d + "/DCIM/100CANON/deeper") + " " + q(d + "/keep/sub"));
    card.put(d, "A rather long file name, with spaces — and ünïcödé (2021).jpg", 70000, "2021-03-04 05:06:07");
    card.put(d, "keep/sub/live.txt", 3000, "2020-01-01 00:00:00");
    card.put(d, "big.bin", 3 << 20, "2019-12-31 23:59:59");
    card.put(d, "DCIM/100CANON/IMG_0001.JPG", 50000, "2018-06-15 12:00:00");
    card.put(d, "DCIM/100CANON/deeper/IMG_0002.JPG", 120000, "2018-06-15 12:00:01");
    card.put(d, "empty", 0, "2017-01-02 03:04:05");
    m.unmount();
  }
  {
    // Stat from a fresh mount: what the volume stores, not exfat-fuse's cache.
    Mounted m(card.img, 0, card.size, card.tmp.path + "/m");
    for (const char* rel : {"A rather long file name, with spaces — and ünïcödé (2021).jpg", "big.bin",
                            "DCIM/100CANON/IMG_0001.JPG", "DCIM/100CANON/deeper/IMG_0002.JPG", "empty"}) {
      card.remember(m.dir, rel);
    }
    sh("cd " + q(m.dir) + " && rm " + q(card.deleted[0].path) + " big.bin empty && rm -r DCIM");
    m.unmount();
  }
  const VolumeFiles v = read_image(card.img, 0, card.size);
  const auto image = slurp(card.img);
  CHECK_EQ(v.filesystem, std::string("exfat"));
  CHECK_EQ(v.label, std::string("CARD"));
  CHECK_EQ(v.cluster_size, 4096u);
  CHECK(v.problems.empty());
  CHECK_EQ(v.live_files, 1u);
  CHECK_EQ(v.live_directories, 2u);
  for (const auto& o : card.deleted) check_recovered(v, image, o);
  // Written in one go, each file was one run: exfat-fuse set NoFatChain.
  CHECK(find(v, "big.bin")->rule == Recovery::contiguous);
  // The tree: its directories are listed, and what was inside them says so.
  const DeletedFile* dcim = find(v, "DCIM");
  CHECK(dcim && dcim->directory && !dcim->parent_deleted);
  const DeletedFile* deeper = find(v, "DCIM/100CANON/deeper");
  CHECK(deeper && deeper->directory && deeper->parent_deleted);
  CHECK(find(v, "DCIM/100CANON/deeper/IMG_0002.JPG")->parent_deleted);
  CHECK_EQ(v.deleted.size(), 8u);  // 5 files, 3 directories
  // Allocated and free split the heap; deleted files' clusters are free.
  CHECK_EQ(v.allocated.total() + v.free.total(), v.data_offset + v.cluster_count * v.cluster_size);
  for (const auto& e : find(v, "big.bin")->extents) {
    const ByteRange* fr = v.free.next(e.begin);
    CHECK(fr && fr->begin <= e.begin && fr->end >= e.end);
  }
}

TEST("exfat: a volume at a non-zero offset: extents are in source coordinates") {
  const uint64_t offset = 1 << 20;
  Card card(offset, 8 << 20);
  {
    Mounted m(card.img, offset, card.size, card.tmp.path + "/m");
    card.put(m.dir, "photo.jpg", 40000, "2022-02-22 22:22:22");
    m.unmount();
  }
  {
    Mounted m(card.img, offset, card.size, card.tmp.path + "/m");
    card.remember(m.dir, "photo.jpg");
    sh("rm " + q(m.dir + "/photo.jpg"));
    m.unmount();
  }
  const VolumeFiles v = read_image(card.img, offset, card.size);
  CHECK_EQ(v.offset, offset);
  CHECK(v.data_offset > offset);
  CHECK_EQ(v.allocated.ranges().front().begin, offset);
  check_recovered(v, slurp(card.img), card.deleted[0]);
}

TEST("exfat: a fragmented file (FAT chain): its chain freed -> skip_live_clusters; kept -> fat_chain; bytes exact") {
  Card card(0, 8 << 20);
  std::vector<uint8_t> fat_before;
  {
    Mounted m(card.img, 0, card.size, card.tmp.path + "/m");
    // frag gets a cluster, then live.bin the next one, then frag grows past
    // it: exfat-fuse has to give frag a FAT chain.
    sh("cd " + q(m.dir) + " && head -c 4096 /dev/urandom > frag && sync && head -c 4096 /dev/urandom > live.bin && sync &&"
       " head -c 9000 /dev/urandom >> frag && touch -d '2023-05-06 07:08:09' frag");
    m.unmount();
  }
  {
    Mounted m(card.img, 0, card.size, card.tmp.path + "/m");
    card.remember(m.dir, "frag");
    m.unmount();
  }
  fat_before = slurp(card.img);
  {
    Mounted m(card.img, 0, card.size, card.tmp.path + "/m");
    sh("rm " + q(m.dir + "/frag"));
    m.unmount();
  }
  {
    const VolumeFiles v = read_image(card.img, 0, card.size);
    const DeletedFile* f = find(v, "frag");
    CHECK(f && f->rule == Recovery::skip_live_clusters);
    CHECK(f->extents.size() >= 2);  // around live.bin's cluster
    check_recovered(v, slurp(card.img), card.deleted[0]);
  }
  // Put the FAT back as it was before the delete (Linux's exfat driver
  // leaves a deleted file's chain in the FAT; exfat-fuse zeroes it).
  auto img = slurp(card.img);
  const uint64_t ss = 1u << img[108], fat_off = le32(&img[80]) * ss, fat_len = le32(&img[84]) * ss;
  std::copy(fat_before.begin() + fat_off, fat_before.begin() + fat_off + fat_len, img.begin() + fat_off);
  spill(card.img, img);
  const VolumeFiles v = read_image(card.img, 0, card.size);
  CHECK(find(v, "frag")->rule == Recovery::fat_chain);
  check_recovered(v, img, card.deleted[0]);
}

TEST("exfat: a deleted directory of several clusters with its FAT chain kept: every file in it, bytes exact") {
  Card card(0, 8 << 20);
  {
    Mounted m(card.img, 0, card.size, card.tmp.path + "/m");
    // D's first cluster, then x's, then D grows past x: D gets a FAT chain
    // of two clusters (45 files x 3 entries > 128 entries a cluster).
    sh("cd " + q(m.dir) + " && mkdir D && sync && echo x > x && sync && "
       "for i in $(seq 10 54); do head -c 100 /dev/urandom > D/file$i; done");
    m.unmount();
  }
  std::vector<uint8_t> fat_before;
  {
    Mounted m(card.img, 0, card.size, card.tmp.path + "/m");
    for (int i = 10; i <= 54; ++i) card.remember(m.dir, "D/file" + std::to_string(i));
    m.unmount();
  }
  fat_before = slurp(card.img);
  {
    Mounted m(card.img, 0, card.size, card.tmp.path + "/m");
    sh("rm -r " + q(m.dir + "/D"));
    m.unmount();
  }
  // exfat-fuse frees D's chain and shrinks D to one cluster as its tail
  // empties (DataLength too) before deleting it; Linux's exfat does
  // neither. Put the FAT and D's lengths back as they were, as Linux leaves them.
  auto img = slurp(card.img);
  const uint64_t ss = 1u << img[108], fat_off = le32(&img[80]) * ss, fat_len = le32(&img[84]) * ss;
  std::copy(fat_before.begin() + fat_off, fat_before.begin() + fat_off + fat_len, img.begin() + fat_off);
  const size_t set = root_entry(img, 0x05);  // D, the one deleted entry set of the root
  CHECK_EQ(fat_before[set], 0x85);
  CHECK_EQ(le64(&img[set + 32 + 24]), 4096u);
  std::copy(fat_before.begin() + set + 32 + 8, fat_before.begin() + set + 32 + 32, img.begin() + set + 32 + 8);
  CHECK_EQ(le64(&img[set + 32 + 24]), 8192u);
  const uint16_t sum = exfat_set_checksum(&img[set], img[set + 1] + 1u);
  std::memcpy(&img[set + 2], &sum, 2);
  spill(card.img, img);
  const VolumeFiles v = read_image(card.img, 0, card.size);
  const DeletedFile* d = find(v, "D");
  CHECK(d && d->directory && d->rule == Recovery::fat_chain && d->extents.size() == 2);
  for (const auto& o : card.deleted) check_recovered(v, img, o);
  CHECK_EQ(v.deleted.size(), 46u);
}

TEST("exfat: a deleted file whose first clusters a new file took is overwritten, with the bytes counted") {
  Card card(0, 8 << 20);
  {
    Mounted m(card.img, 0, card.size, card.tmp.path + "/m");
    // 10 clusters, the first ones of the heap's free space; in a directory
    // of its own, so the new file's entries do not reuse its entry slots.
    sh("mkdir " + q(m.dir + "/DCIM"));
    card.put(m.dir, "DCIM/old.jpg", 40960, "2020-02-02 02:02:02");
    card.put(m.dir, "other", 5000, "2020-02-02 02:02:02");
    m.unmount();
  }
  {
    Mounted m(card.img, 0, card.size, card.tmp.path + "/m");
    sh("rm " + q(m.dir + "/DCIM/old.jpg") + " && head -c 12288 /dev/urandom > " + q(m.dir + "/new.jpg"));
    m.unmount();
  }
  const VolumeFiles v = read_image(card.img, 0, card.size);
  const DeletedFile* f = find(v, "DCIM/old.jpg");
  CHECK(f && f->rule == Recovery::contiguous);
  CHECK(f->status == DeletedStatus::overwritten);
  CHECK_EQ(f->overwritten_bytes, 12288u);
  CHECK(find(v, "other") == nullptr);
}

TEST("exfat: hostile boot regions are refused with one line naming the field") {
  const auto good = small_volume();
  {
    MemoryReader r(good.data(), good.size());
    CHECK(probe_exfat(r, 0, good.size()));
    CHECK(error_of(good).empty());
  }
  auto bad = good;
  bad[600] ^= 1;  // sector 1, inside the checksummed region
  CHECK(error_of(bad).find("boot checksum") != std::string::npos);

  bad = good;
  put32(&bad[92], le32(&bad[92]) + 1000);  // ClusterCount past the end
  fix_boot_checksum(bad);
  CHECK(error_of(bad).find("ClusterCount") != std::string::npos);

  bad = good;
  put32(&bad[84], 1u << 30);  // FatLength past the end
  fix_boot_checksum(bad);
  CHECK(error_of(bad).find("FatLength") != std::string::npos);

  bad = good;
  bad[108] = 13;  // BytesPerSectorShift
  fix_boot_checksum(bad);
  CHECK(error_of(bad).find("BytesPerSectorShift 13") != std::string::npos);

  bad = good;
  put32(&bad[96], 1);  // FirstClusterOfRootDirectory
  fix_boot_checksum(bad);
  CHECK(error_of(bad).find("FirstClusterOfRootDirectory 1") != std::string::npos);

  // A truncated image: the volume claims more than the source holds.
  std::vector<uint8_t> cut(good.begin(), good.begin() + good.size() / 2);
  MemoryReader r(cut.data(), cut.size(), "cut.img");
  CHECK_THROWS_CODE(read_exfat(r, 0, good.size()), "ERR_FS_CORRUPT");
}

TEST("exfat: a bitmap entry pointing outside the heap is refused") {
  auto bad = small_volume();
  put32(&bad[root_entry(bad, 0x81) + 20], 0xFFFFFF00u);
  CHECK(error_of(bad).find("allocation bitmap") != std::string::npos);
}

TEST("exfat: a root directory chain loop and a directory cycle are recorded problems, not hangs") {
  const auto good = small_volume();
  auto bad = good;
  const uint64_t ss = 1u << bad[108], fat = le32(&bad[80]) * ss, root = le32(&bad[96]);
  put32(&bad[fat + root * 4], static_cast<uint32_t>(root));  // root -> root
  {
    MemoryReader r(bad.data(), bad.size());
    const VolumeFiles v = read_exfat(r, 0, bad.size());
    CHECK(!v.problems.empty());
    CHECK(v.problems[0].find("loops") != std::string::npos);
    CHECK_EQ(v.live_directories, 1u);  // sub, read once
  }
  // "sub"'s first cluster made the root's: a cycle.
  bad = good;
  const size_t file = root_entry(bad, 0x85);
  put32(&bad[file + 32 + 20], static_cast<uint32_t>(root));
  const uint16_t sum = exfat_set_checksum(&bad[file], bad[file + 1] + 1u);
  std::memcpy(&bad[file + 2], &sum, 2);
  MemoryReader r(bad.data(), bad.size());
  const VolumeFiles v = read_exfat(r, 0, bad.size());
  bool cycle = false;
  for (const auto& p : v.problems) cycle = cycle || p.find("directory cycle") != std::string::npos;
  CHECK(cycle);
}

TEST("exfat: ValidDataLength below DataLength: valid_size says where the zeros start") {
  // exfat-fuse writes the zeros (ValidDataLength == DataLength); Linux's
  // exfat leaves them unwritten. So the entry of a real deleted file is
  // given a shorter ValidDataLength, its set checksum recomputed.
  TempDir tmp;
  const std::string img = tmp.path + "/v.img";
  sh("truncate -s 4M " + q(img) + " && mkfs.exfat -c 4K " + q(img) + " >/dev/null");
  {
    Mounted m(img, 0, 4 << 20, tmp.path + "/m");
    sh("head -c 30000 /dev/urandom > " + q(m.dir + "/f") + " && sync && rm " + q(m.dir + "/f"));
    m.unmount();
  }
  auto bytes = slurp(img);
  const size_t file = root_entry(bytes, 0x05);
  CHECK_EQ(le64(&bytes[file + 32 + 8]), 30000u);  // as exfat-fuse wrote it
  const uint64_t valid = 1000;
  std::memcpy(&bytes[file + 32 + 8], &valid, 8);
  const uint16_t sum = exfat_set_checksum(&bytes[file], bytes[file + 1] + 1u);
  std::memcpy(&bytes[file + 2], &sum, 2);
  MemoryReader r(bytes.data(), bytes.size());
  const VolumeFiles v = read_exfat(r, 0, bytes.size());
  const DeletedFile* f = find(v, "f");
  CHECK(f && f->status == DeletedStatus::recoverable);
  CHECK_EQ(f->size, 30000u);
  CHECK_EQ(f->valid_size, 1000u);
  // A ValidDataLength past DataLength (hostile) is held to the size.
  const uint64_t big = 1ull << 40;
  std::memcpy(&bytes[file + 32 + 8], &big, 8);
  const uint16_t sum2 = exfat_set_checksum(&bytes[file], bytes[file + 1] + 1u);
  std::memcpy(&bytes[file + 2], &sum2, 2);
  const VolumeFiles v2 = read_exfat(r, 0, bytes.size());
  CHECK_EQ(find(v2, "f")->valid_size, 30000u);
}

TEST("exfat: a deleted entry set whose checksum no longer matches is not taken") {
  TempDir tmp;
  const std::string img = tmp.path + "/v.img";
  sh("truncate -s 4M " + q(img) + " && mkfs.exfat -c 4K " + q(img) + " >/dev/null");
  {
    Mounted m(img, 0, 4 << 20, tmp.path + "/m");
    sh("head -c 30000 /dev/urandom > " + q(m.dir + "/f") + " && sync && rm " + q(m.dir + "/f"));
    m.unmount();
  }
  auto bytes = slurp(img);
  MemoryReader r(bytes.data(), bytes.size());
  CHECK(find(read_exfat(r, 0, bytes.size()), "f") != nullptr);
  bytes[root_entry(bytes, 0x05) + 32 + 20] ^= 1;  // the first cluster, as if the slot were half reused
  CHECK_EQ(read_exfat(r, 0, bytes.size()).deleted.size(), 0u);
}

TEST("exfat: timestamps: 10 ms increments, UTC offsets, local time without one") {
  // 2021-03-04 05:06:08 local (DoubleSeconds 4), +1.23 s, UTC+02:00 (8 quarters).
  const uint32_t stamp = (41u << 25) | (3u << 21) | (4u << 16) | (5u << 11) | (6u << 5) | 4u;
  Timestamp t = exfat_time(stamp, 123, 0x80 | 8);
  CHECK(t.known && !t.local_time);
  CHECK_EQ(t.seconds, 1614834369 - 7200);  // 05:06:09 UTC+2
  CHECK_EQ(t.nanoseconds, 230000000u);
  t = exfat_time(stamp, 0, 0x80 | 0x7C);  // UTC-01:00
  CHECK_EQ(t.seconds, 1614834368 + 3600);
  t = exfat_time(stamp, 0, 0);
  CHECK(t.known && t.local_time);
  CHECK_EQ(t.seconds, 1614834368);
  CHECK(!exfat_time(0, 0, 0).known);
  CHECK(!exfat_time(stamp | (15u << 21), 0, 0).known);  // month 15
}

TEST("exfat boot geometry fields: each check names its field and value; a good sector gives the FAT and heap offsets") {
  const auto good = small_volume();
  const uint64_t length = good.size();
  auto geometry = [&](const std::function<void(uint8_t*)>& edit, ExfatBoot& b) {
    std::vector<uint8_t> s(good.begin(), good.begin() + 512);
    edit(s.data());
    b = ExfatBoot{};
    b.sector_size = 1u << s[108];
    b.cluster_size = b.sector_size << s[109];
    return check_exfat_geometry(s.data(), length, b);
  };
  ExfatBoot b;
  CHECK_EQ(geometry([](uint8_t*) {}, b), "");
  CHECK_EQ(b.cluster_size, 4096u);
  CHECK_EQ(b.heap_offset, uint64_t(le32(&good[88])) * 512);
  CHECK_EQ(b.fat_offset, uint64_t(le32(&good[80])) * 512);
  CHECK_EQ(b.fat_bytes, uint64_t(le32(&good[84])) * 512);
  CHECK_EQ(b.root_cluster, le32(&good[96]));
  CHECK_EQ(int(b.active_fat), 0);
  CHECK_EQ(geometry([](uint8_t* s) { put32(s + 72, 8193); }, b),
           "VolumeLength 8193 sectors is past the end of the volume (4194304 bytes)");
  CHECK_EQ(geometry([](uint8_t* s) { s[110] = 3; }, b), "NumberOfFats 3 is not 1 or 2");
  CHECK_EQ(geometry([](uint8_t* s) { put32(s + 80, 12); }, b), "FatOffset 12 lies inside the boot regions");
  CHECK_EQ(geometry([](uint8_t* s) { put32(s + 84, 0); }, b), "FatLength 0");
  CHECK_EQ(geometry([](uint8_t* s) { put32(s + 88, le32(s + 80)); }, b),
           "ClusterHeapOffset " + std::to_string(le32(&good[80])) + " overlaps the FAT or lies past the volume");
  CHECK_EQ(geometry([](uint8_t* s) { put32(s + 92, 0); }, b), "ClusterCount 0 is out of range");
  CHECK_EQ(geometry([](uint8_t* s) { put32(s + 84, 1); }, b),
           "FatLength 1 sectors is too small for " + std::to_string(le32(&good[92])) + " clusters");
  // TexFAT's second FAT is the active one when VolumeFlags bit 0 says so.
  CHECK_EQ(geometry([](uint8_t* s) { s[110] = 2; s[106] |= 1; }, b), "");
  CHECK_EQ(int(b.active_fat), 1);
  CHECK_EQ(b.fat_offset, uint64_t(le32(&good[80]) + le32(&good[84])) * 512);
}
