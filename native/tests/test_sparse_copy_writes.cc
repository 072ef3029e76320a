// The sparse copy's two write paths (sparse_file_sink.h): runs of at least
// 64 KiB on the 4 KiB grid go to the writer threads' O_DIRECT writes, the
// others through the page cache. Proven on a real file with holes, zero
// blocks and data at odd places: byte-equal, only the data allocated, and
// the direct path taken exactly for the runs it is for.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/base/unique_fd.h"
#include "core/pipeline/control.h"
#include "core/pipeline/scan_pipeline.h"
#include "core/readers/file_reader.h"
#include "core/sinks/sparse_file_sink.h"
#include "test.h"

using namespace blocksmith;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/var/tmp/blocksmith-copy-XXXXXX";  // on a disk filesystem: O_DIRECT
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

constexpr uint64_t KiB = 1024, MiB = 1024 * KiB;

struct Run {
  uint64_t off, len;
  bool zeros;  // written as zero bytes (a zero run, allocated in the source); else random data
};

// The source: every run written, the gaps between them left as holes.
std::vector<uint8_t> make_source(const std::string& path, const std::vector<Run>& runs, uint64_t size) {
  std::vector<uint8_t> bytes(size, 0);
  std::mt19937_64 rng(19);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  CHECK(static_cast<bool>(fd));
  for (const Run& r : runs) {
    if (!r.zeros)
      for (uint64_t i = 0; i < r.len; ++i) bytes[r.off + i] = static_cast<uint8_t>(rng() | 1);
    CHECK(::pwrite(fd.get(), bytes.data() + r.off, r.len, static_cast<off_t>(r.off)) == static_cast<ssize_t>(r.len));
  }
  CHECK(::ftruncate(fd.get(), static_cast<off_t>(size)) == 0);
  CHECK(::fsync(fd.get()) == 0);
  return bytes;
}

std::vector<uint8_t> read_all(const std::string& path, uint64_t size) {
  std::vector<uint8_t> out(size);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  CHECK(static_cast<bool>(fd));
  struct stat st {};
  CHECK(::fstat(fd.get(), &st) == 0);
  CHECK_EQ(static_cast<uint64_t>(st.st_size), size);
  for (uint64_t off = 0; off < size;) {
    ssize_t n = ::pread(fd.get(), out.data() + off, size - off, static_cast<off_t>(off));
    CHECK(n > 0);
    off += static_cast<uint64_t>(n);
  }
  return out;
}

uint64_t allocated(const std::string& path) {
  struct stat st {};
  CHECK(::stat(path.c_str(), &st) == 0);
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

struct Copied {
  uint64_t data = 0, direct = 0;
};

Copied copy(const std::string& src, const std::string& dst, size_t block_size, bool direct_reads) {
  FileReader reader = FileReader::open(src, true);
  SparseFileSink sink(dst, false, {});
  sink.expect_size(reader.size());
  ScanOptions opt;
  opt.block_size = block_size;
  opt.direct = direct_reads;
  opt.chunk_size = 4 * MiB;
  Control control;
  run_scan(reader, opt, sink, control);
  sink.commit();
  return {sink.data_bytes_written(), sink.direct_bytes()};
}

// Data runs: a 9 MiB one (fills the first 8 MiB batch and goes on in the
// next), one of exactly 64 KiB, one of 60 KiB (buffered), one that starts
// and ends off the 4 KiB grid (buffered at a 512 B block size), a 4 KiB one
// between holes, and a tail of 777 bytes.
const std::vector<Run> kRuns = {
    {0, 9 * MiB, false},
    {9 * MiB + 12 * KiB, 64 * KiB, true},  // zero blocks, allocated in the source
    {9 * MiB + 76 * KiB, 64 * KiB, false},
    {9 * MiB + 144 * KiB, 60 * KiB, false},
    {10 * MiB + 512, 100 * KiB, false},
    {11 * MiB, 4 * KiB, false},
    {12 * MiB + 3 * KiB, 3 * MiB + 1536, true},
    {16 * MiB, 777, false},
};
constexpr uint64_t kSize = 16 * MiB + 777;

}  // namespace

