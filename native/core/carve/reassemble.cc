#include "core/carve/reassemble.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "core/base/error.h"
#include "core/carve/entropy.h"
#include "core/carve/exif.h"
#include "core/carve/jpeg_check.h"
#include "core/carve/seam.h"
#include "core/carve/signature.h"

namespace blocksmith::carve {

void Claims::add(uint64_t offset, uint64_t length) {
  if (length == 0) return;
  uint64_t b = offset, e = offset + length;
  // Keep the ranges disjoint: merge every range this one touches.
  auto it = ranges_.upper_bound(b);
  if (it != ranges_.begin() && std::prev(it)->second >= b) --it;
  while (it != ranges_.end() && it->first <= e) {
    b = std::min(b, it->first);
    e = std::max(e, it->second);
    it = ranges_.erase(it);
  }
  ranges_.emplace(b, e);
}

void Claims::add_candidate(uint64_t owner, uint64_t offset, uint64_t length) {
  if (length == 0) return;
  auto at = std::upper_bound(owned_.begin(), owned_.end(), offset, [](uint64_t o, const Owned& x) { return o < x.begin; });
  size_t i = size_t(at - owned_.begin());
  owned_.insert(at, Owned{offset, offset + length, owner});
  max_end_.resize(owned_.size());
  for (; i < owned_.size(); i++) max_end_[i] = std::max(i ? max_end_[i - 1] : 0, owned_[i].end);
}

bool Claims::overlaps(uint64_t begin, uint64_t end) const {
  auto it = ranges_.upper_bound(begin);
  if (it != ranges_.begin() && std::prev(it)->second > begin) return true;
  return it != ranges_.end() && it->first < end;
}

bool Claims::taken(uint64_t begin, uint64_t end, uint64_t self_begin, uint64_t self_end) const {
  if (overlaps(begin, end)) return true;
  // Candidates starting before `end`, back while one of them may still reach past `begin`.
  size_t i = size_t(std::lower_bound(owned_.begin(), owned_.end(), end, [](const Owned& x, uint64_t e) { return x.begin < e; }) -
                    owned_.begin());
  while (i > 0 && max_end_[i - 1] > begin) {
    --i;
    if (owned_[i].end > begin && (owned_[i].owner < self_begin || owned_[i].owner > self_end)) return true;
  }
  return false;
}

uint64_t damaged_tail_end(Reader& src, uint64_t broke_at, uint64_t limit, uint64_t damage) {
  const uint64_t size = src.size();
  const uint64_t stop = std::min(size, broke_at + std::min(limit, size));
  std::vector<uint8_t> buf(size_t(64) << 10);
  try {
    for (uint64_t at = broke_at; at + 1 < stop;) {
      size_t n = src.read_at(buf.data(), size_t(std::min<uint64_t>(buf.size(), stop - at)), at);
      if (n < 2) return 0;
      for (size_t i = 0; i + 1 < n; i++) {
        if (buf[i] != 0xFF) continue;
        uint8_t m = buf[i + 1];
        if (m == 0xD9) return at + i + 2;
        if (m == 0x00 || m == 0xFF || (m >= 0xD0 && m <= 0xD7)) continue;
        if (at + i - broke_at >= damage) return 0;  // another marker: not this file's data running on
      }
      at += n - 1;  // the last byte again: it may be an FF whose marker byte is in the next read
    }
  } catch (const Error& e) {
    if (e.errnum() != EIO) throw;
  }
  return 0;
}

namespace {

// Reads of the source through one window, since the search walks forward
// block by block.
class SourceBytes {
 public:
  explicit SourceBytes(Reader& r) : r_(r), size_(r.size()) {}
  uint64_t size() const { return size_; }

  // Copies [off, off + len) clipped at the end of the source; returns the bytes copied.
  size_t copy(uint8_t* dst, uint64_t off, size_t len) {
    if (off >= size_) return 0;
    len = size_t(std::min<uint64_t>(len, size_ - off));
    if (len > kWindow / 2) return r_.read_at(dst, len, off);
    if (off < base_ || off + len > base_ + have_) load(off);
    size_t n = size_t(std::min<uint64_t>(len, base_ + have_ - off));
    // A read that came back short leaves the window empty (no buffer at all
    // before the first load): nothing to copy.
    if (n > 0) std::memcpy(dst, win_.data() + (off - base_), n);
    return n;
  }

  // Marker segments from `at` on, each FF xx LL LL ending where the next
  // begins, up to an SOS: what the rest of a header cut by a fragment end
  // looks like. Random data fails this at the first byte or two.
  bool header_tail(uint64_t at) {
    uint8_t b[4];
    for (int segs = 0; segs < 64; segs++) {
      if (copy(b, at, 4) < 4 || b[0] != 0xFF) return false;
      uint8_t m = b[1];
      if (m == 0xFF) {  // fill byte
        at++;
        continue;
      }
      if (m == 0xDA) return true;
      if (m < 0xC0 || m == 0xC8 || (m >= 0xD0 && m <= 0xD9)) return false;
      unsigned len = unsigned(b[2]) << 8 | b[3];
      if (len < 2) return false;
      at += 2 + len;
    }
    return false;
  }

