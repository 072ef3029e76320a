// Reader and Sink conformance: the same behaviour tests over every row of the
// table in conformance.cc (memory, files, a loop device, qcow2 images), each
// holding the same logical content. What is checked is the contract written
// in core/pipeline/reader.h; a row that breaks it fails here with the row's name.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "conformance.h"
#include "core/base/error.h"
#include "core/sinks/counting_sink.h"
#include "core/sinks/extent_map_sink.h"
#include "core/readers/file_reader.h"
#include "core/sinks/punch_sink.h"
#include "core/pipeline/scan_pipeline.h"
#include "core/sinks/sparse_file_sink.h"
#include "test.h"

using namespace blocksmith;
using conformance::Content;
using conformance::Source;

namespace {

std::string str(const std::vector<DataRange>& v) {
  std::ostringstream os;
  for (const auto& r : v) os << "[" << r.begin << "," << r.end << ")";
  return os.str();
}
std::string str(const std::vector<Extent>& v) {
  std::ostringstream os;
  const char* names[] = {"hole", "zero", "data"};
  for (const auto& e : v) os << "{" << e.offset << "+" << e.length << " " << names[int(e.kind)] << "}";
  return os.str();
}

void add_range(std::vector<DataRange>& v, uint64_t b, uint64_t e) {
  if (e <= b) return;
  if (!v.empty() && v.back().end == b) {
    v.back().end = e;
  } else {
    v.push_back({b, e});
  }
}

bool all_zero(const Content& c, uint64_t b, uint64_t e) {
  return std::all_of(c.bytes.begin() + b, c.bytes.begin() + e, [](uint8_t x) { return x == 0; });
}

// The grid blocks of `bs` holding a non-zero byte, merged: what every reader
// must call data when its hole edges fall on that grid.
std::vector<DataRange> data_blocks(const Content& c, uint64_t bs) {
  std::vector<DataRange> out;
  for (uint64_t b = 0; b < c.size(); b += bs) {
    const uint64_t e = std::min(c.size(), b + bs);
    if (!all_zero(c, b, e)) add_range(out, b, e);
  }
  return out;
}

// Walks next_data from 0 as the pipeline does (from the end of each range),
// checking each answer; returns the holes it reported, merged.
std::vector<DataRange> walk_holes(Reader& r) {
  std::vector<DataRange> holes;
  const uint64_t size = r.size();
  uint64_t pos = 0;
  for (int steps = 0; pos < size; ++steps) {
    CHECK(steps < 100000);
    DataRange d = r.next_data(pos);
    CHECK(d.begin >= pos && d.begin <= d.end && d.end <= size);
    add_range(holes, pos, d.begin);
    if (d.begin == size) break;
    CHECK(d.end > d.begin);
    pos = d.end;
  }
  return holes;
}

bool on_grid(const std::vector<DataRange>& holes, uint64_t bs, uint64_t size) {
  for (const auto& h : holes) {
    if (h.begin % bs != 0) return false;
    if (h.end % bs != 0 && h.end != size) return false;
  }
  return true;
}

std::vector<uint8_t> read_all(Reader& r, uint64_t step) {
  std::vector<uint8_t> out(r.size());
  std::vector<uint8_t> buf(step);
  for (uint64_t off = 0; off < r.size();) {
    size_t n = r.read_at(buf.data(), buf.size(), off);
    CHECK_EQ(n, static_cast<size_t>(std::min<uint64_t>(step, r.size() - off)));
    std::copy(buf.begin(), buf.begin() + n, out.begin() + off);
    off += n;
  }
  return out;
}

struct Scan {
  std::vector<Extent> extents;
  ExtentTotals totals;    // ExtentMapSink's
  ExtentTotals counted;   // CountingSink's in front of it
};

Scan scan(Reader& r, const ScanOptions& opt) {
  ExtentMapSink map;
  CountingSink counting(&map);
  Control control;
  run_scan(r, opt, counting, control);
  return {map.extents(), map.totals(), counting.totals()};
}

std::vector<DataRange> of_kind(const std::vector<Extent>& v, ExtentKind k) {
  std::vector<DataRange> out;
  for (const auto& e : v)
    if (e.kind == k) add_range(out, e.offset, e.offset + e.length);
  return out;
}

// Offsets worth reading at: sector, block, cluster and chunk edges, every
// layout edge, and the end, each with its neighbours.
std::vector<uint64_t> boundaries(const Content& c) {
  std::set<uint64_t> s;
  auto near = [&](uint64_t x) {
    for (int64_t d : {-1, 0, 1})
      if (static_cast<int64_t>(x) + d >= 0) s.insert(x + d);
  };
  for (uint64_t x : {uint64_t{0}, uint64_t{512}, uint64_t{4096}, uint64_t{65536}, uint64_t{1} << 20, uint64_t{2} << 20,
                     uint64_t{3} << 20})
    if (x <= c.size()) near(x);
  for (const auto& p : c.layout) near(p.off), near(p.off + p.len);
  for (uint64_t back : {uint64_t{4096}, uint64_t{1536}, uint64_t{512}, uint64_t{2}})
    if (c.size() >= back) near(c.size() - back);
  near(c.size());
  s.insert(c.size() + 4096);
  s.insert(c.size() + (uint64_t{1} << 30));
  return {s.begin(), s.end()};
}

// ---- the behaviours ------------------------------------------------------

void size_is_the_content_size(Source& s) {
  auto r = s.open();
  CHECK_EQ(r->size(), s.content->size());
}

void read_at_every_boundary(Source& s) {
  const Content& c = *s.content;
  auto r = s.open();
  const uint64_t size = c.size();
  std::vector<uint8_t> buf;
  for (uint64_t off : boundaries(c)) {
    std::vector<uint64_t> lens = {1, 2, 511, 4096, 4097, 65539};
    // Past the end: short reads that stop exactly at the size (the whole
    // rest only near the end and from 0, to stay quick on compressed rows).
    if (off == 0 || off + 2 * 65536 >= size) lens.push_back(size > off ? size - off + 12345 : 12345);
    for (uint64_t len : lens) {
      buf.assign(len, 0xCC);
      const size_t want = off >= size ? 0 : static_cast<size_t>(std::min<uint64_t>(len, size - off));
      const size_t got = r->read_at(buf.data(), len, off);
      if (got != want) {
        coretest::fail(__FILE__, __LINE__, "read_at(" + std::to_string(len) + " at " + std::to_string(off) + ") returned " +
                                               std::to_string(got) + ", expected " + std::to_string(want));
      }
      // got > 0 only inside the content (off < size): no iterator past its end.
      if (got > 0 && !std::equal(buf.begin(), buf.begin() + got, c.bytes.begin() + off))
        coretest::fail(__FILE__, __LINE__, "read_at(" + std::to_string(len) + " at " + std::to_string(off) + ") returned other bytes");
    }
  }
}

void read_at_odd_steps(Source& s) {
  auto r = s.open();
  for (uint64_t step : {uint64_t{12345}, uint64_t{4096 * 3 + 512}, uint64_t{1} << 20})
    CHECK(read_all(*r, step) == s.content->bytes);
}

void next_data_never_lies(Source& s) {
  const Content& c = *s.content;
  auto r = s.open();
  const uint64_t size = c.size();
  // From every boundary, not just where the pipeline asks.
  for (uint64_t off : boundaries(c)) {
    DataRange d = r->next_data(off);
    if (off >= size) {
      CHECK_EQ(d.begin, size);
      CHECK_EQ(d.end, size);
      continue;
    }
    if (!(d.begin >= off && d.begin <= d.end && d.end <= size) || (d.begin < size && d.end == d.begin))
      coretest::fail(__FILE__, __LINE__, "next_data(" + std::to_string(off) + ") = [" + std::to_string(d.begin) + "," +
                                             std::to_string(d.end) + ") is not a range in [off, size]");
    if (!all_zero(c, off, d.begin))
      coretest::fail(__FILE__, __LINE__, "next_data(" + std::to_string(off) + ") skips non-zero bytes before " + std::to_string(d.begin));
  }
  // A reported hole reads as zeros through the reader itself, too.
  std::vector<DataRange> holes = walk_holes(*r);
  for (const auto& h : holes) {
    if (!all_zero(c, h.begin, h.end)) coretest::fail(__FILE__, __LINE__, "reported hole [" + std::to_string(h.begin) + "," + std::to_string(h.end) + ") holds data");
    std::vector<uint8_t> buf(static_cast<size_t>(h.end - h.begin), 0xCC);
    CHECK_EQ(r->read_at(buf.data(), buf.size(), h.begin), buf.size());
    CHECK(std::all_of(buf.begin(), buf.end(), [](uint8_t x) { return x == 0; }));
  }
  // Hole edges fall on 512-byte sectors (or at the size).
  if (!on_grid(holes, 512, size)) coretest::fail(__FILE__, __LINE__, "hole edges off the sector grid: " + str(holes));
}

void reports_the_holes_it_has(Source& s) {
  auto r = s.open();
  std::vector<DataRange> holes = walk_holes(*r);
  if (s.holes.never) {
    if (!holes.empty()) coretest::fail(__FILE__, __LINE__, "reports holes though it has none: " + str(holes));
    return;
  }
  for (const auto& want : s.holes.at_least) {
    bool covered = std::any_of(holes.begin(), holes.end(), [&](const DataRange& h) { return h.begin <= want.begin && want.end <= h.end; });
    if (!covered)
      coretest::fail(__FILE__, __LINE__, "[" + std::to_string(want.begin) + "," + std::to_string(want.end) + ") is not reported as a hole; holes: " + str(holes));
  }
}

// For a block size: runs cover [0, size) once, in order and maximal; holes
// are exactly what next_data reported; data runs hold every non-zero byte
// and lie in blocks that hold one (exactly those blocks when the hole edges
// fall on the grid); CountingSink and ExtentMapSink count the same.
void check_classification(Source& s, Reader& r, const Scan& got, uint64_t bs, const std::vector<DataRange>& holes) {
  const Content& c = *s.content;
  const std::string where = " (block size " + std::to_string(bs) + "): " + str(got.extents);
  uint64_t pos = 0;
  for (size_t i = 0; i < got.extents.size(); ++i) {
    const Extent& e = got.extents[i];
    if (e.offset != pos || e.length == 0) coretest::fail(__FILE__, __LINE__, "extents do not tile the source" + where);
    if (i > 0 && got.extents[i - 1].kind == e.kind) coretest::fail(__FILE__, __LINE__, "adjacent extents of one kind" + where);
    pos += e.length;
  }
  if (pos != c.size()) coretest::fail(__FILE__, __LINE__, "extents end at " + std::to_string(pos) + where);
  if (of_kind(got.extents, ExtentKind::hole).size() != holes.size() ||
      !std::equal(holes.begin(), holes.end(), of_kind(got.extents, ExtentKind::hole).begin(),
                  [](const DataRange& a, const DataRange& b) { return a.begin == b.begin && a.end == b.end; }))
    coretest::fail(__FILE__, __LINE__, "holes differ from next_data's " + str(holes) + where);
  const std::vector<DataRange> data = of_kind(got.extents, ExtentKind::data);
  const std::vector<DataRange> blocks = data_blocks(c, bs);
  for (const auto& d : data) {
    bool inside = std::any_of(blocks.begin(), blocks.end(), [&](const DataRange& b) { return b.begin <= d.begin && d.end <= b.end; });
    if (!inside || all_zero(c, d.begin, d.end)) coretest::fail(__FILE__, __LINE__, "data run [" + std::to_string(d.begin) + "," + std::to_string(d.end) + ") outside the non-zero blocks" + where);
  }
  for (const auto& e : got.extents)
    if (e.kind != ExtentKind::data && !all_zero(c, e.offset, e.offset + e.length))
      coretest::fail(__FILE__, __LINE__, "non-zero bytes outside the data runs at " + std::to_string(e.offset) + where);
  if (on_grid(holes, bs, c.size()) && str(data) != str(blocks))
    coretest::fail(__FILE__, __LINE__, "data runs " + str(data) + " are not the non-zero blocks " + str(blocks) + where);
  CHECK_EQ(got.totals.hole + got.totals.zero + got.totals.data, c.size());
  CHECK_EQ(got.counted.hole, got.totals.hole);
  CHECK_EQ(got.counted.zero, got.totals.zero);
  CHECK_EQ(got.counted.data, got.totals.data);
  (void)r;
}

void scan_classifies_by_content(Source& s) {
  auto r = s.open();
  const std::vector<DataRange> holes = walk_holes(*r);
  for (uint64_t bs : {uint64_t{512}, uint64_t{4096}, uint64_t{65536}}) {
    ScanOptions opt;
    opt.block_size = bs;
    check_classification(s, *r, scan(*r, opt), bs, holes);
  }
  // At 512 B every reader's hole edges are on the grid: every reader
  // classifies exactly the sectors holding a non-zero byte as data.
  ScanOptions opt;
  opt.block_size = 512;
  CHECK(str(of_kind(scan(*r, opt).extents, ExtentKind::data)) == str(data_blocks(*s.content, 512)));
}

void scan_is_the_same_for_any_threads_and_chunks(Source& s) {
  auto r = s.open();
  ScanOptions base;
  const std::string want = str(scan(*r, base).extents);
  for (size_t readers : {size_t{1}, size_t{2}, size_t{4}}) {
    for (size_t chunk : {size_t{4096}, size_t{65536} + 4096, size_t{1} << 20, size_t{4} << 20}) {
      ScanOptions opt;
      opt.readers = readers;
      opt.chunk_size = chunk;
      opt.buffers = 3;
      std::string got = str(scan(*r, opt).extents);
      if (got != want)
        coretest::fail(__FILE__, __LINE__, std::to_string(readers) + " readers, chunk " + std::to_string(chunk) + ": " + got + " != " + want);
    }
  }
}

// Records every sink call; cancels the scan at the first call at or past
// `cancel_at` (when set).
class RecordingSink final : public Sink {
 public:
  RecordingSink(Control& control, uint64_t cancel_at) : control_(control), cancel_at_(cancel_at) {}
  void on_hole(uint64_t o, uint64_t l) override { call(o, l, ExtentKind::hole); }
  void on_zero(uint64_t o, uint64_t l) override { call(o, l, ExtentKind::zero); }
  void on_data(uint64_t o, const uint8_t*, size_t l) override { call(o, l, ExtentKind::data); }
  void on_end(uint64_t) override { ended = true; }

