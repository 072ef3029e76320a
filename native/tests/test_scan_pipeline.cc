// The pipeline over memory readers: exact extents for holes, zeros and data,
// on and off the block grid, across chunk boundaries; errors and cancellation.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>
#include <vector>

#include "core/sinks/extent_map_sink.h"
#include "core/readers/memory_reader.h"
#include "core/pipeline/scan_pipeline.h"
#include "test.h"

using namespace blocksmith;

static std::ostream& operator<<(std::ostream& os, const std::vector<Extent>& v) {
  for (const auto& e : v) os << "{" << e.offset << "," << e.length << "," << int(e.kind) << "}";
  return os;
}

static std::vector<Extent> scan(MemoryReader& r, ScanOptions opt = {}) {
  ExtentMapSink sink;
  Control control;
  run_scan(r, opt, sink, control);
  return sink.extents();
}

// True when run_scan ended with Cancelled.
static bool scan_cancelled(MemoryReader& r, const ScanOptions& opt, Sink& sink, Control& control) {
  try {
    run_scan(r, opt, sink, control);
  } catch (const Cancelled&) {
    return true;
  }
  return false;
}

TEST("all-zero source is one zero extent; empty source has no extents") {
  std::vector<uint8_t> buf(1 << 20, 0);
  MemoryReader r(buf.data(), buf.size());
  CHECK_EQ(scan(r), (std::vector<Extent>{{0, 1 << 20, ExtentKind::zero}}));
  MemoryReader empty(buf.data(), 0);
  CHECK(scan(empty).empty());
}

TEST("data and zero blocks merge into exact extents across chunk boundaries") {
  const size_t bs = 4096;
  std::vector<uint8_t> buf(bs * 40, 0);
  for (size_t b : {3, 4, 5, 6, 7, 8, 20, 39}) buf[b * bs + 100] = 0xAB;
  MemoryReader r(buf.data(), buf.size());
  ScanOptions opt;
  opt.chunk_size = bs * 4;  // the data run 3..8 spans two chunk boundaries
  std::vector<Extent> expected = {
      {0, 3 * bs, ExtentKind::zero},  {3 * bs, 6 * bs, ExtentKind::data}, {9 * bs, 11 * bs, ExtentKind::zero},
      {20 * bs, bs, ExtentKind::data}, {21 * bs, 18 * bs, ExtentKind::zero}, {39 * bs, bs, ExtentKind::data}};
  CHECK_EQ(scan(r, opt), expected);
}

TEST("holes are reported as holes and never read; a short last block counts") {
  const size_t bs = 4096;
  std::vector<uint8_t> buf(bs * 10 + 1000, 0);
  buf[bs * 10 + 999] = 1;  // the very last byte
  MemoryReader r(buf.data(), buf.size());
  r.holes = {{bs * 2, bs * 6}};
  r.faults = {{bs * 2, bs * 6}};  // reading the hole would fail the test
  std::vector<Extent> expected = {{0, bs * 2, ExtentKind::zero},
                                  {bs * 2, bs * 4, ExtentKind::hole},
                                  {bs * 6, bs * 4, ExtentKind::zero},
                                  {bs * 10, 1000, ExtentKind::data}};
  CHECK_EQ(scan(r), expected);
}

TEST("a data range that starts off the block grid is classified on the grid, clipped") {
  std::vector<uint8_t> buf(16384, 0);
  buf[5000] = 7;
  MemoryReader r(buf.data(), buf.size());
  r.holes = {{0, 3000}};
  std::vector<Extent> expected = {{0, 3000, ExtentKind::hole},
                                  {3000, 1096, ExtentKind::zero},
                                  {4096, 4096, ExtentKind::data},
                                  {8192, 8192, ExtentKind::zero}};
  CHECK_EQ(scan(r), expected);
}

TEST("streamed extents: the same list as kept ones, in batches of the size asked, none kept") {
  const size_t bs = 4096;
  std::vector<uint8_t> buf(bs * 1000, 0);
  for (size_t b = 0; b < 1000; b += 3) buf[b * bs + 7] = 1;  // data, zero, zero, data, ...
  MemoryReader r(buf.data(), buf.size());
  ScanOptions opt;
  opt.chunk_size = bs * 16;
  std::vector<Extent> kept = scan(r, opt);
  CHECK_EQ(kept.size(), size_t(667));
  std::vector<Extent> streamed;
  std::vector<size_t> sizes;
  ExtentMapSink sink([&](std::vector<Extent>&& batch) {
    sizes.push_back(batch.size());
    streamed.insert(streamed.end(), batch.begin(), batch.end());
  }, 100);
  Control control;
  run_scan(r, opt, sink, control);
  CHECK_EQ(streamed, kept);
  CHECK(sizes == (std::vector<size_t>{100, 100, 100, 100, 100, 100, 67}));
  CHECK(sink.extents().empty());
  CHECK_EQ(sink.extent_count(), uint64_t(667));
}

