// The ext2/3/4 deleted-file reader (guest_fs/ext_deleted.cc) against
// filesystems the real kernel wrote: mkfs, loop mount, write, sync, delete,
// sync, unmount. read_ext_files must list every deleted file with its path,
// size and mtime and plan extents whose bytes are the original bytes; must
// say "overwritten" when a new file took some of its blocks; and must never
// list a live file. Hostile images are real ones with bytes changed: a
// one-line error or a result, never a crash or a hang.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/guest_fs/ext_dirents.h"
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

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/blocksmith-extdel-XXXXXX";
    if (!::mkdtemp(tmpl)) coretest::fail(__FILE__, __LINE__, "mkdtemp failed");
    path = tmpl;
  }
  ~TempDir() { std::system(("rm -rf " + q(path)).c_str()); }
};

// A file written into the filesystem, as stat saw it before it was deleted.
struct Original {
  std::string path;
  std::vector<uint8_t> bytes;
  int64_t mtime = 0;
  uint32_t mtime_ns = 0;
};

// An ext filesystem in an image file, formatted by `mkfs`, mounted by the
// kernel through a loop device between mount() and unmount().
struct ExtVolume {
  TempDir tmp;
  std::string img = tmp.path + "/ext.img", dir = tmp.path + "/m", loop;
  std::vector<Original> deleted;

  ExtVolume(const std::string& mkfs, const std::string& size = "32M") {
    sh("truncate -s " + size + " " + q(img) + " && " + mkfs + " -q -F -E lazy_itable_init=0,lazy_journal_init=0 " +
       q(img) + " >/dev/null 2>&1 && mkdir -p " + q(dir));
  }
  void mount() {
    for (int attempt = 0; attempt < 5 && loop.empty(); ++attempt) {
      loop = out_of("losetup -f --show " + q(img) + " 2>/dev/null");
      if (loop.empty()) ::usleep(200000);
    }
    if (loop.empty()) coretest::fail(__FILE__, __LINE__, "losetup failed on " + img);
    // The ext4 driver mounts ext2 and ext3 too (what current kernels do).
    sh("mount -t ext4 " + loop + " " + q(dir));
  }
  void unmount() {
    if (loop.empty()) return;
    std::system(("umount " + q(dir) + " 2>/dev/null; losetup -d " + loop).c_str());
    loop.clear();
  }
  ~ExtVolume() { unmount(); }

  std::string at(const std::string& rel) const { return dir + "/" + rel; }
  // `bytes` random bytes at `rel` with mtime `when`.
  void put(const std::string& rel, size_t bytes, const char* when) {
    sh("head -c " + std::to_string(bytes) + " /dev/urandom > " + q(at(rel)) + " && touch -d " + q(when) + " " + q(at(rel)));
  }
  void remember(const std::string& rel) {
    struct stat st{};
    if (::stat(at(rel).c_str(), &st) != 0) coretest::fail(__FILE__, __LINE__, "stat " + rel);
    deleted.push_back({rel, slurp(at(rel)), st.st_mtim.tv_sec, static_cast<uint32_t>(st.st_mtim.tv_nsec)});
  }
  // Every live path (relative), inode ("#N") and inode with its mtime
  // ("#N@SECONDS.NANOSECONDS", 9 digits), to check none is listed.
  std::set<std::string> live_paths() const {
    std::set<std::string> out;
    std::istringstream in(out_of("cd " + q(dir) + " && find . -mindepth 1 -printf '%i %T@ %P\\n'"));
    std::string line;
    while (std::getline(in, line)) {
      const size_t sp1 = line.find(' '), sp2 = line.find(' ', sp1 + 1);
      const std::string ino = line.substr(0, sp1), mtime = line.substr(sp1 + 1, std::min<size_t>(sp2 - sp1 - 1, line.find('.', sp1) - sp1 + 9));
      out.insert("#" + ino);
      out.insert("#" + ino + "@" + mtime);
      out.insert(line.substr(sp2 + 1));
    }
    return out;
  }
};

VolumeFiles read_image(const std::string& img) {
  FileReader r = FileReader::open(img);
  return read_ext_files(r, 0, r.size());
}

const DeletedFile* find(const VolumeFiles& v, const std::string& path) {
  for (const auto& f : v.deleted) {
    if (f.path == path) return &f;
  }
  return nullptr;
}