  ExtentMapSink map;
  bool ended = false;
  uint64_t cancel_end = 0;  // end of the call that cancelled
  uint64_t last_end = 0;

 private:
  void call(uint64_t o, uint64_t l, ExtentKind k) {
    if (k == ExtentKind::hole) map.on_hole(o, l);
    if (k == ExtentKind::zero) map.on_zero(o, l);
    if (k == ExtentKind::data) map.on_data(o, nullptr, l);
    last_end = o + l;
    if (!control_.cancelled() && o + l > cancel_at_) {
      control_.cancel();
      cancel_end = o + l;
    }
  }
  Control& control_;
  uint64_t cancel_at_;
};

void cancel_stops_the_scan(Source& s) {
  auto r = s.open();
  const uint64_t size = s.content->size();
  {  // Cancelled before the start: nothing is delivered.
    Control control;
    RecordingSink sink(control, UINT64_MAX);
    control.cancel();
    bool cancelled = false;
    try {
      run_scan(*r, ScanOptions{}, sink, control);
    } catch (const Cancelled&) {
      cancelled = true;
    }
    CHECK(cancelled);
    CHECK(sink.map.extents().empty());
    CHECK(!sink.ended);
  }
  // Mid-scan, from the sink: run_scan throws Cancelled, on_end is never
  // called, what was delivered is a prefix of the full map, and at most the
  // rest of the chunk being delivered follows the cancel.
  ScanOptions opt;
  opt.chunk_size = 64 << 10;
  const std::vector<Extent> full = scan(*r, opt).extents;
  for (uint64_t at : {uint64_t{0}, size / 2, size > 0 ? size - 1 : 0}) {
    if (size == 0) break;  // nothing to cancel in the middle of
    Control control;
    RecordingSink sink(control, at);
    bool cancelled = false;
    try {
      run_scan(*r, opt, sink, control);
    } catch (const Cancelled&) {
      cancelled = true;
    }
    const std::string where = "cancelled past " + std::to_string(at) + ": " + str(sink.map.extents());
    if (!cancelled) coretest::fail(__FILE__, __LINE__, "no Cancelled; " + where);
    CHECK(!sink.ended);
    if (sink.last_end > sink.cancel_end + opt.chunk_size) coretest::fail(__FILE__, __LINE__, "delivered on to " + std::to_string(sink.last_end) + "; " + where);
    const auto& got = sink.map.extents();
    CHECK(got.size() <= full.size());
    for (size_t i = 0; i < got.size(); ++i) {
      const bool last = i + 1 == got.size();
      if (got[i].offset != full[i].offset || got[i].kind != full[i].kind ||
          (last ? got[i].length > full[i].length : got[i].length != full[i].length))
        coretest::fail(__FILE__, __LINE__, "not a prefix of " + str(full) + "; " + where);
    }
  }
}

void progress_is_monotone_and_ends_at_size(Source& s) {
  auto r = s.open();
  const uint64_t size = s.content->size();
  for (size_t readers : {size_t{1}, size_t{2}}) {
    Control control;
    control.progress_interval = std::chrono::milliseconds(0);
    std::vector<std::pair<uint64_t, uint64_t>> seen;
    control.on_progress = [&](uint64_t done, uint64_t total) { seen.emplace_back(done, total); };
    ExtentMapSink sink;
    ScanOptions opt;
    opt.readers = readers;
    opt.chunk_size = 64 << 10;
    run_scan(*r, opt, sink, control);
    CHECK(!seen.empty());
    for (size_t i = 0; i < seen.size(); ++i) {
      CHECK_EQ(seen[i].second, size);
      CHECK(seen[i].first <= size);
      if (i > 0 && seen[i].first < seen[i - 1].first)
        coretest::fail(__FILE__, __LINE__, "progress went back from " + std::to_string(seen[i - 1].first) + " to " + std::to_string(seen[i].first));
    }
    CHECK_EQ(seen.back().first, size);
    CHECK_EQ(control.done(), size);
  }
}

// ---- the sinks -----------------------------------------------------------

uint64_t allocated(int fd) {
  struct stat st {};
  CHECK(::fstat(fd, &st) == 0);
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

uint64_t fs_block_of(const std::string& path) {
  struct stat st {};
  CHECK(::stat(path.c_str(), &st) == 0);
  return st.st_blksize > 0 ? static_cast<uint64_t>(st.st_blksize) : 4096;
}

// What a file holding only `data` may allocate: its runs in whole fs blocks,
// and one block of metadata (ext4 counts the extent tree block that a file
// of more than four extents needs in st_blocks).
uint64_t allocation_bound(const std::vector<DataRange>& data, uint64_t blk) {
  uint64_t n = blk;
  for (const auto& d : data) n += ((d.end + blk - 1) / blk - d.begin / blk) * blk;
  return n;
}

std::vector<uint8_t> read_fd(int fd, uint64_t size) {
  std::vector<uint8_t> out(size);
  for (uint64_t off = 0; off < size;) {
    ssize_t n = ::pread(fd, out.data() + off, size - off, static_cast<off_t>(off));
    CHECK(n > 0);
    off += static_cast<uint64_t>(n);
  }
  return out;
}

void sparse_copy_is_byte_equal(Source& s) {
  const Content& c = *s.content;
  auto r = s.open();
  static int n = 0;
  const std::string target = conformance::scratch_dir() + "/copy-" + std::to_string(++n) + ".raw";
  SparseFileSink sink(target, false);
  CountingSink counted(&sink);
  Control control;
  run_scan(*r, ScanOptions{}, counted, control);
  sink.commit();
  const Scan alone = scan(*r, ScanOptions{});
  CHECK_EQ(counted.totals().data, alone.totals.data);
  CHECK_EQ(counted.totals().zero, alone.totals.zero);
  CHECK_EQ(counted.totals().hole, alone.totals.hole);
  CHECK_EQ(sink.data_bytes_written(), alone.totals.data);
  UniqueFd fd(::open(target.c_str(), O_RDONLY | O_CLOEXEC));
  CHECK(static_cast<bool>(fd));
  struct stat st {};
  CHECK(::fstat(fd.get(), &st) == 0);
  CHECK_EQ(static_cast<uint64_t>(st.st_size), c.size());
  CHECK(read_fd(fd.get(), c.size()) == c.bytes);
  // Zero blocks and holes stay holes: only the data runs are allocated.
  const uint64_t bound = allocation_bound(of_kind(alone.extents, ExtentKind::data), fs_block_of(target));
  if (allocated(fd.get()) > bound)
    coretest::fail(__FILE__, __LINE__, "the copy allocates " + std::to_string(allocated(fd.get())) + " bytes, more than its data runs' " + std::to_string(bound));
}

void punch_in_place_keeps_the_content(Source& s) {
  const Content& c = *s.content;
  auto ip = s.in_place();
  UniqueFd backing(::open(ip->backing_file.c_str(), O_RDONLY | O_CLOEXEC));
  CHECK(static_cast<bool>(backing));
  const uint64_t before = allocated(backing.get());
  FileReader reader = FileReader::adopt(UniqueFd(::dup(ip->fd)), ip->path);
  CHECK_EQ(reader.size(), c.size());
  PunchSink punch(ip->fd, ip->path, ip->align, ip->is_block_device, false);
  CountingSink counted(&punch);
  Control control;
  ScanOptions opt;
  opt.drop_behind = true;  // as sparsify runs it
  run_scan(reader, opt, counted, control);
  CHECK(read_fd(ip->fd, c.size()) == c.bytes);
  CHECK(read_fd(backing.get(), c.size()) == c.bytes);
  CHECK_EQ(punch.stats().zero_bytes, counted.totals().zero);
  // Every zero run is freed: the backing file keeps only the data runs.
  const uint64_t after = allocated(backing.get());
  const uint64_t bound = allocation_bound(data_blocks(c, 4096), fs_block_of(ip->backing_file));
  if (after > bound)
    coretest::fail(__FILE__, __LINE__, "after punching " + std::to_string(after) + " bytes allocated, more than the data's " + std::to_string(bound));
  if (counted.totals().zero >= (64 << 10)) CHECK(after < before);
}

struct Behaviour {
  const char* name;
  void (*fn)(Source&);
};

const Behaviour kReaderBehaviours[] = {
    {"size is the content's size", size_is_the_content_size},
    {"read_at at every boundary returns the content, short only at the end", read_at_every_boundary},
    {"read_at in odd-sized steps returns the whole content", read_at_odd_steps},
    {"next_data never reports non-zero bytes as a hole; holes read as zeros", next_data_never_lies},
    {"next_data reports the holes the medium has (or none, for devices)", reports_the_holes_it_has},
    {"run_scan classifies data by content at 512 B, 4 KiB and 64 KiB blocks", scan_classifies_by_content},
    {"run_scan gives one map for any reader threads and chunk size", scan_is_the_same_for_any_threads_and_chunks},
    {"run_scan stops with Cancelled, before the start or mid-scan", cancel_stops_the_scan},
    {"run_scan progress is monotone and ends at the size", progress_is_monotone_and_ends_at_size},
    {"SparseFileSink writes a byte-equal copy with only the data allocated", sparse_copy_is_byte_equal},
};

// Registers "conformance[ROW]: BEHAVIOUR" for every row (names must outlive
// the registry, hence the deque).
struct RegisterAll {
  RegisterAll() {
    static std::deque<std::string> names;
    auto add = [&](const std::string& row, const Behaviour& b) {
      names.push_back("conformance[" + row + "]: " + b.name);
      coretest::Registrar(names.back().c_str(), [row, fn = b.fn] { fn(conformance::source(row)); });
    };
    for (const auto& row : conformance::source_names())
      for (const auto& b : kReaderBehaviours) add(row, b);
    for (const auto& row : conformance::in_place_names())
      add(row, {"PunchSink in place leaves the content byte-equal and frees the zero runs", punch_in_place_keeps_the_content});
  }
} register_all;

}  // namespace