TEST("streamed extents: a scan cancelled midway has sent only finished extents, each exact") {
  const size_t bs = 4096;
  std::vector<uint8_t> buf(bs * 4000, 0);
  for (size_t b = 0; b < 4000; b += 2) buf[b * bs] = 1;  // data, zero, data, ...
  MemoryReader r(buf.data(), buf.size());
  ScanOptions opt;
  opt.chunk_size = bs * 64;
  opt.readers = 1;
  const std::vector<Extent> whole = scan(r, opt);
  std::vector<Extent> sent;
  Control control;
  ExtentMapSink sink([&](std::vector<Extent>&& batch) {
    sent.insert(sent.end(), batch.begin(), batch.end());
    control.cancel();  // after the first batch
  }, 10);
  CHECK(scan_cancelled(r, opt, sink, control));
  CHECK(sent.size() >= 10 && sent.size() < whole.size());
  CHECK(std::equal(sent.begin(), sent.end(), whole.begin()));
}

TEST("a read error stops the scan with EIO") {
  std::vector<uint8_t> buf(1 << 20, 0);
  MemoryReader r(buf.data(), buf.size());
  r.faults = {{500000, 500001}};
  ExtentMapSink sink;
  Control control;
  CHECK_THROWS_CODE(run_scan(r, ScanOptions{}, sink, control), "EIO");
}

TEST("an invalid block size is refused with EINVAL") {
  std::vector<uint8_t> buf(4096, 0);
  MemoryReader r(buf.data(), buf.size());
  ExtentMapSink sink;
  Control control;
  ScanOptions opt;
  opt.block_size = 3000;
  CHECK_THROWS_CODE(run_scan(r, opt, sink, control), "EINVAL");
}

TEST("cancelling stops the scan with Cancelled") {
  std::vector<uint8_t> buf(8 << 20, 1);
  MemoryReader r(buf.data(), buf.size());
  ExtentMapSink sink;
  Control control;
  control.cancel();
  CHECK(scan_cancelled(r, ScanOptions{}, sink, control));
}

TEST("totals add up to the size for every block size") {
  std::vector<uint8_t> buf(3 << 20, 0);
  for (size_t i = 0; i < buf.size(); i += 7919) buf[i] = 1;
  for (size_t bs = 512; bs <= (1u << 20); bs <<= 1) {
    MemoryReader r(buf.data(), buf.size());
    ExtentMapSink sink;
    Control control;
    ScanOptions opt;
    opt.block_size = bs;
    run_scan(r, opt, sink, control);
    CHECK_EQ(sink.totals().hole + sink.totals().zero + sink.totals().data, uint64_t(buf.size()));
    CHECK_EQ(control.done(), uint64_t(buf.size()));
  }
}

// In-place sparsify must not punch anything it could not read: a read error
// stops the scan before the pending zero run is flushed, so the file keeps
// every allocated block (a real file under the punch sink, the source a
// memory reader with the same zeros and a fault injected at 6 MiB).
#include <fcntl.h>
#include <unistd.h>

#include "core/sinks/punch_sink.h"

TEST("a read error in the middle of an in-place run punches nothing at or after the unreadable range") {
  char tmpl[] = "/tmp/blocksmith-eio-XXXXXX";
  int fd = ::mkstemp(tmpl);
  CHECK(fd >= 0);
  const size_t size = 8 << 20;
  std::vector<uint8_t> zeros(size, 0);
  CHECK(::pwrite(fd, zeros.data(), size, 0) == static_cast<ssize_t>(size));
  CHECK(::fsync(fd) == 0);
  MemoryReader r(zeros.data(), size, tmpl);
  r.faults = {{6 << 20, (6 << 20) + 1}};
  PunchSink sink(fd, tmpl, 4096, false, false);
  Control control;
  ScanOptions opt;
  opt.chunk_size = 1 << 20;  // several chunks read (zeros) before the fault
  CHECK_THROWS_CODE(run_scan(r, opt, sink, control), "EIO");
  CHECK_EQ(::lseek(fd, 6 << 20, SEEK_HOLE), static_cast<off_t>(size));  // no hole from the fault on
  ::close(fd);
  ::unlink(tmpl);
}

