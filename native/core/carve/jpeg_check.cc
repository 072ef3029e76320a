#include "core/carve/jpeg_check.h"

#include <algorithm>
#include <memory>

#include "core/carve/entropy.h"
#include "core/carve/jpeg_segments.h"
#include "core/carve/jpeg_types.h"
#include "core/carve/signature.h"

namespace blocksmith::carve {

const char* status_name(Status s) {
  switch (s) {
    case Status::reject: return "rejected";
    case Status::complete: return "complete";
    case Status::partial: return "partial";
    case Status::need_more: return "need-more";
  }
  return "?";
}

bool header_check(const uint8_t* d, size_t n) { return n >= 4 && is_soi_candidate(d); }

// check_jpeg's whole state between two marker segments (CheckResume::walk).
struct CheckWalk {
  CheckResult r;
  DecoderTables tables;
  Frame frame;
  size_t pos = 2;
  size_t first_scan_at = 0;  // where the first scan's entropy data begins
  size_t good_end = 0;       // last verified cut point
  bool in_scans = false;
  uint64_t decoded_blocks = 0;  // over all scans so far (bounded by opt)
};

namespace {
inline unsigned be16(const uint8_t* p) { return unsigned(p[0]) << 8 | p[1]; }
}  // namespace

bool parse_dht(const uint8_t* s, size_t n, DecoderTables& t) {
  size_t i = 0;
  while (i < n) {
    if (i + 17 > n) return false;
    int tc = s[i] >> 4, th = s[i] & 15;
    if (tc > 1 || th > 3) return false;
    int total = 0;
    for (int k = 0; k < 16; k++) total += s[i + 1 + k];
    if (total == 0 || total > 256 || i + 17 + size_t(total) > n) return false;
    HuffTable& h = tc == 0 ? t.dc[th] : t.ac[th];
    if (!h.build(s + i + 1, s + i + 17, total)) return false;
    i += 17 + size_t(total);
  }
  return true;
}

bool parse_dqt(const uint8_t* s, size_t n, DecoderTables& t) {
  size_t i = 0;
  if (n == 0) return false;
  while (i < n) {
    int pq = s[i] >> 4, tq = s[i] & 15;
    if (pq > 1 || tq > 3) return false;
    size_t len = pq ? 128 : 64;
    if (i + 1 + len > n) return false;
    t.qt[tq] = true;
    for (size_t k = 0; k < 64; k++) t.quant[tq][k] = uint16_t(pq ? be16(s + i + 1 + 2 * k) : s[i + 1 + k]);
    i += 1 + len;
  }
  return true;
}

bool parse_sof(uint8_t m, const uint8_t* s, size_t n, Frame& f) {
  if (n < 6) return false;
  f.sof = m;
  f.precision = s[0];
  f.height = int(be16(s + 1));
  f.width = int(be16(s + 3));
  f.ncomp = s[5];
  f.progressive = (m == 0xC2 || m == 0xC6 || m == 0xCA || m == 0xCE);
  f.arithmetic = m >= 0xC9;
  f.lossless = (m == 0xC3 || m == 0xC7 || m == 0xCB || m == 0xCF);
  if (m == 0xC5 || m == 0xC6 || m == 0xC7 || m == 0xCD || m == 0xCE || m == 0xCF) f.lossless = true;  // hierarchical: structure only
  if (f.ncomp < 1 || f.ncomp > 4 || n != 6 + size_t(f.ncomp) * 3) return false;
  if (f.width == 0 || f.height == 0) return false;  // DNL-defined height: not supported
  if (!f.lossless && f.precision != 8 && f.precision != 12) return false;
  if (f.lossless && (f.precision < 2 || f.precision > 16)) return false;
  f.hmax = f.vmax = 1;
  for (int i = 0; i < f.ncomp; i++) {
    Component& c = f.comp[i];
    c.id = s[6 + i * 3];
    c.h = s[7 + i * 3] >> 4;
    c.v = s[7 + i * 3] & 15;
    c.tq = s[8 + i * 3];
    if (c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4 || c.tq > 3) return false;
    for (int j = 0; j < i; j++)
      if (f.comp[j].id == c.id) return false;
    f.hmax = std::max<int>(f.hmax, c.h);
    f.vmax = std::max<int>(f.vmax, c.v);
  }
  f.mcux = (f.width + 8 * f.hmax - 1) / (8 * f.hmax);
  f.mcuy = (f.height + 8 * f.vmax - 1) / (8 * f.vmax);
  uint64_t blocks = 0;
  for (int i = 0; i < f.ncomp; i++) {
    Component& c = f.comp[i];
    c.bw = f.mcux * c.h;
    c.bh = f.mcuy * c.v;
    int cw = (f.width * c.h + f.hmax - 1) / f.hmax;
    int ch = (f.height * c.v + f.vmax - 1) / f.vmax;
    c.bw_real = (cw + 7) / 8;
    c.bh_real = (ch + 7) / 8;
    blocks += uint64_t(c.bw) * uint64_t(c.bh);
  }
  if (f.progressive && !f.arithmetic && !f.lossless) {
    if (blocks > (uint64_t(1) << 24)) return false;  // > 1 G pixels: refuse rather than allocate
    for (int i = 0; i < f.ncomp; i++) f.comp[i].nz.assign(size_t(f.comp[i].bw) * f.comp[i].bh, 0);
  }
  f.present = true;
  return true;
}

bool parse_sos(const uint8_t* s, size_t n, const Frame& f, const DecoderTables& t, ScanHeader& sc) {
  if (n < 1) return false;
  sc.ns = s[0];
  if (sc.ns < 1 || sc.ns > 4 || n != 4 + size_t(sc.ns) * 2) return false;
  int blocks_in_mcu = 0;
  for (int i = 0; i < sc.ns; i++) {
    uint8_t id = s[1 + i * 2];
    int found = -1;
    for (int j = 0; j < f.ncomp; j++)
      if (f.comp[j].id == id) found = j;
    if (found < 0) return false;
    for (int j = 0; j < i; j++)
      if (sc.cidx[j] == found) return false;
    sc.cidx[i] = found;
    sc.td[i] = s[2 + i * 2] >> 4;
    sc.ta[i] = s[2 + i * 2] & 15;
    if (sc.td[i] > 3 || sc.ta[i] > 3) return false;
    blocks_in_mcu += f.comp[found].h * f.comp[found].v;
  }
  if (sc.ns > 1 && blocks_in_mcu > 10) return false;
  sc.ss = s[1 + sc.ns * 2];
  sc.se = s[2 + sc.ns * 2];
  sc.ah = s[3 + sc.ns * 2] >> 4;
  sc.al = s[3 + sc.ns * 2] & 15;
  if (f.arithmetic || f.lossless) return true;
  if (f.progressive) {
    if (sc.ss > 63 || sc.se > 63 || sc.ss > sc.se || sc.ah > 13 || sc.al > 13) return false;
    if (sc.ss == 0 && sc.se != 0) return false;
    if (sc.ss > 0 && sc.ns != 1) return false;
  } else if (sc.ss != 0 || sc.se != 63 || sc.ah != 0 || sc.al != 0) {
    return false;
  }
  // The tables the scan uses must exist.
  for (int i = 0; i < sc.ns; i++) {
    bool need_dc = !f.progressive || (sc.ss == 0 && sc.ah == 0);
    bool need_ac = !f.progressive || sc.ss > 0;
    if (need_dc && !t.dc[sc.td[i]].defined) return false;
    if (need_ac && !t.ac[sc.ta[i]].defined) return false;
  }
  return true;
}

namespace {

bool is_sof(uint8_t m) { return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC; }

// The MP Entry list of an APP2 "MPF\0" payload at span offset `at`.
void parse_mpf(const uint8_t* d, size_t at, size_t n, std::vector<std::pair<size_t, size_t>>& out) {
  if (n < 4 + 8 || d[at] != 'M' || d[at + 1] != 'P' || d[at + 2] != 'F' || d[at + 3] != 0) return;
  const uint8_t* t = d + at + 4;
  size_t tn = n - 4;
  size_t base = at + 4;
  bool le = t[0] == 'I';
  if (!(t[0] == t[1] && (t[0] == 'I' || t[0] == 'M'))) return;
  auto u16 = [&](size_t o, uint32_t& v) {
    if (o + 2 > tn) return false;
    v = le ? (t[o] | t[o + 1] << 8) : (t[o] << 8 | t[o + 1]);
    return true;
  };
  auto u32 = [&](size_t o, uint32_t& v) {
    if (o + 4 > tn) return false;
    v = le ? (uint32_t(t[o]) | uint32_t(t[o + 1]) << 8 | uint32_t(t[o + 2]) << 16 | uint32_t(t[o + 3]) << 24)
           : (uint32_t(t[o]) << 24 | uint32_t(t[o + 1]) << 16 | uint32_t(t[o + 2]) << 8 | uint32_t(t[o + 3]));
    return true;
  };
  uint32_t ifd = 0, count = 0;
  if (!u32(4, ifd) || !u16(ifd, count) || count > 64) return;
  for (uint32_t i = 0; i < count; i++) {
    size_t e = ifd + 2 + size_t(i) * 12;
    uint32_t tag = 0, bytes = 0, off = 0;
    if (!u16(e, tag) || !u32(e + 4, bytes) || !u32(e + 8, off)) return;
    if (tag != 0xB002 || bytes % 16 != 0 || bytes / 16 > 16) continue;
    for (uint32_t k = 1; k < bytes / 16; k++) {
      uint32_t size = 0, img = 0;
      if (!u32(off + k * 16 + 4, size) || !u32(off + k * 16 + 8, img)) return;
      if (img == 0 || size < 4) continue;
      out.emplace_back(base + img, size);
    }
  }
}

// Units (MCUs, or blocks of a single-component scan) in one row of the image.
uint64_t mcu_row(const Frame& frame, const ScanHeader& scan) {
  return scan.ns > 1 ? uint64_t(frame.mcux) : uint64_t(frame.comp[scan.cidx[0]].bw_real);
}

// After need_more in a sequential scan: the latest state with two MCU rows
// or more decoded after it (`last` is the first unit of the last row begun,
// so at least that much) (a failure further on then leaves the same last
// good point as a decode from the start would) and not at a restart
// interval's end (there the marker is checked first). None: the resume
// point stays as it was.
// `states`: one after the first unit of each row (decode_scan's states_every).
void keep_resume(const Frame& frame, const ScanHeader& scan, const DecoderTables& tables, size_t data,
                 const std::vector<ScanState>& states, CheckResume& resume) {
  if (states.empty()) return;
  const uint64_t per_row = mcu_row(frame, scan);
  const uint64_t last = states.back().unit;
  if (per_row == 0 || last < 2 * per_row) return;
  const unsigned ri = tables.restart_interval;
  for (auto it = states.rbegin(); it != states.rend(); ++it) {
    if (it->unit + 2 * per_row > last || (ri && it->unit % ri == 0)) continue;
    resume.scan_data = data;
    resume.state = *it;
    return;
  }
}

bool is_unexpected_marker(uint8_t m) {
  return m == 0xD8 || m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD7) || (m >= 0x02 && m <= 0xBF) || m == 0xC8;
}

// One check_jpeg walk over the marker segments of d[0, n). Each step returns
// true when the walk is over (its outcome is then in w.r).
struct MarkerWalk {
  const uint8_t* d;
  size_t n;
  bool eof;
  const CheckOptions& opt;
  CheckWalk& w;