  // True when [off, off + len) cannot be entropy-coded data: all zeros, or
  // all text (tab, CR, LF, printable ASCII; compressed data has every byte
  // value, so a whole block of text is not JPEG data). Both decode as valid
  // Huffman codes for long stretches under common tables, which would let
  // them pass as a continuation or hide where a fragment ended.
  bool filler(uint64_t off, size_t len) {
    if (off + len > size_) len = size_t(size_ - std::min(off, size_));
    if (len == 0) return true;
    if (off < base_ || off + len > base_ + have_) load(off);
    len = size_t(std::min<uint64_t>(len, base_ + have_ - off));
    const uint8_t* p = win_.data() + (off - base_);
    if (p[0] == 0 && std::memcmp(p, p + 1, len - 1) == 0) return true;
    for (size_t i = 0; i < len; i++) {
      uint8_t b = p[i];
      if (b >= 0x7F || (b < 0x20 && b != '\t' && b != '\n' && b != '\r')) return false;
    }
    return true;
  }

 private:
  static constexpr size_t kWindow = size_t(4) << 20;
  void load(uint64_t off) {
    win_.resize(kWindow);
    base_ = off;
    have_ = r_.read_at(win_.data(), size_t(std::min<uint64_t>(kWindow, size_ - off)), off);
  }
  Reader& r_;
  uint64_t size_;
  std::vector<uint8_t> win_;
  uint64_t base_ = 0;
  size_t have_ = 0;
};

// A place where holes may go back among a file's direct blocks (hole_spots).
struct HoleSpot {
  uint64_t at, run;
};

// A way to put the holes at the spots whose header walk lines up.
struct HoleChoice {
  std::vector<uint64_t> count;  // holes at each spot
  int score;                    // the EXIF pointers' rating
  uint64_t runs;                // the zero runs at the spots used
};

struct AbsState {
  uint64_t abs;  // source offset of the byte holding the next bit
  ScanState s;
};

// One fragment being followed: where it starts, where its data broke, the
// decoder's states inside it, and the fragments already fixed before it.
struct Level {
  uint64_t start = 0;
  uint64_t broke = 0;
  std::vector<AbsState> states;
  std::vector<Fragment> done;
};

class Search {
 public:
  Search(SourceBytes& src, const ScanProbe& probe, uint64_t offset, uint64_t broke, const Claims& claims,
         const ReassembleOptions& opt)
      : src_(src), probe_(probe), offset_(offset), broke_(broke), claims_(claims), opt_(opt), block_(std::max<uint32_t>(opt.block_size, 1)),
        phase_(opt.block_phase % block_) {}

  // A pass allows results of up to `fragments` fragments, with a budget of its own.
  bool pass(const Level& lv, unsigned fragments) {
    fragments_ = fragments;
    pass_attempts_ = work_ = 0;
    return follow(lv);
  }
  // The first fragment ends inside the marker segments (two fragments only).
  bool header_pass(const std::vector<uint8_t>& head, size_t broke);
  // The file is block-mapped (ext2/ext3): its 13th block is an indirect block.
  bool indirect_pass(uint64_t broke);
  std::vector<Fragment> result;
  std::vector<uint8_t> file;
  uint64_t attempts = 0;
  std::string refused;  // the first stitched file refused by the seam check, and why
  JpegInfo info;        // the accepted file's, as its check found it

 private:
  std::vector<uint64_t> fragment_ends(const Level& lv);
  const AbsState* state_before(const Level& lv, uint64_t k) const;
  bool attempt(const Level& lv, uint64_t k, const AbsState& st, const std::vector<uint8_t>& prefix, uint64_t c);
  bool accept(std::vector<Fragment> frags);
  bool block_list(uint64_t at, uint64_t base, std::vector<uint64_t>& out);
  bool listed_file(const std::vector<Fragment>& frags);
  bool with_holes(const std::vector<Fragment>& frags, uint64_t holes);
  bool rate_hole_choices(const std::vector<uint8_t>& stored, const std::vector<HoleSpot>& spots, uint64_t holes,
                         std::vector<HoleChoice>& ok);
  std::vector<Fragment> hole_fragments(const std::vector<Fragment>& frags, const std::vector<HoleSpot>& spots,
                                       const HoleChoice& c) const;
  bool checks_past(const std::vector<Fragment>& with, uint64_t own, CheckResult& r);
  bool ambiguous_choice(const std::vector<Fragment>& frags, const std::vector<HoleSpot>& spots,
                        const std::vector<HoleChoice>& ok, size_t i, uint64_t own);
  bool used_taken(const std::vector<Fragment>& used, const CheckResult& r, uint64_t own) const;

