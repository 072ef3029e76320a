#include "core/operations/carve.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "core/base/error.h"
#include "core/pipeline/scan_pipeline.h"
#include "core/carve/block_size.h"
#include "core/carve/output.h"
#include "core/carve/sha256.h"
#include "core/carve/signature.h"

namespace blocksmith::carve {

std::string carved_name(uint64_t offset) {
  char name[40];
  std::snprintf(name, sizeof name, "f%014llu.jpg", static_cast<unsigned long long>(offset));
  return name;
}

namespace {

// Reads every byte, holes too (use_seek_hole = false; the binding opens
// files that way as well, this covers any other Reader).
class EveryByte final : public Reader {
 public:
  explicit EveryByte(Reader& r) : r_(r) {}
  uint64_t size() const override { return r_.size(); }
  const std::string& path() const override { return r_.path(); }
  size_t read_at(void* buf, size_t len, uint64_t off) override { return r_.read_at(buf, len, off); }
  size_t read_cached(void* buf, size_t len, uint64_t off) override { return r_.read_cached(buf, len, off); }
  bool concurrent_reads() const override { return r_.concurrent_reads(); }
  bool open_uncached() override { return r_.open_uncached(); }
  bool cached(uint64_t off, size_t len) const override { return r_.cached(off, len); }
  size_t read_uncached(void* buf, size_t len, uint64_t off) override { return r_.read_uncached(buf, len, off); }
  void advise_sequential() override { r_.advise_sequential(); }

 private:
  Reader& r_;
};

// The scan of one range: a consumer of the scan pipeline (run_scan reads,
// with read-ahead, direct reads and EIO skipping), which hands it the
// source's bytes in order. Candidates are searched for in the pipeline's
// buffers where they lie; only a candidate that needs the bytes of the next
// buffer (and the last 3 bytes of each, a signature may straddle) is kept in
// a window of its own, which grows until the check decides.
class Driver final : public Sink {
 public:
  // A candidate that needs more bytes waits for at least this many.
  static constexpr uint64_t kMinWindow = uint64_t(1) << 20;

  using ProgressHook = std::function<void(uint64_t done, bool force)>;
  Driver(Reader& reader, const CarveOptions& opt, Control& control, const FileSink& sink, ProgressHook progress)
      : reader_(reader), opt_(opt), control_(control), sink_(sink), progress_(std::move(progress)) {
    for (auto& [sha, off] : opt_.known) seen_.emplace(sha, off);  // a resumed run dedupes against the earlier files
  }

  // Pipeline settings; run() uses them (recheck_held reads less ahead).
  ScanOptions scan_options;

  CarveReport run();
  // With reassembly on, partial candidates wait for the end of the run (a
  // continuation may lie in a part scanned later): these, and the ranges
  // of the files recovered, for resolve_partials.
  std::vector<CarvedFile>& held_partials() { return held_; }
  const std::vector<Fragment>& recovered() const { return recovered_; }
  // Called about once a second from the scan with its position: every
  // candidate before it has been written (and passed to the sink) or held.
  void set_checkpoint(std::function<void(uint64_t pos)> hook) { checkpoint_ = std::move(hook); }
  const CarveReport& counters() const { return rep_; }

  // Sink: the bytes of [start, ...) in order, until done().
  void on_data(uint64_t off, const uint8_t* bytes, size_t len) override;
  void on_hole(uint64_t off, uint64_t len) override { zeros(off, len); }
  void on_zero(uint64_t off, uint64_t len) override { zeros(off, len); }
  void on_free(uint64_t off, uint64_t len) override { skipped(off, len); }
  void on_unreadable(uint64_t off, uint64_t len) override { add_unreadable(off, len); }
  bool done() const override { return done_; }

 private:
  void scan(const uint8_t* d, uint64_t base, size_t n, bool in_window);
  void scan_window() { scan(win_.data(), win_off_, win_.size(), true); }
  void keep(const uint8_t* d, uint64_t base, size_t n, size_t from, bool in_window);
  bool carry_starts_candidate(const uint8_t* p, size_t n) const;
  void zeros(uint64_t off, uint64_t len);
  void skipped(uint64_t off, uint64_t len);
  void tick();
  void add_unreadable(uint64_t off, uint64_t len);
  void emit(uint64_t abs, const uint8_t* data, const CheckResult& res, bool thumbnail, uint64_t parent);
  void thumbnails(uint64_t abs, const uint8_t* data, const CheckResult& res);
  void hold_rejected(uint64_t abs, const CheckResult& res);
  uint64_t indirect_block_inside(uint64_t abs, const uint8_t* data, const CheckResult& res) const;