// The file the plan describes: extents at their file offsets, gaps zeros.
std::vector<uint8_t> plan_bytes(const std::vector<uint8_t>& image, const DeletedFile& f) {
  std::vector<uint8_t> out;
  if (!f.file_offsets.empty() && f.file_offsets.size() != f.extents.size()) {
    coretest::fail(__FILE__, __LINE__, f.path + ": file_offsets do not match the extents");
  }
  if (f.size > (uint64_t(1) << 32)) coretest::fail(__FILE__, __LINE__, f.path + ": absurd size");
  out.assign(f.file_offsets.empty() ? 0 : f.size, 0);
  for (size_t i = 0; i < f.extents.size(); ++i) {
    const auto& e = f.extents[i];
    if (e.end > image.size() || e.begin > e.end) coretest::fail(__FILE__, __LINE__, f.path + ": extent outside the image");
    if (f.file_offsets.empty()) {
      out.insert(out.end(), image.begin() + e.begin, image.begin() + e.end);
    } else {
      if (f.file_offsets[i] + (e.end - e.begin) > f.size) coretest::fail(__FILE__, __LINE__, f.path + ": extent past the size");
      std::copy(image.begin() + e.begin, image.begin() + e.end, out.begin() + f.file_offsets[i]);
    }
  }
  return out;
}

// How many of `v`'s deleted files match the originals exactly (path, size,
// mtime, bytes); fails naming the first that does not when `all` is asked.
size_t check_recovered(const VolumeFiles& v, const std::vector<uint8_t>& image, const std::vector<Original>& originals,
                       bool all = true) {
  size_t exact = 0;
  for (const auto& o : originals) {
    const DeletedFile* f = find(v, o.path);
    std::string why;
    if (!f) why = "not listed";
    else if (f->size != o.bytes.size()) why = "size " + std::to_string(f->size) + " != " + std::to_string(o.bytes.size());
    else if (!f->times.modified.known || f->times.modified.seconds != o.mtime) why = "mtime differs";
    else if (f->times.modified.nanoseconds != o.mtime_ns) why = "mtime nanoseconds differ";
    else if (o.bytes.empty() && f->status != DeletedStatus::empty) why = "not empty";
    else if (!o.bytes.empty() && f->status != DeletedStatus::recoverable) why = "status not recoverable";
    else if (plan_bytes(image, *f) != o.bytes) why = "bytes differ";
    if (why.empty()) ++exact;
    else if (all) coretest::fail(__FILE__, __LINE__, o.path + ": " + why);
  }
  return exact;
}

std::string stamp(const Timestamp& t) {
  char ns[16];
  std::snprintf(ns, sizeof ns, ".%09u", t.nanoseconds);
  return std::to_string(t.seconds) + ns;
}

// A listed file may carry a live inode's number only as that number's
// earlier incarnation (said so in found_in), never with the live file's
// mtime.
void check_no_live(const VolumeFiles& v, const std::set<std::string>& live) {
  for (const auto& f : v.deleted) {
    const std::string ino = "#" + std::to_string(f.inode);
    const bool earlier = f.found_in.find("(the inode is a new file's now)") != std::string::npos;
    if (live.count(f.path) || (live.count(ino) && !earlier) ||
        (earlier && f.times.modified.known && live.count(ino + "@" + stamp(f.times.modified)))) {
      coretest::fail(__FILE__, __LINE__, "live file listed as deleted: " + f.path);
    }
  }
}

// The tree every format test writes and deletes: a file in a live directory
// (bigger than 12 blocks: indirect blocks on ext2/3), an empty one, and a
// whole tree (rm -r) with a file of over 256 1-KiB blocks (a double
// indirect block) in a subdirectory.
void write_and_delete(ExtVolume& e) {
  e.mount();
  sh("mkdir -p " + q(e.at("keep")) + " " + q(e.at("docs/sub")));
  e.put("keep/live.bin", 40000, "2020-01-01 00:00:00");
  e.put("keep/gone.bin", 70000, "2021-03-04 05:06:07.123456789");
  e.put("keep/empty", 0, "2019-02-03 04:05:06");
  e.put("docs/notes.txt", 1000, "2018-06-15 12:00:00");
  e.put("docs/sub/big.bin", 1500000, "2017-07-08 09:10:11");
  e.put("docs/sub/photo one.jpg", 300000, "2016-01-02 03:04:05");
  // Sparse: 10 pieces with holes between them (ext4: more extents than the
  // inode holds, so an extent tree of depth 1; ext2/3: zero pointers).
  sh("for k in 0 1 2 3 4 5 6 7 8 9; do head -c 4096 /dev/urandom | dd of=" + q(e.at("keep/sparse.bin")) +
     " bs=4096 seek=$((k * 16)) conv=notrunc status=none; done && touch -d '2013-03-03 03:03:03' " +
     q(e.at("keep/sparse.bin")));
  sh("sync");
  for (const char* rel : {"keep/gone.bin", "keep/empty", "keep/sparse.bin", "docs/notes.txt", "docs/sub/big.bin", "docs/sub/photo one.jpg"}) {
    e.remember(rel);
  }
  sh("rm " + q(e.at("keep/gone.bin")) + " " + q(e.at("keep/empty")) + " " + q(e.at("keep/sparse.bin")) + " && rm -r " + q(e.at("docs")) + " && sync");
}

