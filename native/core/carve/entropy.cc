#include "core/carve/entropy.h"

#include <algorithm>
#include <cstring>

namespace blocksmith::carve {
namespace {

struct Ctx {
  BitReader br;
  const Frame& frame;
  const DecoderTables& t;
  const ScanHeader& s;
  int max_dc;  // largest DC magnitude category
  int max_ac;  // largest AC magnitude category
  unsigned eobrun = 0;
};

// Baseline / extended sequential block: DC then AC 1..63.
__attribute__((always_inline)) inline bool block_sequential(Ctx& c, const HuffTable& dc, const HuffTable& ac) {
  {
    uint32_t f = c.br.peek(16) >> 7;
    if (int tot = dc.fast_total_dc[f]) {
      c.br.skip(tot);
    } else {
      int s = c.br.decode(dc);
      if (s < 0 || s > c.max_dc) return false;
      c.br.get(s);
    }
  }
  for (int k = 1; k < 64;) {
    uint32_t f = c.br.peek(16) >> 7;
    if (int tot = ac.fast_total_ac[f]) {
      int rs = ac.fast_sym[f];
      c.br.skip(tot);
      int r = rs >> 4;
      if (rs & 15) {
        k += r + 1;
        if (k > 64) return false;
      } else {
        if (r != 15) break;  // EOB
        k += 16;
        if (k > 64) return false;
      }
      continue;
    }
    int rs = c.br.decode(ac);
    if (rs < 0) return false;
    int r = rs >> 4, sz = rs & 15;
    if (sz) {
      if (sz > c.max_ac) return false;
      k += r;
      if (k > 63) return false;
      c.br.get(sz);
      k++;
    } else {
      if (r != 15) break;  // EOB
      k += 16;
      if (k > 64) return false;
    }
  }
  return true;
}

__attribute__((always_inline)) inline bool block_dc_first(Ctx& c, const HuffTable& dc) {
  int s = c.br.decode(dc);
  if (s < 0 || s > c.max_dc) return false;
  c.br.get(s);
  return true;
}

__attribute__((always_inline)) inline bool block_ac_first(Ctx& c, const HuffTable& ac, uint64_t& nz) {
  if (c.eobrun > 0) {
    c.eobrun--;
    return true;
  }
  for (int k = c.s.ss; k <= c.s.se; k++) {
    uint32_t f = c.br.peek(16) >> 7;
    int rs, r, sz;
    if (int tot = ac.fast_total_ac[f]) {
      rs = ac.fast_sym[f];
      r = rs >> 4;
      sz = rs & 15;
      c.br.skip(tot);
      if (sz) {
        k += r;
        if (k > c.s.se) return false;
        nz |= uint64_t(1) << k;
        continue;
      }
    } else {
      rs = c.br.decode(ac);
      if (rs < 0) return false;
      r = rs >> 4;
      sz = rs & 15;
      if (sz) {
        if (sz > c.max_ac) return false;
        c.br.get(sz);
      }
    }
    if (sz) {
      k += r;
      if (k > c.s.se) return false;
      nz |= uint64_t(1) << k;
    } else if (r == 15) {
      k += 15;
      if (k > c.s.se) return false;  // a run of zeros past the band's end
    } else {
      c.eobrun = 1u << r;
      if (r) c.eobrun += c.br.get(r);
      c.eobrun--;
      break;
    }
  }
  return true;
}

// Set bits of x. Inline: the build targets baseline x86-64 (no POPCNT), where
// the builtin is a libgcc call (4% of a carve's CPU on big.img).
inline int bit_count(uint64_t x) {
  x -= (x >> 1) & 0x5555555555555555ULL;
  x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
  x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
  return static_cast<int>((x * 0x0101010101010101ULL) >> 56);
}

// Coefficients k..se (k <= se + 1, se <= 63) as a mask.
inline uint64_t band(int k, int se) {
  return k > se ? 0 : (~uint64_t(0) >> (63 - se)) & (~uint64_t(0) << k);
}

__attribute__((always_inline)) inline bool block_ac_refine(Ctx& c, const HuffTable& ac, uint64_t& nz) {
  int k = c.s.ss;
  const int se = c.s.se;
  if (c.eobrun == 0) {
    for (; k <= se; k++) {
      int rs = c.br.decode(ac);
      if (rs < 0) return false;
      int r = rs >> 4, sz = rs & 15;
      if (sz) {
        if (sz != 1) return false;
        c.br.get(1);
      } else if (r != 15) {
        c.eobrun = 1u << r;
        if (r) c.eobrun += c.br.get(r);
        break;
      }
      // Skip r zero coefficients, reading a correction bit for each non-zero
      // one passed: k goes to the (r+1)-th zero coefficient from k (past se
      // when there are fewer). On masks rather than a coefficient at a time
      // (that loop was the hottest code of a carve: progressive files were
      // 44% of big.img's JPEG bytes).
      const uint64_t in_band = band(k, se);
      uint64_t zeros = ~nz & in_band;
      for (int i = 0; i < r && zeros; i++) zeros &= zeros - 1;
      const int stop = zeros ? __builtin_ctzll(zeros) : se + 1;
      const uint64_t passed = stop > 63 ? in_band : in_band & ((uint64_t(1) << stop) - 1);
      c.br.skip_bits(bit_count(nz & passed));
      k = stop;
      if (sz) {
        if (k > se) return false;
        nz |= uint64_t(1) << k;
      }
    }
  }
  if (c.eobrun > 0) {
    c.br.skip_bits(bit_count(nz & band(k, se)));  // a correction bit for each non-zero one
    c.eobrun--;
  }
  return true;
}

enum class Kind { sequential, dc_first, dc_refine, ac_first, ac_refine };

// The state between two MCUs: the next unread bit, found by walking back from
// the reader's position over the bits still buffered. A byte of data is one
// source byte, or two for a stuffed FF 00 (an FF is always followed by 00
// inside a segment, so walking back is unambiguous). `seg` is where the
// current restart interval's bytes begin; nothing buffered lies before it.
ScanState state_here(const BitReader& br, const uint8_t* p, const uint8_t* seg, uint64_t unit, unsigned next_rst) {
  const uint8_t* q = br.pos();
  auto back = [&] { q -= (q - seg >= 2 && q[-1] == 0x00 && q[-2] == 0xFF) ? 2 : 1; };
  int r = br.unread_real_bits();
  for (; r >= 8; r -= 8) back();
  int bit = 0;
  if (r > 0) {
    back();
    bit = 8 - r;
  }
  return ScanState{size_t(q - p), bit, unit, next_rst};
}

// Which kind of blocks a scan codes.
Kind scan_kind(const Frame& frame, const ScanHeader& scan) {
  if (!frame.progressive) return Kind::sequential;
  if (scan.ss == 0) return scan.ah == 0 ? Kind::dc_first : Kind::dc_refine;
  return scan.ah == 0 ? Kind::ac_first : Kind::ac_refine;
}

// The blocks of one MCU of a sequential scan, in order, with their tables;
// returns how many (at most 10).
int sequential_mcu_tables(const Frame& frame, const DecoderTables& tables, const ScanHeader& scan,
                          const HuffTable* mcu_dc[10], const HuffTable* mcu_ac[10]) {
  const bool interleaved = scan.ns > 1;
  int mcu_blocks = 0;
  for (int ci = 0; ci < scan.ns; ci++) {
    const Component& comp = frame.comp[scan.cidx[ci]];
    int n = interleaved ? comp.h * comp.v : 1;
    for (int b = 0; b < n && mcu_blocks < 10; b++, mcu_blocks++) {
      mcu_dc[mcu_blocks] = &tables.dc[scan.td[ci]];
      mcu_ac[mcu_blocks] = &tables.ac[scan.ta[ci]];
    }
  }
  return mcu_blocks;
}

// Block (bx, by) of the scan's component ci.
__attribute__((always_inline)) inline bool decode_block(Ctx& c, Frame& frame, const DecoderTables& tables,
                                                        const ScanHeader& scan, Kind kind, int ci, int bx, int by) {
  Component& comp = frame.comp[scan.cidx[ci]];
  switch (kind) {
    case Kind::sequential:
      return block_sequential(c, tables.dc[scan.td[ci]], tables.ac[scan.ta[ci]]);
    case Kind::dc_first:
      return block_dc_first(c, tables.dc[scan.td[ci]]);
    case Kind::dc_refine:
      c.br.get(1);
      return true;
    case Kind::ac_first:
      return block_ac_first(c, tables.ac[scan.ta[ci]], comp.nz[size_t(by) * comp.bw + bx]);
    case Kind::ac_refine:
      return block_ac_refine(c, tables.ac[scan.ta[ci]], comp.nz[size_t(by) * comp.bw + bx]);
  }
  return false;
}

// Unit u of a progressive scan: an MCU when interleaved, else one block
// (`per_row` units a row).
__attribute__((always_inline)) inline bool decode_progressive_unit(Ctx& c, Frame& frame, const DecoderTables& tables,
                                                                   const ScanHeader& scan, Kind kind, uint64_t u,
                                                                   uint64_t per_row) {
  if (scan.ns == 1) return decode_block(c, frame, tables, scan, kind, 0, int(u % per_row), int(u / per_row));
  uint64_t mx = u % per_row, my = u / per_row;
  for (int ci = 0; ci < scan.ns; ci++) {
    const Component& comp = frame.comp[scan.cidx[ci]];
    for (int yy = 0; yy < comp.v; yy++)
      for (int xx = 0; xx < comp.h; xx++)
        if (!decode_block(c, frame, tables, scan, kind, ci, int(mx) * comp.h + xx, int(my) * comp.v + yy)) return false;
  }
  return true;
}

// At the end of a restart interval, which must end exactly before RSTn (n
// counting 0..7): returns where the next interval begins, the reader
// restarted there; or null, with `why` (null when the data ends first).
inline const uint8_t* cross_restart_marker(Ctx& c, const uint8_t* end, unsigned& next_rst, const char*& why) {
  why = nullptr;
  if (c.br.overran()) {
    why = "entropy-coded data ends inside a restart interval";
    return nullptr;
  }
  if (c.br.unread_real_bits() >= 8) {
    why = "extraneous bytes before a restart marker";
    return nullptr;
  }
  const uint8_t* m = c.br.pos();
  if (m + 2 > end) return nullptr;
  if (m[0] != 0xFF || m[1] != 0xD0 + next_rst) {
    why = "restart marker missing or out of order";
    return nullptr;
  }
  next_rst = (next_rst + 1) & 7;
  c.br.restart(m + 2);
  c.eobrun = 0;
  return m + 2;
}

// After the last MCU only the padding of the last byte may remain, then a
// marker (not a stuffed byte, not RSTn): returns it; or null, with `why`
// (null when the data ends first).
inline const uint8_t* marker_after_scan(const Ctx& c, const uint8_t* end, const char*& why) {
  why = nullptr;
  if (c.br.unread_real_bits() >= 8) {
    why = "extraneous bytes after the last MCU";
    return nullptr;
  }
  const uint8_t* m = c.br.pos();
  if (m + 2 > end) return nullptr;
  if (m[0] != 0xFF || m[1] == 0x00 || (m[1] >= 0xD0 && m[1] <= 0xD7)) {
    why = "no marker after the entropy-coded data";
    return nullptr;
  }
  return m;
}

// Where decoding stands between MCUs, for the result. Random bytes often
// decode for a while before an error shows, so a failure discards the MCU
// row it happened in and the one before; a restart marker in the right order
// is proof that what precedes it is good.
struct Progress {
  const uint8_t* seg;       // where the current restart interval's bytes begin
  const uint8_t* rst_good;  // after the last restart marker crossed
  const uint8_t* row_prev;  // the good end before the last MCU row ended
};

// The result of a scan that broke at the decoder's position.
inline ScanResult failed(ScanResult res, const Ctx& c, const Progress& at, bool eof, const char* why) {
  res.good_end = std::max(at.rst_good, at.row_prev);
  bool short_data = c.br.at_end() && !eof;
  res.outcome = short_data ? ScanOutcome::need_more : ScanOutcome::bad;
  res.broke_at = c.br.approx_pos();
  res.reason = why;
  return res;
}

// Before MCU u of an interval's start: crosses the restart marker there.
// False: the scan ends here (res says how).
inline bool restart_at(Ctx& c, const uint8_t* end, bool eof, uint64_t u, unsigned& next_rst, Progress& at,
                       ScanResult& res) {
  const char* why;
  const uint8_t* next = cross_restart_marker(c, end, next_rst, why);
  if (!next && why) {
    res = failed(res, c, at, eof, why);
    return false;
  }
  if (!next) {
    res.outcome = eof ? ScanOutcome::bad : ScanOutcome::need_more;
    res.broke_at = c.br.pos();
    res.reason = "data ends before a restart marker";
    return false;
  }
  at.seg = at.rst_good = at.row_prev = res.good_end = next;
  res.good_units = u;
  return true;
}

// After the last MCU: the marker that ends the scan.
inline ScanResult end_of_scan(const Ctx& c, const uint8_t* end, bool eof, uint64_t units, const Progress& at,
                              ScanResult res) {
  const char* why;
  const uint8_t* m = marker_after_scan(c, end, why);
  if (!m && why) return failed(res, c, at, eof, why);
  if (!m) {
    if (!eof) {
      res.outcome = ScanOutcome::need_more;
      return res;
    }
    return failed(res, c, at, eof, "no marker after the entropy-coded data");
  }
  res.outcome = ScanOutcome::ok;
  res.end = m;
  res.good_end = m;
  res.good_units = units;
  return res;
}

}  // namespace

ScanResult skip_scan(const uint8_t* p, const uint8_t* end, bool eof) {
  ScanResult r;
  r.good_end = p;
  while (true) {
    const void* hit = std::memchr(p, 0xFF, static_cast<size_t>(end - p));
    if (!hit) break;
    const uint8_t* q = static_cast<const uint8_t*>(hit);
    if (q + 1 >= end) break;
    uint8_t m = q[1];
    if (m == 0x00 || (m >= 0xD0 && m <= 0xD7)) {
      p = q + 2;
      r.good_end = p;
      continue;
    }
    if (m == 0xFF) {
      p = q + 1;
      continue;
    }
    r.outcome = ScanOutcome::ok;
    r.end = q;
    r.good_end = q;
    return r;
  }
  r.outcome = eof ? ScanOutcome::bad : ScanOutcome::need_more;
  r.broke_at = end;
  r.reason = "entropy-coded data runs to the end of the source";
  return r;
}

uint64_t scan_units(const Frame& frame, const ScanHeader& scan, uint64_t* blocks_per_unit) {
  uint64_t per_unit = 1;
  uint64_t units = 0;
  if (scan.ns > 1) {
    per_unit = 0;
    for (int i = 0; i < scan.ns; i++) per_unit += uint64_t(frame.comp[scan.cidx[i]].h) * frame.comp[scan.cidx[i]].v;
    units = uint64_t(frame.mcux) * uint64_t(frame.mcuy);
  } else {
    const Component& c0 = frame.comp[scan.cidx[0]];
    units = uint64_t(c0.bw_real) * uint64_t(c0.bh_real);
  }
  if (blocks_per_unit) *blocks_per_unit = per_unit;
  return units;
}

ScanResult decode_scan(const uint8_t* p, const uint8_t* end, bool eof, Frame& frame, const DecoderTables& tables,
                       const ScanHeader& scan, const ScanState* from, std::vector<ScanState>* states,
                       uint64_t states_every) {
  const uint8_t* start = from ? p + std::min<size_t>(from->byte, size_t(end - p)) : p;
  Ctx c{BitReader(start, end), frame, tables, scan, frame.precision > 8 ? 15 : 11, frame.precision > 8 ? 14 : 10};
  ScanResult res;
  res.good_end = start;
  if (from && frame.progressive) {
    res.broke_at = start;
    res.reason = "only sequential scans can be resumed";
    return res;
  }
  if (from) c.br.get(from->bit);
  const Kind kind = scan_kind(frame, scan);
  const uint64_t per_row = scan.ns > 1 ? uint64_t(frame.mcux) : uint64_t(frame.comp[scan.cidx[0]].bw_real);
  const uint64_t units = scan_units(frame, scan);
  const unsigned ri = tables.restart_interval;
  unsigned next_rst = from ? from->next_rst & 7 : 0;
  Progress at{start, start, start};
  auto fail = [&](const char* why) { return failed(res, c, at, eof, why); };

  const HuffTable* mcu_dc[10];
  const HuffTable* mcu_ac[10];
  const int mcu_blocks = kind == Kind::sequential ? sequential_mcu_tables(frame, tables, scan, mcu_dc, mcu_ac) : 0;

  for (uint64_t u = from ? from->unit : 0; u < units; u++) {
    if (ri && u > 0 && u % ri == 0 && !restart_at(c, end, eof, u, next_rst, at, res)) return res;
    if (kind == Kind::sequential) {
      for (int b = 0; b < mcu_blocks; b++)
        if (!block_sequential(c, *mcu_dc[b], *mcu_ac[b])) return fail("invalid Huffman data");
    } else if (!decode_progressive_unit(c, frame, tables, scan, kind, u, per_row)) {
      return fail("invalid Huffman data");
    }
    if (c.br.overran()) return fail("entropy-coded data ends before the last MCU");
    if (states && (states_every <= 1 || (u + 1) % states_every == 1))
      states->push_back(state_here(c.br, p, at.seg, u + 1, next_rst));
    if ((u + 1) % per_row == 0) {
      at.row_prev = res.good_end;
      res.good_end = c.br.approx_pos();
      res.good_units = u + 1;
    }
  }
  return end_of_scan(c, end, eof, units, at, res);
}

}  // namespace blocksmith::carve