// A sink that records every call, in order.
struct Recorder final : Sink {
  std::vector<std::string> calls;
  std::vector<uint8_t> bytes;  // what on_data gave, zeros for on_zero / on_hole
  uint64_t first = UINT64_MAX;
  uint64_t stop_at = UINT64_MAX;  // done() once this offset was delivered
  uint64_t reached = 0;
  bool ended = false;
  void at(uint64_t off, uint64_t len) {
    if (first == UINT64_MAX) first = off;
    reached = off + len;
  }
  void on_hole(uint64_t off, uint64_t len) override {
    at(off, len);
    calls.push_back("hole " + std::to_string(off) + "+" + std::to_string(len));
    bytes.resize(bytes.size() + len, 0);
  }
  void on_zero(uint64_t off, uint64_t len) override {
    at(off, len);
    calls.push_back("zero " + std::to_string(off) + "+" + std::to_string(len));
    bytes.resize(bytes.size() + len, 0);
  }
  void on_data(uint64_t off, const uint8_t* p, size_t len) override {
    at(off, len);
    calls.push_back("data " + std::to_string(off) + "+" + std::to_string(len));
    bytes.insert(bytes.end(), p, p + len);
  }
  void on_unreadable(uint64_t off, uint64_t len) override {
    calls.push_back("unreadable " + std::to_string(off) + "+" + std::to_string(len));
  }
  void on_end(uint64_t) override { ended = true; }
  bool done() const override { return reached >= stop_at; }
};

static std::vector<uint8_t> noise(size_t n, uint32_t seed) {
  std::vector<uint8_t> b(n);
  for (auto& x : b) {
    seed = seed * 1103515245 + 12345;
    x = static_cast<uint8_t>((seed >> 16) | 1);  // never zero
  }
  return b;
}

TEST("start: the sink sees [start, size) exactly, progress counts from start") {
  std::vector<uint8_t> buf = noise(100000, 1);
  MemoryReader r(buf.data(), buf.size());
  r.faults = {{0, 4096}};  // before start: reading it would fail the scan
  ScanOptions opt;
  opt.start = 5000;  // off the grid: the first piece ends on it
  opt.chunk_size = 16384;
  Recorder sink;
  Control control;
  run_scan(r, opt, sink, control);
  CHECK_EQ(sink.first, uint64_t(5000));
  CHECK(sink.ended);
  CHECK(sink.bytes == std::vector<uint8_t>(buf.begin() + 5000, buf.end()));
  CHECK_EQ(sink.calls.front(), std::string("data 5000+15480"));  // a chunk from the block it starts in: to 20480
  CHECK_EQ(control.total(), uint64_t(95000));
  CHECK_EQ(control.done(), uint64_t(95000));
}

TEST("classify = false: zero blocks are delivered as data, holes still as holes") {
  const size_t bs = 4096;
  std::vector<uint8_t> buf(bs * 8, 0);
  buf[bs * 7] = 9;
  MemoryReader r(buf.data(), buf.size());
  r.holes = {{bs * 2, bs * 3}};
  ScanOptions opt;
  opt.classify = false;
  Recorder sink;
  Control control;
  run_scan(r, opt, sink, control);
  CHECK_EQ(sink.calls.size(), size_t(3));
  CHECK_EQ(sink.calls[0], "data 0+" + std::to_string(2 * bs));
  CHECK_EQ(sink.calls[1], "hole " + std::to_string(2 * bs) + "+" + std::to_string(bs));
  CHECK_EQ(sink.calls[2], "data " + std::to_string(3 * bs) + "+" + std::to_string(5 * bs));
}