void check_format(const std::string& mkfs, const std::string& type) {
  ExtVolume e(mkfs);
  write_and_delete(e);
  const auto live = e.live_paths();
  e.unmount();
  const VolumeFiles v = read_image(e.img);
  const auto image = slurp(e.img);
  CHECK_EQ(v.filesystem, type);
  CHECK_EQ(v.data_offset, 0u);
  CHECK_EQ(v.live_files, 1u);
  CHECK_EQ(v.live_directories, 2u);  // lost+found, keep
  check_no_live(v, live);
  check_recovered(v, image, e.deleted);
  const DeletedFile* docs = find(v, "docs");
  const DeletedFile* sub = find(v, "docs/sub");
  CHECK(docs && docs->directory && !docs->parent_deleted);
  CHECK(sub && sub->directory && sub->parent_deleted);
  CHECK(find(v, "docs/sub/big.bin")->parent_deleted);
  CHECK(!find(v, "keep/gone.bin")->parent_deleted);
  // The delete zeroed the inodes: what describes the files is the journal's
  // copy of their inode-table block from before it.
  CHECK_EQ(find(v, "keep/gone.bin")->found_in.rfind("journal transaction ", 0), 0u);
  CHECK_EQ(find(v, "keep/gone.bin")->times.modified.nanoseconds, 123456789u);
  CHECK(v.problems.empty());
  CHECK(find(v, "docs/sub/big.bin")->rule == (type == "ext4" ? Recovery::extent_tree : Recovery::block_map));
  // The holes are gaps between the extents, not bytes read from the disk.
  CHECK_EQ(find(v, "keep/sparse.bin")->extents.size(), 10u);
  CHECK_EQ(find(v, "keep/sparse.bin")->file_offsets.size(), 10u);
  CHECK_EQ(find(v, "keep/sparse.bin")->file_offsets[9], 9u * 16 * 4096);
  CHECK_EQ(v.deleted.size(), e.deleted.size() + 2);  // and nothing else
}

}  // namespace

TEST("ext4 (metadata_csum, 64bit): deleted files and a deleted tree come back from the journal with paths, sizes, mtimes and bytes") {
  check_format("mkfs.ext4 -b 4096 -O metadata_csum,64bit", "ext4");
}

TEST("ext4 without metadata_csum or 64bit, 1 KiB blocks: the same") {
  check_format("mkfs.ext4 -b 1024 -O ^metadata_csum,^64bit", "ext4");
}

TEST("ext3 (1 KiB blocks: indirect and double indirect blocks): the same, through the block map") {
  check_format("mkfs.ext3 -b 1024", "ext3");
}

TEST("ext4 htree directory (300 files): the 100 deleted come back by name, no index block yields a name") {
  ExtVolume e("mkfs.ext4 -b 1024");
  e.mount();
  sh("mkdir " + q(e.at("many")) + " && cd " + q(e.at("many")) +
     " && for i in $(seq 1 300); do head -c $((1000 + 7 * i)) /dev/urandom > photo_$(printf %03d $i).jpg; done" +
     " && touch -d '2022-02-02 02:02:02' photo_* && sync");
  // An htree directory now (the kernel indexes a directory past one block).
  CHECK(out_of("lsattr -d " + q(e.at("many"))).find('I') != std::string::npos);
  std::string rm = "cd " + q(e.at("many")) + " && rm";
  for (int i = 1; i <= 300; i += 3) {
    char name[32];
    std::snprintf(name, sizeof name, "many/photo_%03d.jpg", i);
    e.remember(name);
    rm += std::string(" ") + (name + 5);
  }
  sh(rm + " && sync");
  const auto live = e.live_paths();
  e.unmount();
  const VolumeFiles v = read_image(e.img);
  CHECK_EQ(v.live_files, 200u);
  check_no_live(v, live);
  check_recovered(v, slurp(e.img), e.deleted);
  CHECK_EQ(v.deleted.size(), e.deleted.size());
}