  SourceBytes& src_;
  const ScanProbe& probe_;
  uint64_t offset_;
  uint64_t broke_;  // where the candidate's data broke: candidates from offset_ to here are its own or embedded in it
  const Claims& claims_;
  const ReassembleOptions& opt_;
  uint64_t block_;
  uint64_t phase_;
  // The block boundary at or before x (x >= phase_ assumed by callers; below it: phase_ - block_ wraps, never used).
  uint64_t floor_boundary(uint64_t x) const { return x < phase_ ? 0 : phase_ + (x - phase_) / block_ * block_; }
  std::vector<uint8_t> scratch_;
  std::vector<ScanState> snaps_;
  static constexpr uint64_t kWorkPerAttempt = 4096;  // bytes decoded that count as one attempt
  uint64_t work_ = 0;                                // bytes decoded in this pass
  uint64_t pass_attempts_ = 0;
  unsigned fragments_ = 2;  // most fragments a result may have in this pass
  bool follow(const Level& lv);
};

// Where the fragment may really end: the last few block boundaries at or
// before the break (garbage decodes for a little while), or else the first
// filler block after the fragment start (zeros or text decode as valid
// Huffman codes for long stretches, so the break shows only after them).
std::vector<uint64_t> Search::fragment_ends(const Level& lv) {
  std::vector<uint64_t> ks;
  if (lv.states.empty() || lv.broke <= offset_) return ks;
  const uint64_t first = lv.states.front().abs;
  const uint64_t last = floor_boundary(lv.broke);
  for (unsigned i = 0; i < opt_.tail_boundaries && last >= i * block_; i++) {
    uint64_t k = last - i * block_;
    if (k <= lv.start || k <= first) break;
    ks.push_back(k);
  }
  // Entropy-coded data never fills a whole block with zeros or text, so
  // the fragment ends at the first filler block at the latest.
  for (uint64_t k = floor_boundary(first) + block_; k <= last; k += block_) {
    if (k > lv.start && src_.filler(k, block_)) {
      ks.erase(std::remove_if(ks.begin(), ks.end(), [&](uint64_t x) { return x > k; }), ks.end());
      if (std::find(ks.begin(), ks.end(), k) == ks.end()) ks.push_back(k);
      break;
    }
  }
  return ks;
}

// The last snapshot that needs no byte at or after k.
const AbsState* Search::state_before(const Level& lv, uint64_t k) const {
  auto it = std::partition_point(lv.states.begin(), lv.states.end(), [&](const AbsState& a) {
    return a.abs < k || (a.abs == k && a.s.bit == 0);
  });
  return it == lv.states.begin() ? nullptr : &*std::prev(it);
}

bool Search::follow(const Level& lv) {
  std::vector<uint64_t> ks = fragment_ends(lv);
  if (ks.empty()) return false;
  // Per fragment end: the state to resume from and the bytes from it to the end.
  std::vector<const AbsState*> from;
  std::vector<std::vector<uint8_t>> prefix(ks.size());
  for (size_t i = 0; i < ks.size(); i++) {
    from.push_back(state_before(lv, ks[i]));
    if (!from[i]) continue;
    prefix[i].resize(size_t(ks[i] - from[i]->abs));
    if (src_.copy(prefix[i].data(), from[i]->abs, prefix[i].size()) != prefix[i].size()) from[i] = nullptr;
  }
  const uint64_t kmin = *std::min_element(ks.begin(), ks.end());
  const uint64_t kmax = *std::max_element(ks.begin(), ks.end());
  const uint64_t stop = std::min(src_.size(), kmax + opt_.max_gap + 1);
  for (uint64_t c = kmin + block_; c < stop; c += block_) {
    // A continuation does not start inside a recovered file, nor in filler.
    if (claims_.taken(c, c + block_, offset_, broke_) || src_.filler(c, block_)) continue;
    for (size_t i = 0; i < ks.size(); i++) {
      if (!from[i] || ks[i] >= c || c - ks[i] > opt_.max_gap) continue;
      // Long decodes count too: a continuation of data that decodes (another
      // file with the same tables) costs as much as many random ones.
      if (pass_attempts_ >= opt_.max_attempts || work_ / kWorkPerAttempt >= opt_.max_attempts) return false;
      pass_attempts_++;
      attempts++;
      if (attempt(lv, ks[i], *from[i], prefix[i], c)) return true;
    }
  }
  return false;
}

// Decodes on from `st` over the bytes [st.abs, k) then from c, reading more
// while the decode asks for it.
bool Search::attempt(const Level& lv, uint64_t k, const AbsState& st, const std::vector<uint8_t>& prefix, uint64_t c) {
  const size_t plen = prefix.size();
  const uint64_t used = k - offset_;  // bytes of the file before c (plus gaps, a bound is all that is needed)
  if (used >= opt_.max_size) return false;
  uint64_t w = std::max<uint64_t>(2 * block_, 2048);  // random data fails within it; more is read when it does not
  while (true) {
    bool eof = false;
    uint64_t room = std::min(src_.size() - c, opt_.max_size - used);
    if (w >= room) {
      w = room;
      eof = true;
    }
    scratch_.resize(plen + size_t(w));
    if (plen > 0) std::memcpy(scratch_.data(), prefix.data(), plen);  // both may be null when empty
    size_t got = src_.copy(scratch_.data() + plen, c, size_t(w));
    if (got < w) eof = true;
    const uint8_t* p = scratch_.data();
    const uint8_t* end = p + plen + got;
    ScanState s = st.s;
    s.byte = 0;
    Frame frame = probe_.frame;
    // Snapshots only when a middle fragment may follow (they cost a push per MCU).
    snaps_.clear();
    ScanResult r = decode_scan(p, end, eof, frame, probe_.tables, probe_.scan, &s, fragments_ > 2 ? &snaps_ : nullptr);
    work_ += uint64_t(end - p);
    if (r.outcome == ScanOutcome::need_more) {
      if (eof) return false;
      w *= 4;
      continue;
    }
    std::vector<Fragment> frags = lv.done;
    frags.push_back({lv.start, k - lv.start});
    if (r.outcome == ScanOutcome::ok) {
      size_t m = size_t(r.end - p);
      if (m < plen || m + 2 > plen + got || p[m + 1] != 0xD9) return false;  // only EOI may follow the last scan
      frags.push_back({c, m + 2 - plen});
      return accept(std::move(frags));
    }
    // It broke again: worth following as a middle fragment only when it
    // decoded for a good distance (random data rarely lasts a block), and
    // only from past this fragment's own break: the file's own later bytes
    // decode too when a block is skipped (Huffman codes resynchronise), and
    // chains of such skips could end at an EOI by chance.
    size_t b = r.broke_at ? size_t(r.broke_at - p) : 0;
    if (frags.size() + 2 > fragments_ || c + block_ <= lv.broke) return false;
    if (b < plen + std::max<uint64_t>(4 * block_, 8192)) return false;
    Level next;
    next.start = c;
    next.broke = c + (b - plen);
    next.done = std::move(frags);
    for (const ScanState& x : snaps_)
      if (x.byte >= plen) next.states.push_back({c + (x.byte - plen), x});
    return follow(next);
  }
}

// Where the segment that a header walk broke in begins (the walk found no
// marker at `broke`, where that segment should have ended), or SIZE_MAX;
// `parsed` receives how many segments before it ended on a marker.
size_t last_segment(const std::vector<uint8_t>& d, size_t broke, int& parsed) {
  size_t pos = 2, seg = SIZE_MAX;
  parsed = -1;
  while (pos + 4 <= broke && d[pos] == 0xFF) {
    seg = pos;
    parsed++;
    while (pos < broke && d[pos] == 0xFF) pos++;
    if (pos + 3 > d.size()) break;
    pos += 1 + (size_t(d[pos + 1]) << 8 | d[pos + 2]);
  }
  return seg;
}

bool known_app_segment(const std::vector<uint8_t>& d, size_t seg) {
  static const char* const ids[] = {"Exif", "http://ns.adobe.com/", "ICC_PROFILE", "Photoshop 3.0", "JFIF", "MPF", "Adobe", "Ducky"};
  if (seg + 4 >= d.size() || d[seg + 1] < 0xE0 || d[seg + 1] > 0xEF) return false;
  for (const char* id : ids) {
    size_t n = std::strlen(id);
    if (seg + 4 + n <= d.size() && std::memcmp(d.data() + seg + 4, id, n) == 0) return true;
  }
  return false;
}

// Only a complete JPEG embedded in an APPn payload (an EXIF thumbnail) and
// spanning the join proves where in a segment the first fragment ended: the
// segment's other bytes are not checked by anything, and any boundary with
// the same shift to the continuation lines the rest of the header up.
bool join_inside_embedded(const uint8_t* d, size_t n, const CheckResult& whole, size_t join) {
  for (auto [b, e] : whole.info.app_payloads) {
    if (e > n || join <= b || join >= e) continue;
    for (size_t i = b; i < e;) {
      size_t k = find_soi(d, e, i);
      if (k == SIZE_MAX) break;
      CheckResult t = check_jpeg(d + k, e - k, true);
      if (t.status == Status::complete && join > k && join < k + t.length) return true;
      i = k + 1;
    }
  }
  return false;
}

// The first fragment ends inside the marker segments: the walk skipped a
// segment by its length into other data and found no marker there. The
// fragment ends at a block boundary inside that segment; the continuation
// is where the rest of the header (segments up to an SOS) lines up, the
// whole file must then check complete, and an embedded JPEG must span the
// join (else nothing tells which boundary of the segment was the end).
bool Search::header_pass(const std::vector<uint8_t>& head, size_t broke) {
  int parsed = 0;
  size_t seg = last_segment(head, broke, parsed);
  // A decoy (FF D8 FF + junk) breaks in its first segment: ask for a known
  // APPn payload there, or real segments before it.
  if (seg == SIZE_MAX || broke > head.size() || (parsed < 2 && !known_app_segment(head, seg))) return false;
  std::vector<uint64_t> ks;
  for (uint64_t k = floor_boundary(offset_ + broke); k > offset_ + seg + 4 && ks.size() < 256; k = k >= block_ ? k - block_ : 0) ks.push_back(k);
  if (ks.empty()) return false;
  const uint64_t end_abs = offset_ + broke;
  const uint64_t kmin = ks.back(), kmax = ks.front();
  const uint64_t stop = std::min(src_.size(), kmax + opt_.max_gap + 1);
  for (uint64_t c = kmin + block_; c < stop; c += block_) {
    if (claims_.taken(c, c + block_, offset_, broke_) || src_.filler(c, block_)) continue;
    for (uint64_t k : ks) {
      if (k >= c || c - k > opt_.max_gap) continue;
      // Cheap checks count a little (a decoy costs a bounded time too).
      if (work_ / kWorkPerAttempt >= opt_.max_attempts || pass_attempts_ >= opt_.max_attempts) return false;
      work_ += 64;
      if (!src_.header_tail(c + (end_abs - k))) continue;
      pass_attempts_++;
      attempts++;
      const size_t plen = size_t(k - offset_);
      uint64_t w = std::max<uint64_t>(4 * block_, 65536);
      while (true) {
        bool eof = false;
        uint64_t room = std::min(src_.size() - c, opt_.max_size > plen ? opt_.max_size - plen : 0);
        if (w >= room) {
          w = room;
          eof = true;
        }
        scratch_.resize(plen + size_t(w));
        std::memcpy(scratch_.data(), head.data(), plen);
        size_t got = src_.copy(scratch_.data() + plen, c, size_t(w));
        if (got < w) eof = true;
        work_ += plen + got;
        CheckResult r = check_jpeg(scratch_.data(), plen + got, eof);
        if (r.status == Status::need_more && !eof) {
          w *= 4;
          continue;
        }
        if (r.status == Status::complete && r.length > plen && join_inside_embedded(scratch_.data(), plen + got, r, plen) &&
            accept({{offset_, k - offset_}, {c, r.length - plen}}))
          return true;
        break;
      }
    }
  }
  return false;
}

// The block at `at` as an ext2/ext3 indirect block: 32-bit little-endian
// block numbers, then zeros to the end of the block. Appends the byte offset
// of each listed block (base + number * block) to `out`; false when the
// block is not such a list (every number inside the source, at least one).
// Random or JPEG data is never one: each number of a 4 KiB-block filesystem
// of 16 MiB falls below 4096 by chance one time in a million.
bool Search::block_list(uint64_t at, uint64_t base, std::vector<uint64_t>& out) {
  if (block_ % 4 != 0 || block_ > 65536) return false;
  std::vector<uint8_t> b(block_);
  if (src_.copy(b.data(), at, b.size()) != b.size()) return false;
  size_t n = 0;
  while (n < b.size() / 4 && (b[4 * n] | b[4 * n + 1] | b[4 * n + 2] | b[4 * n + 3])) n++;
  if (n == 0) return false;
  for (size_t i = 4 * n; i < b.size(); i++)
    if (b[i]) return false;
  const size_t before = out.size();
  for (size_t i = 0; i < n; i++) {
    uint64_t num = uint64_t(b[4 * i]) | uint64_t(b[4 * i + 1]) << 8 | uint64_t(b[4 * i + 2]) << 16 | uint64_t(b[4 * i + 3]) << 24;
    uint64_t off = base + num * block_;
    if (num >= src_.size() / block_ || off + block_ > src_.size()) {
      out.resize(before);
      return false;
    }
    out.push_back(off);
  }
  return true;
}

// Block numbers that mostly go up (at least 9 in 10 steps): what ext2/ext3
// allocate for a file written in one go, and not what a few bytes left
// before zeros in a file's data look like.
bool mostly_increasing(const std::vector<uint64_t>& v) {
  size_t up = 0;
  for (size_t i = 1; i < v.size(); i++) up += v[i] > v[i - 1];
  return v.size() < 2 || up * 10 >= (v.size() - 1) * 9;
}

// The segment walk from the SOI over a file read through `at(x)` (its byte
// x; n bytes): each FF xx LL LL ends where the next marker begins, up to an
// SOS. Where holes go inside a segment, only this lines the rest up.
template <class At>
bool header_walks(At at, uint64_t n) {
  uint64_t pos = 2;
  for (int segs = 0; segs < 512; segs++) {
    if (pos + 4 > n || at(pos) != 0xFF) return false;
    uint8_t m = at(pos + 1);
    if (m == 0xFF) {
      pos++;
      continue;
    }
    if (m == 0xDA) return true;
    if (m < 0xC0 || m == 0xC8 || (m >= 0xD0 && m <= 0xD9)) return false;
    pos += 2 + (unsigned(at(pos + 2)) << 8 | at(pos + 3));
  }
  return false;
}

// The EXIF segments' layout score (exif.h) of a file read through `at(x)`.
template <class At>
int exif_score(At at, uint64_t n, uint64_t& work) {
  uint64_t pos = 2;
  int score = 0;
  std::vector<uint8_t> payload;
  for (int segs = 0; segs < 512 && pos + 4 <= n && at(pos) == 0xFF; segs++) {
    uint8_t m = at(pos + 1);
    if (m == 0xDA) break;
    unsigned len = unsigned(at(pos + 2)) << 8 | at(pos + 3);
    if (len < 2) break;
    if (m == 0xE1 && pos + 2 + len <= n) {
      payload.resize(len - 2);
      work += payload.size();
      for (size_t i = 0; i < payload.size(); i++) payload[i] = at(pos + 4 + i);
      score += exif_layout_score(payload.data(), payload.size());
    }
    pos += 2 + len;
  }
  return score;
}

// Reads `frags` (holes as zeros) into `out`, at most `limit` bytes; false
// when the source ends first.
bool read_fragments(SourceBytes& src, const std::vector<Fragment>& frags, uint64_t limit, std::vector<uint8_t>& out) {
  uint64_t total = 0;
  for (auto& f : frags) total += f.length;
  out.assign(size_t(std::min(total, limit)), 0);
  size_t got = 0;
  for (auto& f : frags) {
    size_t n = size_t(std::min<uint64_t>(f.length, out.size() - got));
    if (!f.zeros && src.copy(out.data() + got, f.offset, n) != n) return false;
    got += n;
    if (got == out.size()) break;
  }
  return true;
}

// The first `keep` bytes of `frags`.
std::vector<Fragment> first_bytes(const std::vector<Fragment>& frags, uint64_t keep) {
  std::vector<Fragment> used;
  for (auto& f : frags) {
    if (keep == 0) break;
    Fragment g = f;
    g.length = std::min(f.length, keep);
    used.push_back(g);
    keep -= g.length;
  }
  return used;
}

// ext2 and ext3 map a file's first 12 blocks from the inode and the rest
// through an indirect block (then a double indirect one, listing indirect
// blocks), allocated where the file's data goes on: right after block 11,
// and after the last block the indirect block lists. A file that breaks past
// its 12th block, where a block of block numbers follows, is that list's
// file: its blocks are read in the order listed, and the result must check
// complete (and go on across each join in the scan data). A segment walk
// that skips a large APPn or COM segment into the indirect block has no
// other way to find the rest: nothing else in the segment says where it is.
// A sparse file (opt_.sparse) stores none of its all-zero blocks: with k of
// the first 12 missing, the indirect block follows 12 - k stored blocks, and
// the k blocks of zeros go back in where the file has zeros (with_holes).
bool Search::indirect_pass(uint64_t broke) {
  const uint64_t direct = 12;
  if (offset_ < phase_ || (offset_ - phase_) % block_ != 0) return false;
  for (uint64_t d = direct; d >= 1; d--) {
    if (d < direct && !opt_.sparse) break;
    const uint64_t ind = offset_ + d * block_;
    if ((d == direct && broke < ind) || ind + block_ > src_.size()) continue;
    std::vector<uint64_t> as_is;
    if (!block_list(ind, 0, as_is)) continue;
    // Block numbers count from the filesystem's start: the source's start, or
    // (a filesystem inside a partition) wherever puts the first block listed
    // right after the indirect block, where ext2 allocates it.
    std::vector<uint64_t> bases;
    if (as_is[0] < ind + block_) bases.push_back(ind + block_ - as_is[0]);
    bases.push_back(0);
    for (uint64_t base : bases) {
      std::vector<uint64_t> listed;
      if (!block_list(ind, base, listed)) continue;
      // Fewer stored blocks than 12 is a guess that needs more evidence: the
      // list goes on right after the indirect block and mostly upwards.
      if (d < direct && (listed[0] != ind + block_ || !mostly_increasing(listed))) continue;
      // A full list: a double indirect block after its last block lists the next indirect blocks.
      if (listed.size() == block_ / 4) {
        std::vector<uint64_t> inds;
        if (block_list(listed.back() + block_, base, inds))
          for (uint64_t at : inds)
            if (listed.size() * block_ > opt_.max_size || !block_list(at, base, listed)) break;
      }
      std::vector<Fragment> frags{{offset_, d * block_}};
      uint64_t total = d * block_;
      for (uint64_t at : listed) {
        if (total >= opt_.max_size) break;
        if (frags.back().offset + frags.back().length == at) frags.back().length += block_;
        else frags.push_back({at, block_});
        total += block_;
      }
      attempts++;
      if (d == direct ? listed_file(frags) : with_holes(frags, direct - d)) return true;
    }
  }
  return false;
}

// Whether the listed blocks of `used` (a file assembled from the blocks a
// list gives, its own first blocks up to file position `own`) are taken by
// another file or candidate, except where the file itself holds JPEGs the
// scan found on their own (its outer file broke, so the scan went on and
// recovered them): its APPn payloads (an EXIF thumbnail) and MPF images.
bool Search::used_taken(const std::vector<Fragment>& used, const CheckResult& r, uint64_t own) const {
  std::vector<std::pair<uint64_t, uint64_t>> inner;  // [begin, end) in the file
  for (auto [b, e] : r.info.app_payloads) inner.push_back({b, e});
  if (r.info.mpf_included)
    for (auto [o, n] : r.info.mpf_images) inner.push_back({o, o + n});
  uint64_t pos = 0;
  for (auto& f : used) {
    for (uint64_t b = 0; b < f.length && !f.zeros && pos >= own;) {
      // The part of [pos + b, ...) inside one of them, or up to the next one.
      uint64_t e = f.length;
      bool inside = false;
      for (auto [ib, ie] : inner) {
        if (pos + b >= ib && pos + b < ie) {
          inside = true;
          e = std::min<uint64_t>(e, ie - pos);
        } else if (ib > pos + b) {
          e = std::min<uint64_t>(e, ib - pos);
        }
      }
      if (!inside && claims_.taken(f.offset + b, f.offset + e, offset_, broke_)) return true;
      b = e;
    }
    pos += f.length;
  }
  return false;
}

// The blocks a list gives, read in order: the file ends where the JPEG does.
bool Search::listed_file(const std::vector<Fragment>& frags) {
  std::vector<uint8_t> bytes;
  if (!read_fragments(src_, frags, opt_.max_size, bytes)) return false;
  work_ += bytes.size();
  CheckResult r = check_jpeg(bytes.data(), bytes.size(), true);
  if (r.status != Status::complete || r.length <= frags.front().length) return false;
  std::vector<Fragment> used = first_bytes(frags, r.length);
  return !used_taken(used, r, frags.front().length) && accept(std::move(used));
}

// Where holes may go back among the stored direct blocks: at a block
// boundary `at` next to a zero byte (a hole is all zeros, and a block of
// zeros in a file is padding, which runs on around it), one place per run of
// zeros (any boundary in it gives the same file); `run`: that run's length.
std::vector<HoleSpot> hole_spots(const std::vector<uint8_t>& stored, uint64_t dlen, uint64_t block) {
  std::vector<HoleSpot> spots;
  uint64_t run_end = 0;
  for (uint64_t b = block; b <= dlen; b += block) {
    if ((stored[b - 1] != 0 && stored[b] != 0) || (b <= run_end && stored[b - 1] == 0)) continue;
    uint64_t s = b, e = b;
    while (s > 0 && stored[s - 1] == 0) s--;
    while (e < stored.size() && stored[e] == 0) e++;
    spots.push_back({b, e - s});
    run_end = e;
  }
  return spots;
}

// Few places (the longest runs) when there are many: the choices grow as
// C(holes + places - 1, holes).
void keep_longest_spots(std::vector<HoleSpot>& spots, uint64_t holes) {
  auto choices = [&](size_t places) {
    double c = 1;
    for (uint64_t i = 1; i <= holes; i++) c = c * double(places - 1 + i) / double(i);
    return c;
  };
  while (spots.size() > 1 && choices(spots.size()) > 4096) {
    auto shortest = std::min_element(spots.begin(), spots.end(), [](const HoleSpot& a, const HoleSpot& b) { return a.run < b.run; });
    spots.erase(shortest);
  }
}

// The next way to put `holes` holes at the spots (`count`: holes at each,
// in lexicographic order); false after the last. The last spot takes what
// is left (set by the caller); the others step like an odometer.
bool next_hole_counts(std::vector<uint64_t>& count, uint64_t holes) {
  for (size_t i = count.size() - 1; i-- > 0;) {
    uint64_t used = 0;
    for (size_t j = 0; j <= i; j++) used += count[j];
    if (used < holes) {
      count[i]++;
      for (size_t j = i + 1; j < count.size(); j++) count[j] = 0;
      return true;
    }
  }
  return false;
}

// Byte x of the file made of `stored` with count[i] holes of `hole` bytes
// put in at spot i.
uint8_t byte_with_holes(const std::vector<uint8_t>& stored, const std::vector<HoleSpot>& spots,
                        const std::vector<uint64_t>& count, uint64_t hole, uint64_t x) {
  uint64_t shift = 0;
  for (size_t i = 0; i < spots.size(); i++) {
    const uint64_t p = spots[i].at + shift;  // where spot i's holes begin in the file
    if (x < p) break;
    if (x < p + count[i] * hole) return 0;
    shift += count[i] * hole;
  }
  return x - shift < stored.size() ? stored[x - shift] : 0;
}

// Every way to put `holes` holes at the spots whose header walk lines up,
// into `ok`: the EXIF pointers' best first, then the longer runs of zeros.
// False when the pass's budget ran out.
bool Search::rate_hole_choices(const std::vector<uint8_t>& stored, const std::vector<HoleSpot>& spots, uint64_t holes,
                               std::vector<HoleChoice>& ok) {
  const uint64_t hole = block_;
  const uint64_t logical = stored.size() + holes * hole;
  std::vector<uint64_t> count(spots.size(), 0);
  do {
    uint64_t before = 0;
    for (size_t i = 0; i + 1 < spots.size(); i++) before += count[i];
    count.back() = holes - before;
    auto at = [&](uint64_t x) { return byte_with_holes(stored, spots, count, hole, x); };
    work_ += 64;
    if (work_ / kWorkPerAttempt >= opt_.max_attempts) return false;
    if (!header_walks(at, logical)) continue;
    uint64_t runs = 0;
    for (size_t i = 0; i < spots.size(); i++) runs += count[i] ? spots[i].run : 0;
    ok.push_back({count, exif_score(at, logical, work_), runs});
  } while (next_hole_counts(count, holes));
  std::sort(ok.begin(), ok.end(), [](const HoleChoice& a, const HoleChoice& b) { return a.score != b.score ? a.score > b.score : a.runs > b.runs; });
  return true;
}

// The fragments of choice `c`: the stored direct blocks (frags' first,
// `dlen` bytes) cut at each spot with holes, the holes, then the listed blocks.
std::vector<Fragment> Search::hole_fragments(const std::vector<Fragment>& frags, const std::vector<HoleSpot>& spots,
                                             const HoleChoice& c) const {
  const uint64_t dlen = frags.front().length;
  std::vector<Fragment> with;
  uint64_t from = 0;
  for (size_t i = 0; i < spots.size(); i++) {
    if (!c.count[i]) continue;
    if (spots[i].at > from) with.push_back({offset_ + from, spots[i].at - from});
    Fragment z{offset_ + spots[i].at, c.count[i] * block_};
    z.zeros = true;
    with.push_back(z);
    from = spots[i].at;
  }
  if (dlen > from) with.push_back({offset_ + from, dlen - from});
  with.insert(with.end(), frags.begin() + 1, frags.end());
  return with;
}

// Whether the file `with` gives checks complete and runs past `own` (the
// direct blocks with the holes): else the listed blocks added nothing.
bool Search::checks_past(const std::vector<Fragment>& with, uint64_t own, CheckResult& r) {
  std::vector<uint8_t> bytes;
  if (!read_fragments(src_, with, opt_.max_size, bytes)) return false;
  work_ += bytes.size();
  r = check_jpeg(bytes.data(), bytes.size(), true);
  return r.status == Status::complete && r.length > own;
}

// Whether choice ok[i] (which checks complete) cannot be told from the
// next one the EXIF pointers rate as well, if that checks complete too:
// only the runs of zeros tell them apart, and the chosen places' own
// (those it does not share) must be at least twice as long, else there is
// no telling which file is right.
bool Search::ambiguous_choice(const std::vector<Fragment>& frags, const std::vector<HoleSpot>& spots,
                              const std::vector<HoleChoice>& ok, size_t i, uint64_t own) {
  for (size_t j = i + 1; j < ok.size() && j < 8 && ok[j].score == ok[i].score; j++) {
    CheckResult r2;
    if (!checks_past(hole_fragments(frags, spots, ok[j]), own, r2)) continue;
    uint64_t own_i = 0, own_j = 0;
    for (size_t k = 0; k < spots.size(); k++) {
      if (ok[i].count[k] && !ok[j].count[k]) own_i += spots[k].run;
      if (ok[j].count[k] && !ok[i].count[k]) own_j += spots[k].run;
    }
    return own_i < 2 * own_j;
  }
  return false;
}

// `frags`: the stored direct blocks (one fragment) then the listed ones;
// `holes` blocks of zeros go back among the direct ones (hole_spots says
// where). The header walk must then line up, the EXIF pointers decide
// between places that all line up, then the longer runs of zeros, by a
// margin (twice as long); less is left alone: nothing tells which file is
// the right one. The file must check complete.
bool Search::with_holes(const std::vector<Fragment>& frags, uint64_t holes) {
  std::vector<uint8_t> stored;
  const uint64_t dlen = frags.front().length;
  if (!read_fragments(src_, frags, opt_.max_size, stored) || stored.size() <= dlen) return false;
  work_ += stored.size();
  std::vector<HoleSpot> spots = hole_spots(stored, dlen, block_);
  keep_longest_spots(spots, holes);
  if (spots.empty()) return false;
  std::vector<HoleChoice> ok;
  if (!rate_hole_choices(stored, spots, holes, ok)) return false;
  const uint64_t own = dlen + holes * block_;
  // The best choices first; a hole put in the scan's data (a zero byte at a
  // boundary there) lines the header up too but does not decode: the next.
  for (size_t i = 0; i < ok.size() && i < 8; i++) {
    std::vector<Fragment> with = hole_fragments(frags, spots, ok[i]);
    CheckResult r;
    if (!checks_past(with, own, r)) continue;
    if (ambiguous_choice(frags, spots, ok, i, own)) return false;
    std::vector<Fragment> used = first_bytes(with, r.length);
    return !used_taken(used, r, own) && accept(std::move(used));
  }
  return false;
}

// The fragments joined must check as one complete JPEG of exactly their length.
bool Search::accept(std::vector<Fragment> frags) {
  uint64_t total = 0;
  for (auto& f : frags) total += f.length;
  if (total > opt_.max_size) return false;
  std::vector<uint8_t> bytes(static_cast<size_t>(total));
  size_t at = 0;
  for (auto& f : frags) {
    if (!f.zeros && src_.copy(bytes.data() + at, f.offset, size_t(f.length)) != f.length) return false;
    at += size_t(f.length);
  }
  CheckResult r = check_jpeg(bytes.data(), bytes.size(), true);
  if (r.status != Status::complete || r.length != bytes.size()) return false;
  // Joins in the scan data: the picture must go on across each of them
  // (joins in the header are proven by the embedded JPEG spanning them).
  if (probe_.valid) {
    std::vector<size_t> joins;
    size_t at = 0;
    for (size_t i = 0; i + 1 < frags.size(); i++) joins.push_back(at += size_t(frags[i].length));
    SeamVerdict v = check_seams(bytes.data(), bytes.size(), probe_, joins);
    if (!v.ok) {
      if (refused.empty()) {
        size_t bad = 0;  // the fragment after the first join that failed
        for (size_t i = 0; i < v.seams.size(); i++)
          if (!v.seams[i].ok) {
            bad = i;
            break;
          }
        refused = "data at " + std::to_string(frags[std::min(bad + 1, frags.size() - 1)].offset) +
                  " completes its decoding but was not used: " + v.reason;
      }
      return false;
    }
  }
  result = std::move(frags);
  info = std::move(r.info);
  file = std::move(bytes);
  return true;
}

// The candidate again from `offset`, up to a little past its break.
std::vector<uint8_t> candidate_head(SourceBytes& src, uint64_t offset, uint64_t broke_at, const ReassembleOptions& opt) {
  uint64_t n = std::min<uint64_t>({src.size() - std::min(offset, src.size()), opt.max_size,
                                   broke_at > offset ? broke_at - offset + (uint64_t(64) << 10) : 0});
  std::vector<uint8_t> head(static_cast<size_t>(n));
  head.resize(src.copy(head.data(), offset, head.size()));
  return head;
}

// The first fragment's level: the decoder's states the probe recorded, as
// source offsets.
Level first_level(const ScanProbe& probe, uint64_t offset) {
  Level lv;
  lv.start = offset;
  lv.broke = offset + probe.broke_at;
  for (const ScanState& s : probe.states) lv.states.push_back({offset + probe.data_start + s.byte, s});
  return lv;
}

// Moves a search's outcome into `out`: the accepted file, or why a stitched
// one was refused.
void take_outcome(Search& search, bool ok, Reassembly& out, std::vector<uint8_t>* bytes) {
  out.ok = ok;
  out.attempts = search.attempts;
  if (!ok) {
    out.refused = std::move(search.refused);
    return;
  }
  out.fragments = std::move(search.result);
  out.info = std::move(search.info);
  if (bytes) *bytes = std::move(search.file);
}

}  // namespace

Reassembly reassemble(Reader& reader, uint64_t offset, uint64_t broke_at, const Claims& claims,
                      const ReassembleOptions& opt, std::vector<uint8_t>* bytes) {
  Reassembly out;
  try {
    SourceBytes src(reader);
    std::vector<uint8_t> head = candidate_head(src, offset, broke_at, opt);
    // With the decoder's state recorded after every MCU.
    auto probe = std::make_unique<ScanProbe>();
    CheckOptions co;
    co.probe = probe.get();
    co.min_partial_entropy = 0;  // the caller decided it is worth a search
    // Partial or not (a first fragment may hold less than an MCU row of
    // data), what counts is a sequential scan that broke.
    CheckResult first = check_jpeg(head.data(), head.size(), true, co);
    const uint64_t broke = std::max(broke_at, offset + first.broke_at);
    {
      // Any kind of JPEG (progressive too: the blocks are read in the order
      // listed, nothing is resumed).
      Search search(src, *probe, offset, broke, claims, opt);
      if (search.indirect_pass(broke)) {
        take_outcome(search, true, out, bytes);
        return out;
      }
    }
    // Checked complete (a file held because an indirect block lies inside
    // its data, which structure-only checks do not notice) and no list read
    // it differently: nothing to search.
    if (first.status == Status::complete) return out;
    if (!probe->valid) {
      if (first.header_end != 1) return out;  // broke in a scan that cannot be resumed (progressive)
      Search search(src, *probe, offset, broke, claims, opt);
      const bool ok = search.header_pass(head, first.broke_at);
      take_outcome(search, ok, out, bytes);
      return out;
    }
    Level lv = first_level(*probe, offset);
    std::vector<uint8_t>().swap(head);
    // Two fragments first: the common case, and the one with least room
    // for a chain of wrong guesses that happens to decode.
    Search search(src, *probe, offset, std::max(broke_at, lv.broke), claims, opt);
    bool ok = search.pass(lv, 2);
    if (!ok && opt.max_fragments > 2) ok = search.pass(lv, opt.max_fragments);
    take_outcome(search, ok, out, bytes);
  } catch (const Error& e) {
    if (e.errnum() != EIO) throw;
    out = Reassembly{};
  }
  return out;
}

}  // namespace blocksmith::carve