  // file check: what a walk that stopped early amounts to.
  bool stop(const char* why, size_t broke_at) {
    CheckResult& r = w.r;
    r.reason = why;
    r.broke_at = broke_at;
    if (w.in_scans && w.good_end > w.first_scan_at && w.good_end - w.first_scan_at >= opt.min_partial_entropy) {
      r.status = Status::partial;
      r.length = w.good_end;
    } else {
      r.status = Status::reject;
      r.length = 0;
    }
    return true;
  }
  bool need_more() {
    w.r.status = Status::need_more;
    return true;
  }
  // The bytes ran out: more may come, else the walk stops there.
  bool ran_out(const char* why, size_t at) { return eof ? stop(why, at) : need_more(); }

  bool next_segment();
  bool end_of_image(size_t mpos);
  bool table_or_header(uint8_t m, const uint8_t* seg, size_t seglen, size_t mpos);
  bool scan(const uint8_t* seg, size_t seglen, size_t len, size_t mpos);
  bool check_scan_header(const uint8_t* seg, size_t seglen, size_t mpos, ScanHeader& sc);
  void keep_probe(const ScanHeader& sc, const ScanResult& sr, size_t data);
};

// The marker at w.pos and its segment. False: the walk goes on after it.
bool MarkerWalk::next_segment() {
  size_t& pos = w.pos;
  if (pos + 2 > n) return ran_out("the data ends inside the marker segments", pos);
  if (d[pos] != 0xFF) return stop("a marker was expected", pos);
  const size_t mpos = pos;
  while (pos < n && d[pos] == 0xFF) pos++;  // fill bytes
  if (pos >= n) return ran_out("the data ends inside the marker segments", mpos);
  const uint8_t m = d[pos++];
  if (m == 0xD9) return end_of_image(mpos);
  if (is_unexpected_marker(m)) return stop(m == 0xD8 ? "a new SOI inside the image" : "an unexpected marker", mpos);
  if (pos + 2 > n) return ran_out("the data ends inside the marker segments", mpos);
  const size_t len = be16(d + pos);
  if (len < 2) return stop("a marker segment with a bad length", mpos);
  if (pos + len > n) return ran_out("the data ends inside a marker segment", mpos);
  const uint8_t* seg = d + pos + 2;
  const size_t seglen = len - 2;
  if (m == 0xDA) return scan(seg, seglen, len, mpos);
  if (table_or_header(m, seg, seglen, mpos)) return true;
  // COM, DAC, DNL, DHP, EXP, JPGn: skipped by length.
  pos += len;
  return false;
}

// EOI: the image is complete.
bool MarkerWalk::end_of_image(size_t mpos) {
  CheckResult& r = w.r;
  const size_t pos = w.pos;
  if (!w.frame.present || r.info.scans == 0) return stop("EOI before any image data", mpos);
  r.status = Status::complete;
  r.length = pos;
  r.reason.clear();
  // An MPO / MPF file: the images its index lists after this one belong
  // to the file when every one of them checks complete where it says.
  if (r.info.mpf_images.empty()) return true;
  size_t last = pos;
  bool ok = true;
  for (auto [off, len] : r.info.mpf_images) {
    if (off < pos || off - pos > (size_t(1) << 30) || len > (size_t(1) << 30)) { ok = false; break; }
    last = std::max(last, off + len);
  }
  if (ok && last > n) {
    if (!eof) return need_more();
    ok = false;
  }
  for (auto [off, len] : r.info.mpf_images) {
    if (!ok) break;
    CheckOptions sub_opt = opt;
    sub_opt.resume = nullptr;  // another image's bytes
    CheckResult sub = check_jpeg(d + off, len, true, sub_opt);
    ok = sub.status == Status::complete && sub.length + 16 >= len;
  }
  if (ok) {
    r.length = last;
    r.info.mpf_included = true;
  }
  return true;
}

// A segment before (or between) scans: tables, the frame header, APPn.
bool MarkerWalk::table_or_header(uint8_t m, const uint8_t* seg, size_t seglen, size_t mpos) {
  CheckResult& r = w.r;
  if (m == 0xC4) {
    if (!parse_dht(seg, seglen, w.tables)) return stop("a bad Huffman table", mpos);
  } else if (m == 0xDB) {
    if (!parse_dqt(seg, seglen, w.tables)) return stop("a bad quantisation table", mpos);
  } else if (m == 0xDD) {
    if (seglen != 2) return stop("a bad restart interval", mpos);
    w.tables.restart_interval = be16(seg);
  } else if (is_sof(m)) {
    Frame& frame = w.frame;
    if (frame.present) return stop("a second frame header", mpos);
    if (!parse_sof(m, seg, seglen, frame)) return stop("a bad frame header", mpos);
    r.info.width = frame.width;
    r.info.height = frame.height;
    r.info.components = frame.ncomp;
    r.info.precision = frame.precision;
    r.info.sof = m;
    r.info.progressive = frame.progressive;
    r.info.arithmetic = frame.arithmetic;
    r.info.lossless = frame.lossless;
  } else if (m >= 0xE0 && m <= 0xEF) {
    const size_t pos = w.pos;
    r.info.app_payloads.emplace_back(pos + 2, pos + 2 + seglen);
    if (m == 0xE1 && !r.info.has_exif && seglen >= 6) r.info.has_exif = parse_exif(seg, seglen, r.info.exif);
    if (m == 0xE2 && r.info.mpf_images.empty() && !w.in_scans) parse_mpf(d, pos + 2, seglen, r.info.mpf_images);
  }
  return false;
}

// The scan header, its tables, and the bounds on a hostile file's cost.
bool MarkerWalk::check_scan_header(const uint8_t* seg, size_t seglen, size_t mpos, ScanHeader& sc) {
  const Frame& frame = w.frame;
  if (!frame.present) return stop("a scan before the frame header", mpos);
  if (!parse_sos(seg, seglen, frame, w.tables, sc)) return stop("a bad scan header", mpos);
  if (!frame.lossless && !frame.arithmetic) {
    for (int i = 0; i < frame.ncomp; i++)
      if (!w.tables.qt[frame.comp[i].tq]) return stop("a component without its quantisation table", mpos);
  }
  if (static_cast<unsigned>(w.r.info.scans) >= opt.max_scans) return stop("more scans than any real JPEG has (the limit is reached)", mpos);
  uint64_t blocks_per_unit = 1;
  w.decoded_blocks += scan_units(frame, sc, &blocks_per_unit) * blocks_per_unit;
  if (w.decoded_blocks > opt.max_decoded_blocks) return stop("more decoding work than any real JPEG needs (the limit is reached)", mpos);
  return false;
}

// What a fragment search needs from a sequential scan that broke (or, with
// probe_whole, decoded).
void MarkerWalk::keep_probe(const ScanHeader& sc, const ScanResult& sr, size_t data) {
  if (!(sr.outcome == ScanOutcome::bad || (opt.probe_whole && sr.outcome == ScanOutcome::ok))) return;
  ScanProbe& pr = *opt.probe;
  pr.valid = true;
  pr.data_start = data;
  pr.broke_at = sr.broke_at ? size_t(sr.broke_at - d) : data;
  pr.frame = w.frame;
  pr.tables = w.tables;
  pr.scan = sc;
}

// SOS and the entropy-coded data after it, decoded (Huffman) or skipped.
bool MarkerWalk::scan(const uint8_t* seg, size_t seglen, size_t len, size_t mpos) {
  CheckResult& r = w.r;
  const Frame& frame = w.frame;
  // Where a later check of more bytes begins again if this scan runs out
  // (decoding changes the frame's progressive maps, so taken before it).
  std::shared_ptr<CheckWalk> at_scan;
  if (opt.resume && !eof) {
    CheckResume& res = *opt.resume;
    if (!res.spare) res.spare = std::make_shared<CheckWalk>();
    at_scan = res.spare;
    *at_scan = w;  // into the spare's memory
    at_scan->pos = mpos;
  }
  ScanHeader sc;
  if (check_scan_header(seg, seglen, mpos, sc)) return true;
  const size_t data = w.pos + len;
  if (!w.in_scans) {
    w.in_scans = true;
    w.first_scan_at = data;
    w.good_end = data;
    r.header_end = mpos;
  }
  const bool probed = opt.probe && !frame.arithmetic && !frame.lossless && !frame.progressive;
  if (probed) opt.probe->states.clear();
  const bool resumable = opt.resume && !probed && !frame.arithmetic && !frame.lossless && !frame.progressive;
  const ScanState* from = resumable && opt.resume->scan_data == data ? &opt.resume->state : nullptr;
  std::vector<ScanState> states;
  ScanResult sr = (frame.arithmetic || frame.lossless)
                      ? skip_scan(d + data, d + n, eof)
                      : decode_scan(d + data, d + n, eof, w.frame, w.tables, sc, from,
                                    probed && !opt.probe_whole ? &opt.probe->states : resumable ? &states : nullptr,
                                    resumable ? mcu_row(frame, sc) : 1);
  if (at_scan && sr.outcome == ScanOutcome::need_more) {
    CheckResume& res = *opt.resume;
    if (res.scan_data != data) res.scan_data = 0;  // a state of an earlier scan
    res.spare.reset();  // it is the walk now
    res.walk = std::move(at_scan);
    if (resumable) keep_resume(frame, sc, w.tables, data, states, res);
  }
  if (probed) keep_probe(sc, sr, data);
  if (sr.outcome == ScanOutcome::need_more) return need_more();
  if (sr.good_end && size_t(sr.good_end - d) > w.good_end) w.good_end = size_t(sr.good_end - d);
  if (sr.outcome == ScanOutcome::bad) return stop(sr.reason, sr.broke_at ? size_t(sr.broke_at - d) : w.good_end);
  r.info.scans++;
  r.info.restart_interval = w.tables.restart_interval;
  r.info.decoded = !(frame.arithmetic || frame.lossless);
  w.pos = size_t(sr.end - d);
  return false;
}

}  // namespace

CheckResult check_jpeg(const uint8_t* d, size_t n, bool eof, const CheckOptions& opt) {
  if (n < 4) {
    CheckResult r;
    r.status = eof ? Status::reject : Status::need_more;
    return r;
  }
  if (!header_check(d, n)) {
    CheckResult r;
    r.reason = "not a JPEG header";
    return r;
  }
  // Fresh, or where an earlier check of these bytes began the scan it ran out in.
  auto walk = opt.resume && opt.resume->walk ? std::make_unique<CheckWalk>(*opt.resume->walk) : std::make_unique<CheckWalk>();
  MarkerWalk step{d, n, eof, opt, *walk};
  while (!step.next_segment()) {
  }
  return walk->r;
}

}  // namespace blocksmith::carve