namespace {

// What the benchmark does: a tree of files in subfolders removed with
// `rm -r`, then a new folder next to it with new files. The kernel hands
// the freed inode numbers (the lowest free in the group) to the new folder
// and files, so the deleted tree's directories and some files are earlier
// incarnations of live inodes: every deleted file must still come back
// under its original path, never under the new folder's.
void check_reused_tree(const std::string& mkfs) {
  ExtVolume e(mkfs);
  e.mount();
  sh("mkdir -p " + q(e.at("home/alice/projects")) + " && echo live > " + q(e.at("home/alice/live.txt")));
  sh("sync");
  const std::string trip = "home/alice/projects/trip-2019";
  sh("mkdir -p " + q(e.at(trip)));
  // Written in a mixed order: subfolders are made as their first file comes.
  std::vector<std::string> rels;
  for (int k = 0; k < 40; ++k) {
    const char* dir[] = {"/photos", "/notes", "/data", "/data/old", ""};
    rels.push_back(trip + dir[k % 5] + "/file-" + std::to_string(k) + (k % 5 == 0 ? ".jpg" : ".bin"));
  }
  std::map<std::string, uint32_t> inode_of;
  for (size_t k = 0; k < rels.size(); ++k) {
    sh("mkdir -p " + q(e.at(rels[k].substr(0, rels[k].rfind('/')))));
    char when[64];
    std::snprintf(when, sizeof when, "2019-07-%02zu 10:%02zu:00", 1 + k % 28, k);
    e.put(rels[k], 500 + 3000 * k, when);
  }
  sh("sync");
  for (const auto& rel : rels) {
    e.remember(rel);
    struct stat st{};
    CHECK_EQ(::stat(e.at(rel).c_str(), &st), 0);
    inode_of[e.deleted.back().path] = static_cast<uint32_t>(st.st_ino);
  }
  std::set<uint32_t> tree_inodes;
  for (const auto& [rel, ino] : inode_of) tree_inodes.insert(ino);
  for (const char* d : {"", "/photos", "/notes", "/data", "/data/old"}) {
    struct stat st{};
    CHECK_EQ(::stat(e.at(trip + d).c_str(), &st), 0);
    tree_inodes.insert(static_cast<uint32_t>(st.st_ino));
  }
  sh("rm -r " + q(e.at(trip)) + " && sync && mkdir " + q(e.at("home/alice/projects/trip-2020")));
  for (int k = 0; k < 4; ++k) e.put("home/alice/projects/trip-2020/clip-" + std::to_string(k) + ".bin", 2000, "2020-01-01 00:00:00");
  sh("sync");
  // The scenario: the new folder and files took numbers of the deleted tree.
  size_t reused = 0;
  for (const char* rel : {"", "/clip-0.bin", "/clip-1.bin", "/clip-2.bin", "/clip-3.bin"}) {
    struct stat st{};
    CHECK_EQ(::stat(e.at(std::string("home/alice/projects/trip-2020") + rel).c_str(), &st), 0);
    reused += tree_inodes.count(static_cast<uint32_t>(st.st_ino));
  }
  CHECK_EQ(reused, 5u);
  const auto live = e.live_paths();
  e.unmount();
  const VolumeFiles v = read_image(e.img);
  const auto image = slurp(e.img);
  check_no_live(v, live);
  // Every file under its original path with its mtime; its bytes exact
  // unless a new file took some of its blocks (then said so).
  size_t exact = 0;
  for (const auto& o : e.deleted) {
    const DeletedFile* f = find(v, o.path);
    if (!f) coretest::fail(__FILE__, __LINE__, o.path + ": not listed at its path");
    CHECK_EQ(f->inode, inode_of[o.path]);
    CHECK_EQ(f->times.modified.seconds, o.mtime);
    CHECK(f->parent_deleted);
    if (f->status == DeletedStatus::recoverable) {
      CHECK(plan_bytes(image, *f) == o.bytes);
      ++exact;
    } else {
      CHECK(f->status == DeletedStatus::overwritten);
    }
  }
  CHECK(exact >= e.deleted.size() - 4);
  for (const char* d : {"", "/photos", "/notes", "/data", "/data/old"}) {
    const DeletedFile* f = find(v, trip + d);
    CHECK(f && f->directory);
  }
  // The deleted folder's own number is the new folder's now.
  CHECK(find(v, trip)->found_in.find("(the inode is a new file's now)") != std::string::npos);
  for (const auto& f : v.deleted) CHECK(f.path.find("trip-2020") == std::string::npos && f.path.find("lost+found") == std::string::npos);
  CHECK_EQ(v.deleted.size(), e.deleted.size() + 5);
}

}  // namespace

