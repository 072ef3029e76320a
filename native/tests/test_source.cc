// FileReader on real files: refusals, sizes, SEEK_DATA ranges.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "core/base/error.h"
#include "core/readers/file_reader.h"
#include "core/host/image_lock.h"
#include "test.h"

using namespace blocksmith;

namespace {
// A temporary directory removed at scope exit.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/blocksmith-core-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

void write_at(const std::string& path, uint64_t off, const std::string& bytes, uint64_t size) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT, 0644);
  CHECK(fd >= 0);
  CHECK(::ftruncate(fd, static_cast<off_t>(size)) == 0);
  CHECK(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(off)) == static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}
}  // namespace

TEST("opening a missing path fails with ENOENT naming the path and syscall") {
  try {
    FileReader::open("/nonexistent/blocksmith");
    coretest::fail(__FILE__, __LINE__, "no throw");
  } catch (const Error& e) {
    CHECK_EQ(e.code(), std::string("ENOENT"));
    CHECK_EQ(e.syscall(), std::string("open"));
    CHECK_EQ(e.path(), std::string("/nonexistent/blocksmith"));
  }
}

TEST("a directory is refused with EISDIR, a character device with ENOTBLK") {
  CHECK_THROWS_CODE(FileReader::open("/tmp"), "EISDIR");
  CHECK_THROWS_CODE(FileReader::open("/dev/null"), "ENOTBLK");
}

TEST("a FIFO is refused without hanging") {
  TempDir dir;
  std::string fifo = dir.path + "/fifo";
  CHECK(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_CODE(FileReader::open(fifo), "ENOTBLK");
}

TEST("a sparse file reports its data range and nothing else") {
  TempDir dir;
  std::string f = dir.path + "/sparse";
  write_at(f, 1 << 20, std::string(4096, 'x'), 4 << 20);
  FileReader r = FileReader::open(f);
  CHECK_EQ(r.size(), uint64_t(4 << 20));
  DataRange d = r.next_data(0);
  // The filesystem reports data at a granularity of its own blocks.
  CHECK(d.begin <= uint64_t(1 << 20));
  CHECK(d.end >= uint64_t((1 << 20) + 4096));
  CHECK(d.end <= uint64_t(2 << 20));
  DataRange after = r.next_data(d.end);
  CHECK_EQ(after.begin, uint64_t(4 << 20));
  // With SEEK_HOLE off, everything is one range.
  FileReader all = FileReader::open(f, false);
  DataRange whole = all.next_data(0);
  CHECK_EQ(whole.begin, 0u);
  CHECK_EQ(whole.end, uint64_t(4 << 20));
}

TEST("read_at returns the bytes written and stops at end of file") {
  TempDir dir;
  std::string f = dir.path + "/small";
  write_at(f, 10, "hello", 20);
  FileReader r = FileReader::open(f);
  char buf[64] = {};
  CHECK_EQ(r.read_at(buf, sizeof buf, 0), 20u);
  CHECK_EQ(std::string(buf + 10, 5), std::string("hello"));
  CHECK_EQ(r.read_at(buf, sizeof buf, 20), 0u);
}

TEST("two writers cannot both take the blocksmith image lock (shared QEMU locks alone would not exclude them)") {
  TempDir dir;
  std::string p = dir.path + "/img.raw";
  write_at(p, 0, "x", 1 << 20);
  int a = ::open(p.c_str(), O_RDWR);
  int b = ::open(p.c_str(), O_RDWR);
  CHECK(a >= 0 && b >= 0);
  take_image_lock(a, p);
  take_image_lock(b, p);  // QEMU-style shared locks: both succeed, hence the extra lock
  take_blocksmith_lock(a, p);
  bool refused = false;
  try {
    take_blocksmith_lock(b, p);
  } catch (const Error& e) {
    refused = e.code() == "EBUSY";
  }
  CHECK(refused);
  ::close(a);  // released with the open file description
  take_blocksmith_lock(b, p);
  ::close(b);
}