  Reader& reader_;
  const CarveOptions& opt_;
  Control& control_;
  const FileSink& sink_;
  ProgressHook progress_;
  std::function<void(uint64_t)> checkpoint_;
  CarveReport rep_;
  uint64_t size_ = 0, scan_end_ = 0;
  uint32_t align_ = 1;
  uint32_t fs_block_ = 0;          // the filesystem's block size (ext2/ext3 indirect blocks), 0: unknown
  size_t chunk_ = 0;
  uint64_t pos_ = 0;               // next byte to search: every candidate before it was decided
  std::vector<uint8_t> win_;       // bytes kept from earlier pieces, contiguous, up to the last byte delivered
  uint64_t win_off_ = 0;           // source offset of win_[0] (== pos_ while it is not empty)
  bool pending_ = false;           // the candidate at pos_ needs more bytes
  bool cut_ = false;               // the window ends where a skipped range starts (out of scope)
  size_t want_ = 0;                // ...and is checked again when the window holds this many
  CheckResume resume_;             // ...going on from here
  uint64_t resume_at_ = UINT64_MAX;  // the candidate resume_ belongs to
  bool done_ = false;              // past the range (or cancelled): the pipeline stops
  std::chrono::steady_clock::time_point last_checkpoint_{};
  uint64_t files_at_checkpoint_ = 0;
  std::unordered_map<std::string, uint64_t> seen_;  // sha256 -> offset (dedupe)
  bool made_partial_ = false, made_thumbs_ = false;
  std::vector<CarvedFile> held_;
  std::vector<Fragment> recovered_;
};

void Driver::add_unreadable(uint64_t off, uint64_t len) {
  if (!rep_.unreadable.empty() && rep_.unreadable.back().end == off) {
    rep_.unreadable.back().end = off + len;
  } else {
    rep_.unreadable.push_back({off, off + len});
  }
}

void Driver::emit(uint64_t abs, const uint8_t* data, const CheckResult& res, bool thumbnail, uint64_t parent) {
  CarvedFile f;
  f.offset = abs;
  f.length = res.length;
  f.status = res.status;
  f.info = res.info;
  f.parent = parent;
  if (res.status == Status::partial) {
    f.broke_at = abs + res.broke_at;
    f.reason = res.reason;
    if (opt_.reassemble && !thumbnail) {
      held_.push_back(std::move(f));  // filtered and written by resolve_partials
      return;
    }
  }
  if (!thumbnail && res.status == Status::complete) recovered_.push_back({abs, res.length});
  if (res.length < opt_.min_size || res.info.width < opt_.min_width || res.info.height < opt_.min_height) {
    if (!thumbnail) rep_.filtered++;
    return;
  }
  f.sha256 = sha256_hex(data, res.length);
  std::string dir = opt_.out_dir;
  if (thumbnail) {
    f.kind = "thumbnail";
    f.path = "thumbnails/" + carved_name(abs);
    if (!made_thumbs_ && opt_.write) ensure_dir(dir + "/thumbnails");
    made_thumbs_ = true;
    dir += "/thumbnails";
    rep_.thumbnails++;
  } else if (res.status == Status::partial) {
    if (!opt_.partials) return;
    f.kind = "partial";
    f.path = "partial/" + carved_name(abs);
    if (!made_partial_ && opt_.write) ensure_dir(dir + "/partial");
    made_partial_ = true;
    dir += "/partial";
    rep_.partial++;
  } else {
    f.kind = "complete";
    f.path = carved_name(abs);
    if (opt_.dedupe) {
      auto [it, inserted] = seen_.emplace(f.sha256, abs);
      if (!inserted) {
        f.kind = "duplicate";
        f.duplicate_of = carved_name(it->second);
        f.path.clear();
        rep_.duplicates++;
        sink_(f);
        return;
      }
    }
    rep_.complete++;
  }
  if (opt_.write) {
    if (write_file(dir, carved_name(abs), data, res.length, opt_.keep_identical) == Written::created)
      rep_.bytes_written += res.length;
  }
  sink_(f);
}

// Where an ext2/ext3 indirect block lies inside a file that checked
// complete: after its first 12 blocks, or fewer when some of them were holes
// (a sparse file's blocks of zeros are not stored). Its data may run over
// one unnoticed: structure-only checks (arithmetic, lossless) do not decode
// it, and inside a marker segment nothing checks it (with as many holes
// before it as the block is long, the segments even line up). The block
// lists the blocks right after it (a file written in one go on a filesystem
// at the source's start): 32-bit little-endian numbers, mostly going up,
// zeros after them. Compressed data never looks so. Returns how many blocks
// precede it, 0 for none.
uint64_t Driver::indirect_block_inside(uint64_t abs, const uint8_t* data, const CheckResult& res) const {
  const uint64_t bs = fs_block_;
  if (!opt_.reassemble || bs < 1024 || bs > 65536 || abs % bs != 0) return 0;
  for (uint64_t d = 12; d >= 1; d--) {
    if (res.length < (d + 1) * bs) continue;
    const uint8_t* b = data + d * bs;
    auto num = [&](size_t i) { return uint64_t(b[4 * i]) | uint64_t(b[4 * i + 1]) << 8 | uint64_t(b[4 * i + 2]) << 16 | uint64_t(b[4 * i + 3]) << 24; };
    if (num(0) * bs != abs + (d + 1) * bs) continue;
    size_t n = 0;
    while (n < bs / 4 && num(n) != 0) n++;
    bool tail = true;
    for (size_t i = 4 * n; i < bs && tail; i++) tail = b[i] == 0;
    size_t up = 0;
    for (size_t i = 1; i < n; i++) up += num(i) > num(i - 1);
    if (tail && (n < 2 || up * 10 >= (n - 1) * 9)) return d;
  }
  return 0;
}

// A whole header whose scan broke before 1 KiB of data (too little to
// write as partial), or a header that broke after its first 512 bytes: the
// first fragment of a file may end there.
void Driver::hold_rejected(uint64_t abs, const CheckResult& res) {
  CarvedFile f;
  f.offset = abs;
  f.status = Status::reject;
  f.info = res.info;
  f.broke_at = abs + res.broke_at;
  f.reason = res.reason;
  f.header_end = res.header_end > 1 ? res.header_end : 0;
  held_.push_back(std::move(f));
}

void Driver::thumbnails(uint64_t abs, const uint8_t* data, const CheckResult& res) {
  for (auto [b, e] : res.info.app_payloads) {
    size_t i = b;
    while (i < e) {
      size_t k = find_soi(data, e, i);
      if (k == SIZE_MAX) break;
      CheckResult t = check_jpeg(data + k, e - k, true);
      if (t.status == Status::complete) {
        emit(abs + k, data + k, t, true, abs);
        i = k + t.length;
      } else {
        i = k + 1;
      }
    }
  }
}

void Driver::tick() {
  const uint64_t at = std::min(pos_, scan_end_);
  progress_(at - rep_.start, false);
  if (!checkpoint_) return;
  auto now = std::chrono::steady_clock::now();
  // Every second, and after 32 more files at most every 100 ms (a run that
  // fails soon after, on a full output filesystem, resumes from near where
  // it stopped; a checkpoint copies the lists of held candidates and
  // recovered files, so not after every file).
  auto since = now - last_checkpoint_;
  const uint64_t files = rep_.complete + rep_.partial + held_.size();
  if (since >= std::chrono::seconds(1) || (since >= std::chrono::milliseconds(100) && files >= files_at_checkpoint_ + 32)) {
    last_checkpoint_ = now;
    files_at_checkpoint_ = files;
    checkpoint_(at);
  }
}

// The window keeps d[from, n), at source offset base + from: a candidate
// that needs the bytes after them, or the last bytes of a piece.
void Driver::keep(const uint8_t* d, uint64_t base, size_t n, size_t from, bool in_window) {
  if (in_window) {
    win_.erase(win_.begin(), win_.begin() + static_cast<std::ptrdiff_t>(from));
    // After a large file the window does not stay huge (smaller ones keep
    // their memory: new pages cost a fault each).
    if (win_.capacity() > 4 * chunk_ && win_.size() <= chunk_) win_.shrink_to_fit();
  } else {
    win_.assign(d + from, d + n);
  }
  win_off_ = base + from;
  pos_ = win_off_;
}

// Whether a signature starts in the kept bytes (at most 3) and ends in the
// piece at p.
bool Driver::carry_starts_candidate(const uint8_t* p, size_t n) const {
  uint8_t joined[6];
  const size_t c = std::min<size_t>(win_.size(), 3), k = std::min<size_t>(n, 3);
  std::memcpy(joined, win_.data(), c);
  std::memcpy(joined + c, p, k);
  return find_soi(joined, c + k, 0, win_off_, align_) != SIZE_MAX;
}

void Driver::on_data(uint64_t off, const uint8_t* p, size_t n) {
  rep_.bytes_scanned += n;
  while (n > 0 && !done_) {
    const bool joined = !win_.empty() && win_off_ + win_.size() == off;
    size_t take = 0;
    if (joined && pending_) {
      take = std::min(n, want_ > win_.size() ? want_ - win_.size() : size_t(1));  // what the candidate waits for
    } else if (joined && (n < 4 || carry_starts_candidate(p, n))) {
      take = std::min<size_t>(n, 3);  // the rest of the signature; its check asks for more
    }
    if (take == 0) {
      win_.clear();  // the last bytes before start nothing
      pos_ = std::max(pos_, off);
      scan(p, off, n, false);
      return;
    }
    win_.insert(win_.end(), p, p + take);
    off += take;
    p += take;
    n -= take;
    // Then the rest of the piece where it lies, once the window is used up.
    if (!pending_ || win_.size() >= want_ || off >= size_) scan_window();
  }
}

// Holes and zero blocks: no JPEG starts in zeros, nor does a signature end
// in them; a candidate waiting for more bytes gets them (as many as it may
// still need), as if they had been read.
void Driver::zeros(uint64_t off, uint64_t len) {
  while (!done_ && pending_ && len > 0) {
    const size_t room = want_ > win_.size() ? want_ - win_.size() : 1;
    const size_t k = static_cast<size_t>(std::min<uint64_t>(len, room));
    win_.resize(win_.size() + k, 0);
    off += k;
    len -= k;
    if (win_.size() >= want_ || off >= size_) scan_window();
  }
  if (done_ || len == 0) return;
  win_.clear();
  pos_ = std::max(pos_, off + len);
  tick();
  if (pos_ >= scan_end_) done_ = true;
}

// Out of scope (CarveOptions::skip, delivered as the pipeline's free
// ranges): never read. A candidate waiting for more bytes is checked with
// what it has, as at the end of the source: in scope free the bytes after
// belong to a live file, not to it, so its data breaks here and the fragment
// search (which takes no continuation from a skipped range) looks for the
// rest in what is in scope. No signature straddles the gap either.
void Driver::skipped(uint64_t off, uint64_t len) {
  if (!done_ && pending_) {
    cut_ = true;
    scan_window();
    cut_ = false;
  }
  if (done_) return;
  win_.clear();
  pending_ = false;
  pos_ = std::max(pos_, off + len);
  tick();
  if (pos_ >= scan_end_) done_ = true;
}

// Searches d[0, n), the bytes at source offset `base`, from pos_: until
// they are used up, a candidate needs the bytes that follow, or the range
// is done. `in_window`: d is win_.
void Driver::scan(const uint8_t* d, uint64_t base, size_t n, bool in_window) {
  for (;;) {
    if (control_.cancelled()) {
      rep_.cancelled = true;
      done_ = true;
      return;
    }
    tick();
    if (pos_ >= scan_end_) {
      done_ = true;
      return;
    }
    const size_t from = static_cast<size_t>(pos_ - base);
    const size_t i = find_soi(d, n, from, base, align_);
    if (i == SIZE_MAX) {
      // Keep the last 3 bytes (a signature may straddle into the next piece).
      keep(d, base, n, n >= 3 ? std::max(from, n - 3) : from, in_window);
      pending_ = false;
      if (pos_ >= scan_end_) done_ = true;
      return;
    }
    const uint64_t abs = base + i;
    if (abs >= scan_end_) {
      done_ = true;
      return;
    }
    const size_t avail = n - i;
    const bool eof = base + n >= size_ || (in_window && cut_);
    const bool at_limit = avail >= opt_.max_size;
    const uint8_t* at = d + i;
    if (abs != resume_at_) {  // a new candidate: nothing to go on from
      resume_.clear();
      resume_at_ = abs;
    }
    CheckOptions check;
    check.resume = &resume_;  // a file that needs more bytes is not decoded again from its start
    CheckResult res = check_jpeg(at, std::min<size_t>(avail, opt_.max_size), eof || at_limit, check);
    if (res.status == Status::need_more) {
      // Checked again with twice the bytes (at least kMinWindow), going on
      // from where this check stopped: a sequential scan two MCU rows
      // before, a progressive one from its start. Only the bytes it waits
      // for are copied; after it the search goes on in the pipeline's piece.
      keep(d, base, n, i, in_window);
      pending_ = true;
      want_ = static_cast<size_t>(std::min<uint64_t>(std::max(kMinWindow, 2 * avail), opt_.max_size));
      return;
    }
    pending_ = false;
    rep_.candidates++;
    const uint64_t listed_after = res.status == Status::complete ? indirect_block_inside(abs, at, res) : 0;
    if (listed_after) {
      // Its bytes ran on over an ext2/ext3 indirect block to the EOI of
      // blocks that may not be its own. Held as partial up to that block:
      // the fragment search reads the blocks in the order the list gives.
      CheckResult cut = res;
      cut.status = Status::partial;
      cut.length = cut.broke_at = size_t(listed_after * fs_block_);
      cut.reason = "an ext2/ext3 indirect block (a list of block numbers) at " + std::to_string(abs + cut.length) +
                   " inside its data";
      emit(abs, at, cut, false, 0);
      pos_ = abs + res.length;
    } else if (res.status == Status::complete) {
      emit(abs, at, res, false, 0);
      if (opt_.thumbnails) thumbnails(abs, at, res);
      pos_ = abs + res.length;
    } else {
      if (res.status == Status::partial) emit(abs, at, res, false, 0);
      else if (opt_.reassemble && (res.header_end > 1 || res.broke_at > 512)) hold_rejected(abs, res);
      // Its bytes ran into a skipped range (out of scope): a first fragment
      // that ends inside its marker segments (a large EXIF) looks like a
      // header cut short here, while the whole-source scan would have walked
      // on into the next file's bytes and held it. The search decides.
      else if (opt_.reassemble && in_window && cut_) hold_rejected(abs, res);
      else rep_.rejected++;
      pos_ = abs + std::max<size_t>(res.header_end, 1);
    }
  }
}

CarveReport Driver::run() {
  auto t0 = std::chrono::steady_clock::now();
  size_ = reader_.size();
  rep_.source = reader_.path();
  rep_.size = size_;
  rep_.start = std::min(opt_.offset, size_);
  scan_end_ = opt_.length || opt_.length_set ? std::min(size_, rep_.start + opt_.length) : size_;
  rep_.end = scan_end_;
  align_ = std::max<uint32_t>(opt_.sector_size, 1);
  if (opt_.reassemble) fs_block_ = opt_.block_size ? opt_.block_size : filesystem_grid(reader_).size;
  chunk_ = std::max<size_t>(opt_.chunk_size, 1 << 16);
  pos_ = rep_.start;
  win_.reserve(2 * chunk_);  // one allocation: new pages cost a fault each
  tick();
  if (control_.cancelled()) {
    rep_.cancelled = true;
  } else if (pos_ < scan_end_) {
    ScanOptions so = scan_options;
    so.start = rep_.start;
    so.chunk_size = chunk_;
    so.classify = false;  // every byte is searched anyway
    so.unreadable_sector = std::max<uint32_t>(opt_.io_sector, 1);
    so.direct = opt_.direct_io;
    so.free = opt_.skip;  // out of scope: not read (on_free)
    EveryByte every(reader_);
    Reader& source = opt_.use_seek_hole ? reader_ : every;
    // The pipeline's own progress and cancellation are not the carve's
    // (parts add up their progress; a stop returns a report).
    Control pipeline;
    run_scan(source, so, *this, pipeline);
  }
  rep_.next_offset = rep_.cancelled ? std::min(pos_, scan_end_) : scan_end_;
  progress_(rep_.next_offset - rep_.start, true);
  rep_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep_;
}

// The bytes of a partial file again; what cannot be read is zeros, as it
// was in the scan (which recorded the range).
void read_zero_filled(Reader& reader, uint8_t* dst, size_t len, uint64_t off, uint32_t sector) {
  size_t n = 0;
  try {
    n = reader.read_at(dst, len, off);
  } catch (const Error& e) {
    if (e.errnum() != EIO) throw;
    n = read_skipping_unreadable(reader, dst, len, off, sector, [](uint64_t, uint64_t) {});
  }
  std::memset(dst + n, 0, len - n);
}

// What the fragment search may not take: the recovered fragments, and what
// each held candidate was found with (its own wherever it lies in the scan).
// `starts`: where every file and candidate begins, to find the block grid.
Claims claims_of(Reader& reader, const CarveOptions& opt, const std::vector<CarvedFile>& partials,
                 const std::vector<Fragment>& recovered, std::vector<uint64_t>& starts) {
  Claims claims;
  for (auto& r : recovered) {
    claims.add(r.offset, r.length);
    starts.push_back(r.offset);
  }
  // Out of scope: no continuation starts there. In scope free those bytes
  // belong to live files (a deleted file's later fragments lie in free space
  // too, as the filesystem freed all of its blocks), in scope allocated they
  // are free: either way not the scanned files' own.
  if (opt.skip)
    for (const auto& r : opt.skip->ranges()) claims.add(r.begin, r.end - r.begin);
  for (auto& f : partials) {
    starts.push_back(f.offset);
    // A partial's verified bytes, a header's marker segments.
    uint64_t own = f.status == Status::partial ? f.length : f.header_end;
    // A file damaged in place: its data after the damage is its own too.
    if (opt.reassemble && f.status == Status::partial && f.broke_at >= f.offset) {
      uint64_t tail = damaged_tail_end(reader, f.broke_at, opt.max_size - std::min(opt.max_size, f.broke_at - f.offset));
      if (tail > f.offset + own) own = tail - f.offset;
    }
    claims.add_candidate(f.offset, f.offset, own);
  }
  return claims;
}

// The fragment search's limits, on the block grid (--block-size, else the
// filesystem's, else the one the files' starts fall on).
ReassembleOptions reassemble_options(Reader& reader, const CarveOptions& opt, const std::vector<uint64_t>& starts) {
  ReassembleOptions ro;
  if (opt.reassemble) {
    BlockGrid g = opt.block_size ? offsets_grid(starts, opt.block_size) : filesystem_grid(reader);
    if (g.size == 0) g = offsets_grid(starts);
    ro.block_size = g.size;
    ro.block_phase = g.phase;
  }
  ro.sparse = true;  // ext2/ext3 files with holes among their first 12 blocks
  ro.max_gap = opt.max_gap;
  ro.max_attempts = opt.max_attempts;
  ro.max_size = opt.max_size;
  return ro;
}

// Resolves the held candidates one by one, in offset order: each becomes a
// reassembled file, a partial one, or is counted as filtered or rejected.
class PartialResolver {
 public:
  PartialResolver(Reader& reader, const CarveOptions& opt, Claims& claims, const ReassembleOptions& ro,
                  CarveReport& rep, const FileSink& sink)
      : reader_(reader), opt_(opt), claims_(claims), ro_(ro), rep_(rep), sink_(sink) {}