TEST("ext4: a tree removed with rm -r whose inode numbers a new folder and new files took: every file under its original path") {
  check_reused_tree("mkfs.ext4 -b 1024");
}

TEST("ext3: the same (block maps, the ext4 driver)") {
  check_reused_tree("mkfs.ext3 -b 1024");
}

namespace {

// A 1 MiB file deleted, then a new 600 KB file that can only take its
// blocks (the filesystem is full otherwise); with `delete_new` the new file
// is deleted too, so the bitmap calls the victim's blocks free again but the
// newer deleted file's copy claims them.
void check_overwritten(bool delete_new) {
  ExtVolume e("mkfs.ext4 -b 1024 -O ^metadata_csum", "16M");
  e.mount();
  // The new file takes the lowest free inode: the spare's, not the victim's.
  e.put("spare", 1000, "2015-05-05 05:05:04");
  e.put("victim.bin", 1 << 20, "2015-05-05 05:05:05");
  e.put("safe.bin", 50000, "2015-05-05 05:05:06");
  // Fill the rest: the new file below can only take the victim's blocks.
  sh("dd if=/dev/zero of=" + q(e.at("filler")) + " bs=64k status=none 2>/dev/null; sync");
  e.remember("victim.bin");
  e.remember("safe.bin");
  e.remember("spare");
  struct stat spare_st{};
  CHECK_EQ(::stat(e.at("spare").c_str(), &spare_st), 0);
  e.unmount();
  const std::string victim_blocks = out_of("debugfs -R 'blocks /victim.bin' " + q(e.img) + " 2>/dev/null");
  e.mount();
  sh("rm " + q(e.at("spare")) + " " + q(e.at("victim.bin")) + " && sync && head -c 600000 /dev/urandom > " + q(e.at("new.bin")) + " && sync && rm " +
     q(e.at("safe.bin")) + " && sync");
  e.remember("new.bin");
  struct stat new_st{};
  CHECK_EQ(::stat(e.at("new.bin").c_str(), &new_st), 0);
  CHECK_EQ(new_st.st_ino, spare_st.st_ino);  // the scenario: new.bin took spare's number
  e.unmount();
  const std::string new_blocks = out_of("debugfs -R 'blocks /new.bin' " + q(e.img) + " 2>/dev/null");
  e.mount();
  if (delete_new) sh("rm " + q(e.at("new.bin")) + " && sync");
  const auto live = e.live_paths();
  e.unmount();
  // How many victim blocks the new file holds now.
  std::set<std::string> vb, nb;
  for (std::istringstream in(victim_blocks); in;) { std::string b; if (in >> b) vb.insert(b); }
  for (std::istringstream in(new_blocks); in;) { std::string b; if (in >> b) nb.insert(b); }
  uint64_t shared = 0;
  for (const auto& b : nb) shared += vb.count(b);
  CHECK(shared > 0);
  const VolumeFiles v = read_image(e.img);
  check_no_live(v, live);
  const DeletedFile* f = find(v, "victim.bin");
  CHECK(f != nullptr);
  CHECK(f->status == DeletedStatus::overwritten);
  CHECK_EQ(f->overwritten_bytes, shared * 1024);
  CHECK_EQ(check_recovered(v, slurp(e.img), {e.deleted[1]}), 1u);
  if (delete_new) CHECK_EQ(check_recovered(v, slurp(e.img), {e.deleted[3]}), 1u);
  // spare, whose number new.bin took: that number's earlier incarnation,
  // under its own name, with its bytes (new.bin took the victim's blocks).
  const DeletedFile* spare = find(v, "spare");
  CHECK(spare != nullptr);
  CHECK_EQ(spare->inode, static_cast<uint32_t>(spare_st.st_ino));
  CHECK_EQ(spare->found_in.substr(spare->found_in.find(" (")),
           std::string(delete_new ? " (the inode held another file since)" : " (the inode is a new file's now)"));
  CHECK_EQ(check_recovered(v, slurp(e.img), {e.deleted[2]}), 1u);
}

}  // namespace