TEST("unreadable_sector: EIO is skipped in sector steps, zero-filled and told first; without it the scan stops") {
  std::vector<uint8_t> buf = noise(1 << 18, 2);
  MemoryReader r(buf.data(), buf.size());
  // Three sectors in one piece (one range), one sector at a piece boundary.
  r.faults = {{100 * 512, 103 * 512}, {(1 << 16) - 512, (1 << 16) + 512}};
  ScanOptions opt;
  opt.chunk_size = 1 << 16;
  opt.unreadable_sector = 512;
  opt.classify = false;
  Recorder sink;
  Control control;
  run_scan(r, opt, sink, control);
  std::vector<std::string> unreadable;
  for (auto& c : sink.calls)
    if (c.rfind("unreadable", 0) == 0) unreadable.push_back(c);
  CHECK_EQ(unreadable.size(), size_t(3));
  CHECK_EQ(unreadable[0], std::string("unreadable 51200+1536"));
  CHECK_EQ(unreadable[1], std::string("unreadable 65024+512"));  // the end of the first piece
  CHECK_EQ(unreadable[2], std::string("unreadable 65536+512"));  // the start of the second
  CHECK_EQ(sink.calls[0], std::string("unreadable 51200+1536"));  // before the bytes of its piece
  std::vector<uint8_t> expected = buf;
  for (auto [b, e] : r.faults) std::fill(expected.begin() + b, expected.begin() + e, 0);
  CHECK(sink.bytes == expected);
  CHECK(sink.ended);

  Recorder strict;
  opt.unreadable_sector = 0;
  Control c2;
  CHECK_THROWS_CODE(run_scan(r, opt, strict, c2), "EIO");
}

// Counts the bytes read through it.
struct CountingReader final : Reader {
  explicit CountingReader(Reader& r) : r_(r) {}
  uint64_t size() const override { return r_.size(); }
  const std::string& path() const override { return r_.path(); }
  size_t read_at(void* buf, size_t len, uint64_t off) override {
    read += len;
    return r_.read_at(buf, len, off);
  }
  bool concurrent_reads() const override { return true; }
  std::atomic<uint64_t> read{0};
  Reader& r_;
};

TEST("done(): the scan ends there without on_end, having read at most the pieces in flight") {
  std::vector<uint8_t> buf = noise(64 << 20, 3);
  MemoryReader mem(buf.data(), buf.size());
  CountingReader r(mem);
  ScanOptions opt;
  opt.chunk_size = 1 << 20;
  opt.buffers = 4;
  Recorder sink;
  sink.stop_at = 3 << 20;
  Control control;
  run_scan(r, opt, sink, control);
  CHECK(!sink.ended);
  CHECK_EQ(sink.reached, uint64_t(3) << 20);
  CHECK(r.read.load() <= (uint64_t(3 + 4) << 20));
}

#include <sys/mman.h>

#include "core/readers/file_reader.h"

// Forwards to a FileReader and counts which reads the pipeline chose.
struct Watched final : Reader {
  explicit Watched(FileReader& r) : r_(r) {}
  uint64_t size() const override { return r_.size(); }
  const std::string& path() const override { return r_.path(); }
  size_t read_at(void* buf, size_t len, uint64_t off) override {
    buffered += len;
    return r_.read_at(buf, len, off);
  }
  bool concurrent_reads() const override { return true; }
  bool open_uncached() override { return r_.open_uncached(); }
  bool cached(uint64_t off, size_t len) const override {
    bool c = r_.cached(off, len);
    (c ? cached_pieces : cold_pieces)++;
    return c;
  }
  size_t read_uncached(void* buf, size_t len, uint64_t off) override {
    uncached += len;
    return r_.read_uncached(buf, len, off);
  }
  FileReader& r_;
  std::atomic<uint64_t> buffered{0}, uncached{0};
  mutable std::atomic<int> cached_pieces{0}, cold_pieces{0};
};

// Pages of [0, len) of fd in the page cache.
static size_t resident_pages(int fd, size_t len) {
  void* map = ::mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, 0);
  CHECK(map != MAP_FAILED);
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> vec((len + page - 1) / page);
  CHECK(::mincore(map, len, vec.data()) == 0);
  ::munmap(map, len);
  size_t n = 0;
  for (unsigned char v : vec) n += v & 1;
  return n;
}