  void resolve(CarvedFile& f) {
    if (claims_.overlaps(f.offset, f.offset + 1)) {  // inside a file recovered from fragments
      if (f.status == Status::reject) rep_.rejected++;
      return;
    }
    std::string refused;  // a continuation that decoded but was not used, and why
    const bool filtered = f.info.width < opt_.min_width || f.info.height < opt_.min_height;
    if (opt_.reassemble && !filtered && reassembled(f, refused)) return;
    if (f.status == Status::reject) {
      rep_.rejected++;  // held only for the search
      return;
    }
    if (!refused.empty()) f.reason += "; " + refused;
    if (filtered || f.length < opt_.min_size) {
      rep_.filtered++;
      return;
    }
    if (opt_.partials) write_partial(f);
  }

 private:
  // True when f was completed from its fragments (then written, or counted
  // as filtered); else `refused` says why a continuation was not used.
  bool reassembled(CarvedFile& f, std::string& refused) {
    Reassembly ra = reassemble(reader_, f.offset, f.broke_at, claims_, ro_, &bytes_);
    refused = ra.refused;
    if (!ra.ok) return false;
    for (auto& fr : ra.fragments)
      if (!fr.zeros) claims_.add(fr.offset, fr.length);
    f.kind = "reassembled";
    f.status = Status::complete;
    f.length = bytes_.size();
    f.fragments = std::move(ra.fragments);
    // Held from a header cut short (its frame not yet read): what the whole file says.
    f.info = std::move(ra.info);
    f.broke_at = 0;
    f.reason.clear();
    if (f.length < opt_.min_size) {
      rep_.filtered++;
      return true;
    }
    f.sha256 = sha256_hex(bytes_.data(), bytes_.size());
    f.path = carved_name(f.offset);
    if (opt_.write) {
      if (write_file(opt_.out_dir, f.path, bytes_.data(), bytes_.size(), opt_.keep_identical) == Written::created)
        rep_.bytes_written += bytes_.size();
    }
    rep_.reassembled++;
    sink_(f);
    return true;
  }