TEST("ext4: a deleted file whose blocks a new file took is overwritten, with how many bytes; the others stay exact") {
  check_overwritten(false);
}

TEST("ext4: ... and when that new file is deleted too, the older file is still overwritten and the newer one exact") {
  check_overwritten(true);
}

namespace {

// Writes a directory entry (filetype layout) at `at`.
void dirent(std::vector<uint8_t>& b, size_t at, uint32_t ino, uint16_t rec, const std::string& name, uint8_t ft) {
  std::memcpy(&b[at], &ino, 4);
  std::memcpy(&b[at + 4], &rec, 2);
  b[at + 6] = static_cast<uint8_t>(name.size());
  b[at + 7] = ft;
  std::memcpy(&b[at + 8], name.data(), name.size());
}

}  // namespace

TEST("ext directory blocks: live entries, deleted ones in rec_len slack, the checksum tail; htree index blocks give no names") {
  std::vector<uint8_t> b(1024, 0);
  dirent(b, 0, 12, 12, ".", 2);
  dirent(b, 12, 2, 12, "..", 2);
  // "keep" covers the deleted "gone.jpg" after it (the delete merged it).
  dirent(b, 24, 13, 40, "keep", 1);
  dirent(b, 36, 14, 28, "gone.jpg", 1);
  dirent(b, 64, 15, 1024 - 64 - 12, "last", 1);
  dirent(b, 1012, 0, 12, "", 0xDE);
  DirBlock d = parse_dir_block(b.data(), 1024, true, 100);
  CHECK(d.valid && !d.index);
  CHECK_EQ(d.self, 12u);
  CHECK_EQ(d.parent, 2u);
  CHECK_EQ(d.entries.size(), 3u);
  CHECK(d.entries[0].name == "keep" && !d.entries[0].deleted);
  CHECK(d.entries[1].name == "gone.jpg" && d.entries[1].deleted && d.entries[1].inode == 14);
  CHECK(d.entries[2].name == "last" && !d.entries[2].deleted);
  // Slack holding an inode number past the filesystem's is not an entry.
  std::vector<uint8_t> past = b;
  dirent(past, 36, 99, 28, "gone.jpg", 1);
  CHECK_EQ(parse_dir_block(past.data(), 1024, true, 20).entries.size(), 2u);

  // dx_root: "." and "..", then dx_root_info and hash/block pairs that an
  // entry scan could misread.
  std::vector<uint8_t> root(1024, 0);
  dirent(root, 0, 12, 12, ".", 2);
  dirent(root, 12, 2, 1012, "..", 2);
  root[0x1D] = 8;  // info_length
  dirent(root, 0x28, 13, 20, "fake", 1);
  d = parse_dir_block(root.data(), 1024, true, 100);
  CHECK(d.valid && d.index && d.entries.empty());
  CHECK_EQ(d.self, 12u);
  // dx_node: one empty entry over the block.
  std::vector<uint8_t> node(1024, 0);
  dirent(node, 0, 0, 1024, "", 0);
  dirent(node, 16, 13, 20, "fake", 1);
  d = parse_dir_block(node.data(), 1024, true, 100);
  CHECK(d.valid && d.index && d.entries.empty());

  // Not directory blocks: a chain that does not cover the block, a zero
  // rec_len, an entry past the block.
  std::vector<uint8_t> bad = b;
  dirent(bad, 64, 15, 900, "last", 1);
  CHECK(!parse_dir_block(bad.data(), 1024, true, 100).valid);
  bad = b;
  dirent(bad, 24, 13, 0, "keep", 1);
  CHECK(!parse_dir_block(bad.data(), 1024, true, 100).valid);
  bad = b;
  dirent(bad, 64, 15, 2000, "last", 1);
  CHECK(!parse_dir_block(bad.data(), 1024, true, 100).valid);
  std::vector<uint8_t> zeros(1024, 0);
  CHECK(!parse_dir_block(zeros.data(), 1024, true, 100).valid);
}

