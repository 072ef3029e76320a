// The pipeline over memory readers: exact extents for holes, zeros and data,
// on and off the block grid, across chunk boundaries; errors and cancellation.
#include <cstring>
#include <vector>

#include "core/extent_map.h"
#include "core/memory_reader.h"
#include "core/scan_pipeline.h"
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
  bool cancelled = false;
  try {
    run_scan(r, ScanOptions{}, sink, control);
  } catch (const Cancelled&) {
    cancelled = true;
  }
  CHECK(cancelled);
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

#include "core/punch_sink.h"

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
