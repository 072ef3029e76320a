// Recovery by name (core/operations/undelete.h) over hand-made volumes: the
// writer alone, with real bytes in a MemoryReader. Names are made safe,
// collisions get suffixes, nothing planted in OUT is followed or replaced,
// times are restored, overwritten files are not written.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/carve/sha256.h"
#include "core/operations/undelete.h"
#include "core/readers/memory_reader.h"
#include "test.h"

using namespace blocksmith;
using namespace blocksmith::undelete;
using fs::DeletedFile;
using fs::DeletedStatus;

namespace {

std::string temp_dir() {
  char tmpl[] = "/tmp/blocksmith-undelete-test-XXXXXX";
  const char* d = ::mkdtemp(tmpl);
  if (!d) coretest::fail(__FILE__, __LINE__, "mkdtemp failed");
  return d;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

void remove_all(const std::string& dir) {
  std::string cmd = "rm -rf '" + dir + "'";
  CHECK_EQ(std::system(cmd.c_str()), 0);
}

// A 64 KiB "source": byte i is i*7 mod 251, so every range is distinct.
std::vector<uint8_t> source_bytes() {
  std::vector<uint8_t> b(65536);
  for (size_t i = 0; i < b.size(); i++) b[i] = static_cast<uint8_t>((i * 7) % 251);
  return b;
}

fs::Timestamp utc(int64_t s) {
  fs::Timestamp t;
  t.known = true;
  t.seconds = s;
  return t;
}

DeletedFile file(const std::string& path, std::vector<fs::ByteRange> extents, DeletedStatus status = DeletedStatus::recoverable) {
  DeletedFile d;
  d.path = path;
  d.extents = std::move(extents);
  for (const auto& e : d.extents) d.size += e.end - e.begin;
  d.status = status;
  d.times.modified = utc(1700000000);
  d.times.accessed = utc(1690000000);
  return d;
}

fs::SourceVolumes one_volume(std::vector<DeletedFile> deleted) {
  fs::SourceVolumes s;
  s.scheme = "none";
  fs::FoundVolume v;
  v.length = 65536;
  v.read = true;
  v.files.filesystem = "fat16";
  v.files.deleted = std::move(deleted);
  s.volumes.push_back(std::move(v));
  return s;
}

std::string range(const std::vector<uint8_t>& b, size_t begin, size_t end) { return std::string(b.begin() + begin, b.begin() + end); }

}  // namespace

TEST("safe_component: no separators, no control characters or invalid UTF-8, no dot names, bounded length") {
  CHECK_EQ(safe_component("IMG_0001.JPG"), std::string("IMG_0001.JPG"));
  CHECK_EQ(safe_component("Été à Zürich.jpg"), std::string("Été à Zürich.jpg"));
  CHECK_EQ(safe_component("a/b"), std::string("a_b"));
  CHECK_EQ(safe_component("a\nb\x7f" "c"), std::string("a_b_c"));
  CHECK_EQ(safe_component("bad\xff\xc3(.txt"), std::string("bad__(.txt"));
  CHECK_EQ(safe_component("\xed\xa0\x80"), std::string("___"));  // a UTF-16 surrogate encoded: not UTF-8
  CHECK_EQ(safe_component("\xc2\x85x"), std::string("_x"));  // C1 control NEL
  CHECK_EQ(safe_component("."), std::string("_"));
  CHECK_EQ(safe_component(".."), std::string("__"));
  CHECK_EQ(safe_component(""), std::string("_"));
  CHECK_EQ(safe_component(std::string(300, 'x')).size(), size_t(200));
  // Cut on a character boundary: 150 two-byte characters make 300 bytes, cut to 200.
  std::string e;
  for (int i = 0; i < 150; i++) e += "é";
  CHECK_EQ(safe_component(e), e.substr(0, 200));
}

TEST("iso_time: UTC with Z, local wall-clock time without a zone, milliseconds when there are some") {
  CHECK_EQ(iso_time(utc(1700000000)), std::string("2023-11-14T22:13:20Z"));
  fs::Timestamp t = utc(1700000000);
  t.local_time = true;
  t.nanoseconds = 250000000;
  CHECK_EQ(iso_time(t), std::string("2023-11-14T22:13:20.250"));
  CHECK_EQ(iso_time(fs::Timestamp{}), std::string(""));
}

TEST("undelete writes each recoverable file by name with its bytes, sha256 and times; overwritten and unreadable ones are not written") {
  auto b = source_bytes();
  MemoryReader r(b.data(), b.size(), "card.img");
  std::string out = temp_dir();
  std::vector<DeletedFile> del;
  del.push_back(file("DCIM/100CANON/a.txt", {{4096, 8192}, {12288, 13000}}));  // skips a live cluster
  del.push_back(file("DCIM/100CANON/b.bin", {{16384, 20480}}, DeletedStatus::overwritten));
  del.push_back(file("notes/empty.txt", {}, DeletedStatus::empty));
  del.push_back(file("gone.dat", {}, DeletedStatus::unreadable));
  DeletedFile dir = file("old", {});
  dir.directory = true;
  dir.times.modified = utc(1600000000);
  del.push_back(dir);
  del.push_back(file("old/inside.txt", {{30000, 30010}}));
  Control control;
  uint64_t seen = 0;
  UndeleteOptions opt;
  opt.out_dir = out;
  auto rep = undelete_volumes(r, one_volume(std::move(del)), opt, control, [&](const UndeleteReport&, const UndeletedFile&) { seen++; });
  CHECK_EQ(seen, uint64_t(6));
  CHECK_EQ(rep.files.size(), size_t(6));
  CHECK_EQ(rep.files[0].status, std::string("recovered"));
  CHECK_EQ(rep.files[0].written_as, std::string("recovered/DCIM/100CANON/a.txt"));
  // Times first: reading the file would move its atime (relatime).
  struct stat st {};
  CHECK_EQ(::stat((out + "/recovered/DCIM/100CANON/a.txt").c_str(), &st), 0);
  CHECK_EQ(int64_t(st.st_mtim.tv_sec), int64_t(1700000000));
  CHECK_EQ(int64_t(st.st_atim.tv_sec), int64_t(1690000000));
  std::string want = range(b, 4096, 8192) + range(b, 12288, 13000);
  CHECK_EQ(slurp(out + "/recovered/DCIM/100CANON/a.txt"), want);
  CHECK_EQ(rep.files[0].sha256, carve::sha256_hex(reinterpret_cast<const uint8_t*>(want.data()), want.size()));
  CHECK_EQ(rep.files[1].status, std::string("overwritten"));
  CHECK_EQ(rep.files[1].written_as, std::string(""));
  CHECK(!exists(out + "/recovered/DCIM/100CANON/b.bin"));
  CHECK_EQ(rep.files[2].status, std::string("empty"));
  CHECK_EQ(slurp(out + "/recovered/notes/empty.txt"), std::string(""));
  CHECK_EQ(rep.files[3].status, std::string("unreadable"));
  CHECK(!exists(out + "/recovered/gone.dat"));
  CHECK_EQ(slurp(out + "/recovered/old/inside.txt"), range(b, 30000, 30010));
  // The deleted directory's time is set after its content was written.
  CHECK_EQ(::stat((out + "/recovered/old").c_str(), &st), 0);
  CHECK_EQ(int64_t(st.st_mtim.tv_sec), int64_t(1600000000));
  CHECK_EQ(rep.recovered, uint64_t(2));
  CHECK_EQ(rep.overwritten, uint64_t(1));
  CHECK_EQ(rep.empty, uint64_t(1));
  CHECK_EQ(rep.unreadable, uint64_t(1));
  CHECK_EQ(rep.directories, uint64_t(1));
  CHECK_EQ(rep.bytes_written, uint64_t(4096 + 712 + 10));
  remove_all(out);
}

TEST("undelete: colliding and unsafe names get safe unique names; nothing escapes OUT/recovered") {
  auto b = source_bytes();
  MemoryReader r(b.data(), b.size(), "card.img");
  std::string out = temp_dir();
  std::vector<DeletedFile> del;
  del.push_back(file("DIR/photo.jpg.txt", {{0, 10}}));
  del.push_back(file("DIR/photo.jpg.txt", {{10, 20}}));
  del.push_back(file("DIR/photo.jpg.txt", {{20, 30}}));
  del.push_back(file("../../escape", {{30, 40}}));
  del.push_back(file("/abs/x", {{40, 50}}));
  del.push_back(file("ctl\x01name", {{50, 60}}));
  Control control;
  UndeleteOptions opt;
  opt.out_dir = out;
  auto rep = undelete_volumes(r, one_volume(std::move(del)), opt, control);
  CHECK_EQ(rep.files[0].written_as, std::string("recovered/DIR/photo.jpg.txt"));
  CHECK_EQ(rep.files[1].written_as, std::string("recovered/DIR/photo.jpg (2).txt"));
  CHECK_EQ(rep.files[2].written_as, std::string("recovered/DIR/photo.jpg (3).txt"));
  CHECK_EQ(slurp(out + "/recovered/DIR/photo.jpg (3).txt"), range(b, 20, 30));
  CHECK_EQ(rep.files[3].written_as, std::string("recovered/__/__/escape"));
  CHECK_EQ(rep.files[4].written_as, std::string("recovered/abs/x"));
  CHECK_EQ(rep.files[5].written_as, std::string("recovered/ctl_name"));
  CHECK(!exists(out + "/../escape"));
  remove_all(out);
}

TEST("undelete refuses an existing OUT/recovered and never follows what is planted there") {
  auto b = source_bytes();
  MemoryReader r(b.data(), b.size(), "card.img");
  std::string out = temp_dir();
  CHECK_EQ(::mkdir((out + "/recovered").c_str(), 0755), 0);
  Control control;
  UndeleteOptions opt;
  opt.out_dir = out;
  CHECK_THROWS_CODE(undelete_volumes(r, one_volume({file("a.txt", {{0, 10}})}), opt, control), "EEXIST");
  CHECK_EQ(::rmdir((out + "/recovered").c_str()), 0);
  // OUT itself a symlink: refused (not followed).
  std::string link = out + "-link";
  CHECK_EQ(::symlink(out.c_str(), link.c_str()), 0);
  opt.out_dir = link;
  std::string code;
  try {
    undelete_volumes(r, one_volume({file("a.txt", {{0, 10}})}), opt, control);
  } catch (const Error& e) {
    code = e.code();
  }
  CHECK(code == "ELOOP" || code == "ENOTDIR");
  CHECK(!exists(out + "/recovered"));
  ::unlink(link.c_str());

  // Entries planted below recovered/ while the run goes (simulated: a first
  // file's sink plants a symlink where the next file and directory would go).
  std::string victim = temp_dir();
  opt.out_dir = out;
  std::vector<DeletedFile> del;
  del.push_back(file("first.txt", {{0, 10}}));
  del.push_back(file("target.txt", {{10, 20}}));
  del.push_back(file("sub/inner.txt", {{20, 30}}));
  auto plant = [&](const UndeleteReport&, const UndeletedFile& f) {
    if (f.index != 0) return;
    CHECK_EQ(::symlink((victim + "/owned.txt").c_str(), (out + "/recovered/target.txt").c_str()), 0);
    CHECK_EQ(::symlink(victim.c_str(), (out + "/recovered/sub").c_str()), 0);
  };
  auto rep = undelete_volumes(r, one_volume(std::move(del)), opt, control, plant);
  CHECK_EQ(rep.files[1].written_as, std::string("recovered/target (2).txt"));
  CHECK_EQ(rep.files[2].written_as, std::string("recovered/sub (2)/inner.txt"));
  CHECK(!exists(victim + "/owned.txt"));
  CHECK(!exists(victim + "/inner.txt"));
  CHECK_EQ(slurp(out + "/recovered/sub (2)/inner.txt"), range(b, 20, 30));
  remove_all(out);
  remove_all(victim);
}

TEST("undelete --list reads nothing but metadata and writes nothing") {
  auto b = source_bytes();
  MemoryReader r(b.data(), b.size(), "card.img");
  r.faults.push_back({0, 65536});  // any content read would fail
  Control control;
  UndeleteOptions opt;
  opt.list = true;
  opt.out_dir = "/nonexistent-blocksmith-dir";
  auto rep = undelete_volumes(r, one_volume({file("a.txt", {{0, 10}}), file("b.txt", {{10, 20}}, DeletedStatus::overwritten)}), opt, control);
  CHECK_EQ(rep.files[0].status, std::string("recoverable"));
  CHECK_EQ(rep.files[1].status, std::string("overwritten"));
  CHECK_EQ(rep.files[0].written_as, std::string(""));
}

TEST("undelete: a read error makes the file unreadable (not written); no readable volume is refused before anything is created") {
  auto b = source_bytes();
  MemoryReader r(b.data(), b.size(), "card.img");
  r.faults.push_back({8192, 8193});
  std::string out = temp_dir();
  Control control;
  UndeleteOptions opt;
  opt.out_dir = out;
  auto rep = undelete_volumes(r, one_volume({file("bad.txt", {{4096, 12288}}), file("good.txt", {{0, 100}})}), opt, control);
  CHECK_EQ(rep.files[0].status, std::string("unreadable"));
  CHECK(!exists(out + "/recovered/bad.txt"));
  CHECK_EQ(slurp(out + "/recovered/good.txt"), range(b, 0, 100));
  remove_all(out);

  out = temp_dir();
  opt.out_dir = out;
  fs::SourceVolumes none;
  none.scheme = "none";
  fs::FoundVolume v;
  v.length = 65536;
  v.problem = "not a FAT or exFAT filesystem";
  none.volumes.push_back(v);
  CHECK_THROWS_CODE(undelete_volumes(r, none, opt, control), "ERR_FS_UNSUPPORTED");
  CHECK(!exists(out + "/recovered"));
  remove_all(out);
}

TEST("undelete: a JPEG that does not decode is written and reported partial") {
  // SOI + APP0 start then garbage: a JPEG by content, and by name.
  std::vector<uint8_t> b(8192, 0x55);
  const uint8_t head[] = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0};
  std::copy(std::begin(head), std::end(head), b.begin());
  MemoryReader r(b.data(), b.size(), "card.img");
  std::string out = temp_dir();
  Control control;
  UndeleteOptions opt;
  opt.out_dir = out;
  auto rep = undelete_volumes(r, one_volume({file("x.bin", {{0, 4096}}), file("plain.txt", {{4096, 8192}})}), opt, control);
  CHECK_EQ(rep.files[0].status, std::string("partial"));
  CHECK(rep.files[0].jpeg != "complete" && !rep.files[0].jpeg.empty());
  CHECK_EQ(rep.files[0].written_as, std::string("recovered/x.bin"));
  CHECK_EQ(rep.files[1].status, std::string("recovered"));
  CHECK_EQ(rep.files[1].jpeg, std::string(""));
  CHECK_EQ(rep.partial, uint64_t(1));
  remove_all(out);
}