TEST("ext2 written by the kernel's ext4 driver: the delete zeroes the inode's size and pointers and wipes the name, so nothing is listed") {
  ExtVolume e("mkfs.ext2 -b 1024");
  write_and_delete(e);
  const auto live = e.live_paths();
  e.unmount();
  const VolumeFiles v = read_image(e.img);
  CHECK_EQ(v.filesystem, std::string("ext2"));
  CHECK_EQ(v.live_files, 1u);
  check_no_live(v, live);
  // What the kernel left (6.x): inode size 0, i_block zeroed, dtime set,
  // the directory entries wiped; the indirect blocks keep their pointers
  // but nothing leads to them. No journal holds an older copy.
  CHECK(v.deleted.empty());
  CHECK(out_of("debugfs -R 'ls -d /keep' " + q(e.img) + " 2>/dev/null").find("gone.bin") == std::string::npos);
}

TEST("ext2 deleted by debugfs (as the old ext2 driver did): pointers and names survive in the inode table and the slack") {
  TempDir tmp;
  const std::string img = tmp.path + "/e2.img", files = tmp.path + "/files";
  sh("mkdir -p " + q(files + "/d") + " && head -c 300000 /dev/urandom > " + q(files + "/d/big.bin") +
     " && head -c 5000 /dev/urandom > " + q(files + "/d/small.bin") + " && echo live > " + q(files + "/live.txt") +
     " && touch -d '2014-04-04 04:04:04' " + q(files + "/d/big.bin") + " " + q(files + "/d/small.bin") +
     " && truncate -s 8M " + q(img) + " && mke2fs -q -F -t ext2 -b 1024 -d " + q(files) + " " + q(img) +
     " && debugfs -w -R 'rm /d/big.bin' " + q(img) + " >/dev/null 2>&1 && debugfs -w -R 'rm /d/small.bin' " + q(img) +
     " >/dev/null 2>&1");
  const VolumeFiles v = read_image(img);
  std::vector<Original> originals;
  for (const char* rel : {"d/big.bin", "d/small.bin"}) {
    struct stat st{};
    CHECK_EQ(::stat((files + "/" + rel).c_str(), &st), 0);
    originals.push_back({rel, slurp(files + "/" + rel), st.st_mtim.tv_sec});
  }
  CHECK_EQ(check_recovered(v, slurp(img), originals), 2u);
  CHECK_EQ(find(v, "d/big.bin")->found_in, std::string("the inode table"));
  CHECK(find(v, "d/big.bin")->rule == Recovery::block_map);
  CHECK_EQ(v.deleted.size(), 2u);
  CHECK(find(v, "live.txt") == nullptr);
}

TEST("ext hostile: a kernel-made ext4 whose journal log is corrupted at random: a one-line error or a bounded result, never a live file") {
  ExtVolume e("mkfs.ext4 -b 1024");
  write_and_delete(e);
  const auto live = e.live_paths();
  e.unmount();
  const auto image = slurp(e.img);
  const uint64_t jstart = std::stoull(out_of("debugfs -R 'bmap <8> 0' " + q(e.img) + " 2>/dev/null")) * 1024;
  const uint64_t jlen = 1024 * 1024;  // the log's first MiB: where this run's transactions are
  CHECK(jstart > 0 && jstart + jlen <= image.size());
  uint64_t seed = 12345;
  auto rnd = [&seed]() {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return seed >> 33;
  };
  for (int round = 0; round < 60; ++round) {
    std::vector<uint8_t> bad = image;
    for (int k = 0; k < 1 + round % 20; ++k) {
      const uint64_t at = jstart + rnd() % jlen;
      const uint64_t n = 1 + rnd() % 24;
      for (uint64_t i = 0; i < n && at + i < bad.size(); ++i) bad[at + i] = static_cast<uint8_t>(rnd());
    }
    MemoryReader r(bad.data(), bad.size(), "hostile.img");
    try {
      const VolumeFiles v = read_ext_files(r, 0, bad.size());
      check_no_live(v, live);
      for (const auto& f : v.deleted) {
        for (const auto& x : f.extents) CHECK(x.begin < x.end && x.end <= bad.size());
      }
    } catch (const Error& err) {
      CHECK(std::string(err.what()).find('\n') == std::string::npos);
    }
  }
}