TEST("direct: cold pieces are read around the page cache, cached ones through it; the bytes are the same") {
  // /var/tmp: on disk where /tmp may be tmpfs.
  char tmpl[] = "/var/tmp/blocksmith-direct-XXXXXX";
  int fd = ::mkstemp(tmpl);
  CHECK(fd >= 0);
  const size_t size = (5 << 20) + 1000;  // a partial last block
  std::vector<uint8_t> buf = noise(size, 4);
  CHECK(::pwrite(fd, buf.data(), size, 0) == static_cast<ssize_t>(size));
  CHECK(::fdatasync(fd) == 0);
  CHECK(::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0);
  FileReader file = FileReader::open(tmpl);
  Watched r(file);
  ScanOptions opt;
  opt.direct = true;
  opt.start = 12345;  // an unaligned first piece
  opt.chunk_size = 1 << 20;
  Recorder cold;
  Control c1;
  run_scan(r, opt, cold, c1);
  CHECK(cold.bytes == std::vector<uint8_t>(buf.begin() + 12345, buf.end()));
  const bool direct = file.open_uncached();  // Linux >= 6.5 on a filesystem with O_DIRECT
  if (direct) {
    CHECK_EQ(r.uncached.load(), uint64_t(size - 12345));
    CHECK_EQ(r.buffered.load(), uint64_t(0));
    CHECK_EQ(r.cached_pieces.load(), 0);
    CHECK_EQ(r.cold_pieces.load(), 5);
    CHECK(resident_pages(fd, size) == 0);  // neither the reads nor any read-ahead went through the cache
  }

  // Warm: every piece is copied from the cache (the bytes are the same).
  std::vector<uint8_t> back(size);
  CHECK(::pread(fd, back.data(), size, 0) == static_cast<ssize_t>(size));
  r.cached_pieces = 0;
  r.cold_pieces = 0;
  Recorder warm;
  Control c2;
  run_scan(r, opt, warm, c2);
  CHECK(warm.bytes == cold.bytes);
  if (direct) {
    CHECK_EQ(r.cached_pieces.load(), 5);
    CHECK_EQ(r.cold_pieces.load(), 0);
  }
  ::close(fd);
  ::unlink(tmpl);
}

TEST("pieces are whole blocks, at least one; every reader has a buffer and one more is delivered") {
  ScanOptions opt;
  opt.block_size = 4096;
  opt.chunk_size = (1 << 20) + 1000;  // rounded down to whole blocks
  opt.buffers = 8;
  ScanOptions s = settled_scan_options(opt, 2);
  CHECK_EQ(s.chunk_size, size_t(1 << 20));
  CHECK_EQ(s.buffers, size_t(8));
  opt.chunk_size = 100;  // less than a block: one block
  opt.buffers = 0;
  s = settled_scan_options(opt, 1);
  CHECK_EQ(s.chunk_size, size_t(4096));
  CHECK_EQ(s.buffers, size_t(2));
  s = settled_scan_options(opt, 4);
  CHECK_EQ(s.buffers, size_t(5));
  // The rest passes through.
  opt.start = 12345;
  opt.direct = true;
  s = settled_scan_options(opt, 1);
  CHECK_EQ(s.start, uint64_t(12345));
  CHECK(s.direct);
  opt.block_size = 3000;
  CHECK_THROWS_CODE(settled_scan_options(opt, 1), "EINVAL");
}

TEST("direct, classify = false: a cached piece reaches the sink in 1 MiB slices, in order; the bytes are the same") {
  char tmpl[] = "/var/tmp/blocksmith-slices-XXXXXX";
  int fd = ::mkstemp(tmpl);
  CHECK(fd >= 0);
  const size_t size = (9 << 20) + 1000;  // pieces of 4 MiB: 4 + 4 + 1 MiB and 1000 bytes
  std::vector<uint8_t> buf = noise(size, 5);
  CHECK(::pwrite(fd, buf.data(), size, 0) == static_cast<ssize_t>(size));
  std::vector<uint8_t> back(size);
  CHECK(::pread(fd, back.data(), size, 0) == static_cast<ssize_t>(size));  // in the page cache
  FileReader file = FileReader::open(tmpl);
  ScanOptions opt;
  opt.direct = true;
  opt.classify = false;
  opt.chunk_size = 4 << 20;
  opt.start = 12345;  // an unaligned first piece
  Recorder rec;
  Control c;
  run_scan(file, opt, rec, c);
  CHECK(rec.bytes == std::vector<uint8_t>(buf.begin() + 12345, buf.end()));
  if (file.open_uncached() && file.cached(0, size)) {  // the cached pieces were deferred
    // Pieces end 4 MiB after the block their start lies in; each is cut in
    // 1 MiB slices from its start.
    std::vector<std::string> want;
    uint64_t off = 12345;
    const uint64_t first_end = 12345 / opt.block_size * opt.block_size + (4 << 20);
    for (uint64_t piece_end : {first_end, first_end + (4 << 20), uint64_t(size)})
      for (; off < piece_end; off = std::min<uint64_t>(piece_end, off + (1 << 20)))
        want.push_back("data " + std::to_string(off) + "+" + std::to_string(std::min<uint64_t>(piece_end, off + (1 << 20)) - off));
    CHECK_EQ(want.size(), size_t(9));  // 4 + 4 + 1
    CHECK(rec.calls == want);
  }
  ::close(fd);
  ::unlink(tmpl);
}