TEST("undelete (ext): extents placed at file offsets; the gaps and the tail read as zeros, left as holes; sizes checked") {
  auto b = source_bytes();
  MemoryReader r(b.data(), b.size(), "disk.img");
  std::string out = temp_dir();
  // sparse.bin: 1024 bytes at 0, a 3072-byte hole, 2048 bytes at 4096, then zeros up to 10000.
  DeletedFile sparse = file("dir/sparse.bin", {{8192, 9216}, {20480, 22528}});
  sparse.size = 10000;
  sparse.file_offsets = {0, 4096};
  sparse.inode = 12;
  sparse.found_in = "journal transaction 7";
  sparse.rule = fs::Recovery::extent_tree;
  // Starts with a hole.
  DeletedFile late = file("late.bin", {{1024, 2048}});
  late.size = 5120;
  late.file_offsets = {4096};
  // Back to back at offsets 0 and 1024: the same as no offsets.
  DeletedFile plain = file("plain.bin", {{0, 1024}, {3072, 4096}});
  plain.file_offsets = {0, 1024};
  // Broken layouts: not written, said why.
  DeletedFile overlap = file("overlap.bin", {{0, 1024}, {2048, 3072}});
  overlap.file_offsets = {0, 512};
  DeletedFile past = file("past.bin", {{0, 1024}});
  past.size = 1000;
  past.file_offsets = {0};
  DeletedFile count = file("count.bin", {{0, 1024}, {2048, 3072}});
  count.file_offsets = {0};
  Control control;
  UndeleteOptions opt;
  opt.out_dir = out;
  auto rep = undelete_volumes(r, one_volume({sparse, late, plain, overlap, past, count}), opt, control);
  std::string want = range(b, 8192, 9216) + std::string(3072, '\0') + range(b, 20480, 22528) + std::string(10000 - 6144, '\0');
  CHECK_EQ(rep.files[0].status, std::string("recovered"));
  CHECK_EQ(slurp(out + "/recovered/dir/sparse.bin"), want);
  CHECK_EQ(rep.files[0].sha256, carve::sha256_hex(reinterpret_cast<const uint8_t*>(want.data()), want.size()));
  CHECK_EQ(rep.files[0].bytes_written, uint64_t(10000));
  // The tail is a hole: at most the two 4 KiB blocks holding data are allocated.
  struct stat st {};
  CHECK_EQ(::stat((out + "/recovered/dir/sparse.bin").c_str(), &st), 0);
  CHECK_EQ(int64_t(st.st_size), int64_t(10000));
  CHECK(int64_t(st.st_blocks) * 512 <= 8192);
  CHECK_EQ(int64_t(st.st_mtim.tv_sec), int64_t(1700000000));
  CHECK_EQ(slurp(out + "/recovered/late.bin"), std::string(4096, '\0') + range(b, 1024, 2048));
  CHECK_EQ(slurp(out + "/recovered/plain.bin"), range(b, 0, 1024) + range(b, 3072, 4096));
  CHECK_EQ(rep.files[3].status, std::string("unreadable"));
  CHECK_EQ(rep.files[3].reason, std::string("its extent 1 goes to file offset 512, inside the one before (which ends at 1024)"));
  CHECK(!exists(out + "/recovered/overlap.bin"));
  CHECK_EQ(rep.files[4].status, std::string("unreadable"));
  CHECK_EQ(rep.files[4].reason, std::string("its extent 0 ends at file offset 1024, past its size 1000"));
  CHECK_EQ(rep.files[5].status, std::string("unreadable"));
  CHECK_EQ(rep.files[5].reason, std::string("it has 2 extents but 1 file offsets"));
  CHECK_EQ(rep.recovered, uint64_t(3));
  CHECK_EQ(rep.unreadable, uint64_t(3));
  remove_all(out);
}