TEST("ext4 whose journal has a damaged descriptor block: what the journal reader skipped is in the volume's problems, one line each") {
  ExtVolume e("mkfs.ext4 -b 1024");
  write_and_delete(e);
  e.unmount();
  std::vector<uint8_t> image = slurp(e.img);
  const uint64_t jstart = std::stoull(out_of("debugfs -R 'bmap <8> 0' " + q(e.img) + " 2>/dev/null")) * 1024;
  // The first descriptor block of the log (big-endian magic, block type 1):
  // one byte of its first tag changed, so its checksum no longer matches.
  uint64_t at = 0;
  for (uint64_t b = jstart + 1024; b + 1024 <= image.size() && b < jstart + 1024 * 1024; b += 1024) {
    const uint8_t* p = image.data() + b;
    if (p[0] == 0xC0 && p[1] == 0x3B && p[2] == 0x39 && p[3] == 0x98 && p[4] == 0 && p[5] == 0 && p[6] == 0 && p[7] == 1) {
      at = b;
      break;
    }
  }
  CHECK(at != 0);
  image[at + 12] ^= 0x01;
  MemoryReader r(image.data(), image.size(), "damaged.img");
  const VolumeFiles v = read_ext_files(r, 0, image.size());
  bool said = false;
  for (const auto& p : v.problems) {
    CHECK(p.find('\n') == std::string::npos);
    if (p.rfind("journal: ", 0) == 0) said = true;
  }
  CHECK(said);
}

TEST("ext3 whose indirect blocks are zeroed with no copy left (as the old ext3 driver did): the data is guessed to resume right after each") {
  TempDir tmp;
  const std::string img = tmp.path + "/e3.img", files = tmp.path + "/files";
  // e2fsprogs lays a file out as ext3's allocator did: each indirect block
  // right before the data it maps.
  sh("mkdir -p " + q(files) + " && head -c 400000 /dev/urandom > " + q(files + "/big.bin") + " && truncate -s 8M " +
     q(img) + " && mke2fs -q -F -t ext3 -b 1024 -d " + q(files) + " " + q(img));
  const std::string layout = out_of("debugfs -R 'stat /big.bin' " + q(img) + " 2>/dev/null | sed -n '/BLOCKS/,$p'");
  auto block_after = [&](const std::string& tag) {
    const size_t at = layout.find("(" + tag + "):");
    if (at == std::string::npos) coretest::fail(__FILE__, __LINE__, "no " + tag + " in " + layout);
    return std::stoull(layout.substr(at + tag.size() + 3));
  };
  const uint64_t ind = block_after("IND"), dind = block_after("DIND");
  CHECK_EQ(dind, ind + 257);  // 256 data blocks between them: the layout the guess assumes
  sh("debugfs -w -R 'rm /big.bin' " + q(img) + " >/dev/null 2>&1");
  for (uint64_t b : {ind, dind, dind + 1}) {
    sh("dd if=/dev/zero of=" + q(img) + " bs=1024 seek=" + std::to_string(b) + " count=1 conv=notrunc status=none");
  }
  struct stat st{};
  CHECK_EQ(::stat((files + "/big.bin").c_str(), &st), 0);
  const VolumeFiles v = read_image(img);
  CHECK_EQ(check_recovered(v, slurp(img), {{"big.bin", slurp(files + "/big.bin"), st.st_mtim.tv_sec, 0}}), 1u);
  CHECK(find(v, "big.bin")->rule == Recovery::indirect_guess);
}

TEST("ext3 whose indirect blocks the delete zeroed on disk (the old ext3 driver): their revoked journal copies map the file exactly") {
  ExtVolume e("mkfs.ext3 -b 1024");
  e.mount();
  e.put("big.bin", 400000, "2012-12-12 12:12:12");
  sh("sync");
  e.remember("big.bin");
  e.unmount();
  const std::string layout = out_of("debugfs -R 'stat /big.bin' " + q(e.img) + " 2>/dev/null | sed -n '/BLOCKS/,$p'");
  std::vector<uint64_t> tree;
  for (size_t at = layout.find("IND):"); at != std::string::npos; at = layout.find("IND):", at + 1)) {
    tree.push_back(std::stoull(layout.substr(at + 5)));
  }
  CHECK_EQ(tree.size(), 3u);  // IND, DIND, and the DIND's first IND
  e.mount();
  sh("rm " + q(e.at("big.bin")) + " && sync");
  e.unmount();
  for (uint64_t b : tree) {
    sh("dd if=/dev/zero of=" + q(e.img) + " bs=1024 seek=" + std::to_string(b) + " count=1 conv=notrunc status=none");
  }
  const VolumeFiles v = read_image(e.img);
  CHECK_EQ(check_recovered(v, slurp(e.img), e.deleted), 1u);
  CHECK(find(v, "big.bin")->rule == Recovery::block_map);
}