TEST("sparse copy: runs of >= 64 KiB on the 4 KiB grid are written O_DIRECT, the rest buffered; the copy is byte-equal, holes stay holes") {
  TempDir dir;
  const std::string src = dir.path + "/src.raw";
  const std::vector<uint8_t> want = make_source(src, kRuns, kSize);
  // What cp allocates for the same copy (its data blocks and the extent
  // tree's block): the copy allocates no more.
  const std::string by_cp = dir.path + "/cp.raw";
  CHECK(std::system(("cp --sparse=always '" + src + "' '" + by_cp + "' && sync '" + by_cp + "'").c_str()) == 0);
  const uint64_t data_blocks = 9 * MiB + 64 * KiB + 60 * KiB + 104 * KiB + 4 * KiB + 4 * KiB;
  CHECK(allocated(by_cp) >= data_blocks);
  for (bool direct_reads : {false, true}) {
    const std::string dst = dir.path + "/copy-4k-" + std::to_string(direct_reads) + ".raw";
    Copied c = copy(src, dst, 4096, direct_reads);
    CHECK(read_all(dst, kSize) == want);
    // 4 KiB blocks: the 512 B-aligned run covers 26 blocks, the tail one.
    CHECK_EQ(c.data, 9 * MiB + 64 * KiB + 60 * KiB + 104 * KiB + 4 * KiB + 777);
    CHECK_EQ(c.direct, 9 * MiB + 64 * KiB + 104 * KiB);
    CHECK(allocated(dst) >= data_blocks && allocated(dst) <= allocated(by_cp));
  }
  const std::string dst = dir.path + "/copy-512.raw";
  Copied c = copy(src, dst, 512, true);
  CHECK(read_all(dst, kSize) == want);
  CHECK_EQ(c.data, 9 * MiB + 64 * KiB + 60 * KiB + 100 * KiB + 4 * KiB + 777);
  CHECK_EQ(c.direct, 9 * MiB + 64 * KiB);  // 100 KiB from byte 10 MiB + 512: off the grid, buffered
  CHECK(allocated(dst) >= data_blocks && allocated(dst) <= allocated(by_cp));
}

// The shape of the 8 GiB mix at a smaller scale: 64 MiB of 64 KiB data runs
// between 64 KiB holes (O_DIRECT, several batches at once on the two
// writers), then 4 KiB data runs between 4 KiB holes up to 136 MiB (through
// the page cache: the write-behind thread starts writeback of two 64 MiB
// windows), broken by a run that ends off the 4 KiB grid. (No direct run
// after buffered ones: the buffered runs not yet written back when a later
// direct run is allocated can still cost one more block; see the README.)
// The source is sparse (its holes are never written), so it is quick to
// make. The copy is byte-equal and allocates no more than cp's: the direct
// runs are allocated, and the buffered ones written back, in file order, so
// ext4's extent tree (a block per 340 extents) is no larger than that of a
// copy written front to back.
TEST("sparse copy: 64 KiB runs and 9k 4 KiB runs between holes, as in the mix: byte-equal, the same allocation as cp's") {
  TempDir dir;
  const std::string src = dir.path + "/src.raw";
  std::vector<Run> runs;
  uint64_t data = 0, direct = 0;
  for (uint64_t off = 0; off < 64 * MiB; off += 128 * KiB) {
    runs.push_back({off + 64 * KiB, 64 * KiB, false});
    data += 64 * KiB;
    direct += 64 * KiB;
  }
  for (uint64_t off = 64 * MiB; off < 136 * MiB; off += 8 * KiB) {
    if (off == 100 * MiB) {  // a run that ends 100 bytes into a block
      runs.push_back({off + 4 * KiB, 4 * KiB + 100, false});
      data += 8 * KiB;  // its last block whole (its other bytes are the source's zeros)
      off += 8 * KiB;
      continue;
    }
    runs.push_back({off + 4 * KiB, 4 * KiB, false});
    data += 4 * KiB;
  }
  const uint64_t size = 136 * MiB + 5;  // a tail hole, then the size off the grid
  const std::vector<uint8_t> want = make_source(src, runs, size);
  const std::string by_cp = dir.path + "/cp.raw";
  CHECK(std::system(("cp --sparse=always '" + src + "' '" + by_cp + "' && sync '" + by_cp + "'").c_str()) == 0);
  for (int i = 0; i < 3; ++i) {  // three times: the writers' interleaving varies
    const std::string dst = dir.path + "/copy-" + std::to_string(i) + ".raw";
    Copied c = copy(src, dst, 4096, true);
    CHECK(read_all(dst, size) == want);
    CHECK_EQ(c.data, data);
    CHECK_EQ(c.direct, direct);
    CHECK(allocated(dst) >= data);
    CHECK_EQ(allocated(dst), allocated(by_cp));
  }
}