  // The candidate's own bytes as they are, to partial/.
  void write_partial(CarvedFile& f) {
    bytes_.resize(f.length);
    read_zero_filled(reader_, bytes_.data(), bytes_.size(), f.offset, opt_.io_sector);
    f.sha256 = sha256_hex(bytes_.data(), bytes_.size());
    f.kind = "partial";
    f.path = "partial/" + carved_name(f.offset);
    if (opt_.write) {
      if (!made_partial_dir_) ensure_dir(opt_.out_dir + "/partial");
      made_partial_dir_ = true;
      if (write_file(opt_.out_dir + "/partial", carved_name(f.offset), bytes_.data(), bytes_.size(),
                     opt_.keep_identical) == Written::created)
        rep_.bytes_written += bytes_.size();
    }
    rep_.partial++;
    sink_(f);
  }

  Reader& reader_;
  const CarveOptions& opt_;
  Claims& claims_;
  const ReassembleOptions& ro_;
  CarveReport& rep_;
  const FileSink& sink_;
  std::vector<uint8_t> bytes_;  // one buffer for every file
  bool made_partial_dir_ = false;
};

// After the scan: each held partial candidate is reassembled from its
// fragments when the search finds them, else written to partial/ as before.
void resolve_partials(Reader& reader, const CarveOptions& opt, Control& control, std::vector<CarvedFile> partials,
                      const std::vector<Fragment>& recovered, CarveReport& rep, const FileSink& sink) {
  if (partials.empty()) return;
  std::sort(partials.begin(), partials.end(), [](const CarvedFile& a, const CarvedFile& b) { return a.offset < b.offset; });
  std::vector<uint64_t> starts;
  Claims claims = claims_of(reader, opt, partials, recovered, starts);
  const ReassembleOptions ro = reassemble_options(reader, opt, starts);
  PartialResolver resolver(reader, opt, claims, ro, rep, sink);
  for (auto& f : partials) {
    if (control.cancelled()) {
      // Stopped: nothing more is written; the candidates stay held
      // (CarveReport::held) and a resumed run resolves them all again.
      rep.cancelled = true;
      break;
    }
    resolver.resolve(f);
  }
}

// What a resumed run takes over from the interrupted one: the candidates it
// held for the fragment search, checked again here exactly as the scan checks
// them (a Driver over the one byte where each starts), and held again.
struct Carried {
  std::vector<CarvedFile> held;
  std::vector<uint64_t> unchecked;  // not checked again (stopped first): still held
};

Carried recheck_held(Reader& reader, const CarveOptions& opt, Control& control, const FileSink& on_file) {
  Carried c;
  CarveOptions o = opt;
  o.held.clear();
  o.recovered.clear();
  o.checkpoint = nullptr;
  o.threads = 1;
  o.length = 1;
  o.chunk_size = size_t(1) << 20;
  for (uint64_t p : opt.held) {
    if (p >= opt.offset) continue;  // scanned again anyway
    if (control.cancelled()) {
      c.unchecked.push_back(p);
      continue;
    }
    o.offset = p;
    Driver d(reader, o, control, on_file, [](uint64_t, bool) {});
    // One candidate: little read-ahead.
    d.scan_options.readers = 1;
    d.scan_options.buffers = 2;
    if (d.run().cancelled) c.unchecked.push_back(p);
    for (auto& f : d.held_partials()) c.held.push_back(std::move(f));
  }
  return c;
}

// The state a resumed run continues from (CarveReport::held/recovered):
// what was carried over plus this run's finds before `limit`.
void resume_state(CarveReport& r, const Carried& carried, const std::vector<CarvedFile>& held,
                  const std::vector<Fragment>& recovered, uint64_t limit) {
  r.held = carried.unchecked;
  for (auto& f : held)
    if (f.offset < limit) r.held.push_back(f.offset);
  r.recovered.clear();
  for (auto& f : recovered)
    if (f.offset < limit) r.recovered.push_back(f);
}

// After the scan: a checkpoint, the fragment search, and when stopped, the
// state to resume from. `held` and `recovered` include what was carried over.
void finish(Reader& reader, const CarveOptions& opt, Control& control, const FileSink& on_file, const Carried& carried,
            std::vector<CarvedFile> held, std::vector<Fragment> recovered, CarveReport& rep) {
  if (!rep.cancelled && opt.checkpoint) {
    CarveReport c = rep;
    c.next_offset = rep.end;
    resume_state(c, carried, held, recovered, rep.end);
    opt.checkpoint(c);
  }
  std::vector<CarvedFile> all = held;
  resolve_partials(reader, opt, control, std::move(held), recovered, rep, on_file);
  if (rep.cancelled) resume_state(rep, carried, all, recovered, rep.next_offset);
}

// The held candidates and recovered fragments carried over from an
// interrupted run, followed by this run's.
std::pair<std::vector<CarvedFile>, std::vector<Fragment>> with_carried(const CarveOptions& opt, const Carried& carried,
                                                                       std::vector<CarvedFile> held,
                                                                       const std::vector<Fragment>& recovered) {
  std::vector<CarvedFile> h = carried.held;
  h.insert(h.end(), std::make_move_iterator(held.begin()), std::make_move_iterator(held.end()));
  std::vector<Fragment> r = opt.recovered;
  r.insert(r.end(), recovered.begin(), recovered.end());
  return std::make_pair(std::move(h), std::move(r));
}

// A checkpoint at `pos` of the part that starts at the carve's start (the
// other parts' files reach on_file at the merge).
void checkpoint_at(const CarveOptions& opt, const Carried& carried, Driver& d, uint64_t pos) {
  CarveReport c = d.counters();
  c.next_offset = pos;
  c.held = carried.unchecked;
  for (auto& f : carried.held) c.held.push_back(f.offset);
  for (auto& f : d.held_partials())
    if (f.offset < pos) c.held.push_back(f.offset);
  c.recovered = opt.recovered;
  for (auto& f : d.recovered())
    if (f.offset < pos) c.recovered.push_back(f);
  opt.checkpoint(c);
}

// The range in one part, on the calling thread.
CarveReport carve_in_one_part(Reader& reader, const CarveOptions& opt, Control& control, const FileSink& on_file,
                              const Carried& carried) {
  Driver d(reader, opt, control, on_file, [&](uint64_t done, bool force) {
    control.set_done(done);
    control.tick(force);
  });
  if (opt.checkpoint) d.set_checkpoint([&](uint64_t pos) { checkpoint_at(opt, carried, d, pos); });
  CarveReport rep = d.run();
  auto [h, r] = with_carried(opt, carried, std::move(d.held_partials()), d.recovered());
  finish(reader, opt, control, on_file, carried, std::move(h), std::move(r), rep);
  return rep;
}

// Where each of `threads` parts begins (MiB-aligned), then the end.
std::vector<uint64_t> part_bounds(uint64_t start, uint64_t end, unsigned threads) {
  const uint64_t align = uint64_t(1) << 20;
  std::vector<uint64_t> bounds{start};
  for (unsigned k = 1; k < threads; k++) bounds.push_back(std::max(start, (start + (end - start) / threads * k) & ~(align - 1)));
  bounds.push_back(end);
  return bounds;
}

// What the parts of a parallel carve found.
struct Parts {
  std::vector<CarveReport> reps;
  std::vector<std::vector<CarvedFile>> held;      // parts 1..: files waiting for the merge
  std::vector<std::vector<CarvedFile>> partials;  // candidates held for the fragment search
  std::vector<std::vector<Fragment>> recovered;
  uint64_t covered = 0;  // end of the furthest file reported so far
  explicit Parts(size_t n) : reps(n), held(n), partials(n), recovered(n) {}
};

// Scans the parts [bounds[k], bounds[k + 1]) on threads of their own (part
// 0 on this one), progress summed over them. Part 0 reports files as they
// come; the others' wait in Parts::held. The first error stops them all
// and is thrown.
Parts scan_parts(Reader& reader, const CarveOptions& opt, Control& control, const FileSink& on_file,
                 const Carried& carried, const std::vector<uint64_t>& bounds) {
  const unsigned threads = unsigned(bounds.size() - 1);
  Parts parts(threads);
  std::vector<std::atomic<uint64_t>> done(threads);
  std::mutex tick_mu;
  auto progress = [&](unsigned k) {
    return [&, k](uint64_t d, bool force) {
      done[k].store(d, std::memory_order_relaxed);
      uint64_t sum = 0;
      for (auto& x : done) sum += x.load(std::memory_order_relaxed);
      std::lock_guard<std::mutex> lock(tick_mu);
      control.set_done(sum);
      control.tick(force);
    };
  };
  std::vector<CarveOptions> opts(threads, opt);
  std::vector<FileSink> sinks(threads);
  std::vector<std::exception_ptr> errors(threads);
  for (unsigned k = 0; k < threads; k++) {
    opts[k].offset = bounds[k];
    opts[k].length = bounds[k + 1] - bounds[k];
    opts[k].length_set = true;
    sinks[k] = FileSink([&held = parts.held, k](const CarvedFile& f) { held[k].push_back(f); });
  }
  std::vector<std::thread> pool;
  for (unsigned k = 1; k < threads; k++) {
    pool.emplace_back([&, k] {
      try {
        Driver d(reader, opts[k], control, sinks[k], progress(k));
        parts.reps[k] = d.run();
        parts.partials[k] = std::move(d.held_partials());
        parts.recovered[k] = d.recovered();
      } catch (...) {
        errors[k] = std::current_exception();
        control.cancel();
      }
    });
  }
  try {
    FileSink first = [&](const CarvedFile& f) {
      parts.covered = std::max(parts.covered, f.offset + f.length);
      on_file(f);
    };
    Driver d(reader, opts[0], control, first, progress(0));
    if (opt.checkpoint) d.set_checkpoint([&](uint64_t pos) { checkpoint_at(opt, carried, d, pos); });
    parts.reps[0] = d.run();
    parts.partials[0] = std::move(d.held_partials());
    parts.recovered[0] = d.recovered();
  } catch (...) {
    errors[0] = std::current_exception();
    control.cancel();
  }
  for (auto& t : pool) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  return parts;
}

// Part k's files in order after the files before it: those inside a file
// of an earlier part (an MPF image, a thumbnail) are dropped and unlinked
// (and uncounted in `total`), the others reported.
void merge_files(const CarveOptions& opt, const FileSink& on_file, Parts& parts, unsigned k, CarveReport& total) {
  for (auto& f : parts.held[k]) {
    if ((f.kind == "thumbnail" ? f.parent : f.offset) < parts.covered) {
      // Inside a file of the previous part: not a file of its own.
      if (!f.path.empty() && opt.write) remove_file(opt.out_dir, f.path);
      if (f.kind == "complete") total.complete--;
      else if (f.kind == "partial") total.partial--;
      else if (f.kind == "thumbnail") total.thumbnails--;
      continue;
    }
    on_file(f);
  }
  uint64_t before = parts.covered;
  for (auto& f : parts.held[k])
    if ((f.kind == "thumbnail" ? f.parent : f.offset) >= before) parts.covered = std::max(parts.covered, f.offset + f.length);
}

void add_counts(CarveReport& total, const CarveReport& r) {
  total.candidates += r.candidates;
  total.complete += r.complete;
  total.partial += r.partial;
  total.rejected += r.rejected;
  total.filtered += r.filtered;
  total.duplicates += r.duplicates;
  total.thumbnails += r.thumbnails;
  total.bytes_written += r.bytes_written;
  total.bytes_scanned += r.bytes_scanned;
  total.unreadable.insert(total.unreadable.end(), r.unreadable.begin(), r.unreadable.end());
  total.seconds = std::max(total.seconds, r.seconds);
}

// The parts' reports as one over [start, end): their files merged in
// offset order, their counts added, and where a resumed run goes on.
CarveReport merge_parts(const CarveOptions& opt, const FileSink& on_file, Parts& parts, uint64_t start, uint64_t end) {
  const unsigned threads = unsigned(parts.reps.size());
  CarveReport total = parts.reps[0];
  total.start = start;
  total.end = end;
  bool stopped = parts.reps[0].cancelled;
  for (unsigned k = 1; k < threads; k++) {
    const CarveReport& r = parts.reps[k];
    merge_files(opt, on_file, parts, k, total);
    add_counts(total, r);
    if (!stopped) total.next_offset = r.next_offset;
    stopped = stopped || r.cancelled;
    total.cancelled = total.cancelled || r.cancelled;
  }
  if (total.cancelled) {
    // Resume from the first part that did not finish.
    for (unsigned k = 0; k < threads; k++)
      if (parts.reps[k].cancelled) {
        total.next_offset = parts.reps[k].next_offset;
        break;
      }
  } else {
    total.next_offset = end;
  }
  return total;
}

// The carve of [start, end) once the scope is known (opt.skip).
CarveReport carve_in_scope(Reader& reader, const CarveOptions& opt, Control& control, const FileSink& on_file,
                           uint64_t start, uint64_t end) {
  control.set_total(end - start);
  unsigned threads = opt.threads ? opt.threads : std::min(4u, std::max(1u, std::thread::hardware_concurrency()));
  if (opt.dedupe || end - start < (uint64_t(64) << 20)) threads = 1;
  Carried carried = recheck_held(reader, opt, control, on_file);
  if (threads <= 1) return carve_in_one_part(reader, opt, control, on_file, carried);

  // Parts scanned in parallel. A part finds candidates only in its range but
  // follows a file past its end; the next part's finds inside such a file
  // (an MPF image, a thumbnail) are dropped and unlinked at the merge. Part 0
  // reports files as they come; the others' events wait for the merge, so
  // onFile sees files in offset order.
  Parts parts = scan_parts(reader, opt, control, on_file, carried, part_bounds(start, end, threads));
  CarveReport total = merge_parts(opt, on_file, parts, start, end);
  std::vector<CarvedFile> waiting;
  std::vector<Fragment> claimed;
  for (unsigned k = 0; k < threads; k++) {
    waiting.insert(waiting.end(), parts.partials[k].begin(), parts.partials[k].end());
    claimed.insert(claimed.end(), parts.recovered[k].begin(), parts.recovered[k].end());
  }
  auto [h, r] = with_carried(opt, carried, std::move(waiting), claimed);
  finish(reader, opt, control, on_file, carried, std::move(h), std::move(r), total);
  return total;
}

}  // namespace

CarveReport carve(Reader& reader, const CarveOptions& options, Control& control, const FileSink& on_file) {
  const uint64_t size = reader.size();
  const uint64_t start = std::min(options.offset, size);
  const uint64_t end = options.length || options.length_set ? std::min(size, start + options.length) : size;
  // The scope: which ranges the scan (and the fragment search) leave out,
  // counted over the whole carve (a resumed run's too).
  const fs::ScanScope scope =
      fs::plan_scan_scope(reader, options.scope, std::min(options.range_start, start), end, options.exclude);
  CarveOptions opt = options;
  opt.skip = scope.skip.empty() ? nullptr : &scope.skip;
  if (options.checkpoint)
    opt.checkpoint = [&](const CarveReport& c) {
      CarveReport with = c;
      with.scope = scope.report;
      options.checkpoint(with);
    };
  CarveReport rep = carve_in_scope(reader, opt, control, on_file, start, end);
  rep.scope = scope.report;
  return rep;
}

}  // namespace blocksmith::carve