TEST("undelete (ext): a JPEG with a hole is not handed to the fragment search (it takes the file as its bytes back to back)") {
  std::vector<uint8_t> b(16384, 0x55);
  const uint8_t head[] = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0};
  std::copy(std::begin(head), std::end(head), b.begin());
  MemoryReader r(b.data(), b.size(), "disk.img");
  std::string out = temp_dir();
  DeletedFile d = file("a.jpg", {{0, 4096}});
  d.size = 8192;
  d.file_offsets = {0};
  fs::SourceVolumes s = one_volume({d});
  s.volumes[0].files.cluster_size = 4096;
  s.volumes[0].files.free.add(0, 16384);
  Control control;
  UndeleteOptions opt;
  opt.out_dir = out;
  auto rep = undelete_volumes(r, s, opt, control);
  CHECK_EQ(rep.files[0].status, std::string("partial"));
  CHECK(rep.files[0].fragments.empty());
  CHECK_EQ(slurp(out + "/recovered/a.jpg"), range(b, 0, 4096) + std::string(4096, '\0'));
  remove_all(out);
}

TEST("undelete (ext3): a file whose bytes past a lost indirect block were guessed is written but reported partial, not recovered") {
  std::vector<uint8_t> b = source_bytes();
  MemoryReader r(b.data(), b.size(), "ext3.img");
  std::string out = temp_dir();
  Control control;
  UndeleteOptions opt;
  opt.out_dir = out;
  DeletedFile guessed = file("big.bin", {{0, 12288}, {13312, 20480}});
  guessed.rule = fs::Recovery::indirect_guess;
  DeletedFile mapped = file("mapped.bin", {{24576, 28672}});
  mapped.rule = fs::Recovery::block_map;
  auto rep = undelete_volumes(r, one_volume({guessed, mapped}), opt, control);
  CHECK_EQ(rep.files[0].status, std::string("partial"));
  CHECK(rep.files[0].reason.find("indirect block") != std::string::npos);
  CHECK_EQ(rep.files[0].written_as, std::string("recovered/big.bin"));
  CHECK_EQ(slurp(out + "/recovered/big.bin"), range(b, 0, 12288) + range(b, 13312, 20480));
  CHECK_EQ(rep.files[1].status, std::string("recovered"));
  CHECK_EQ(rep.partial, uint64_t(1));
  CHECK_EQ(rep.recovered, uint64_t(1));
  remove_all(out);
}
