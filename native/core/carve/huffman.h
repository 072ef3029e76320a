// Huffman tables and the entropy-coded-segment bit reader of the JPEG
// validator. Every read is bounds-checked: the bytes are hostile.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace blocksmith::carve {

struct HuffTable {
  bool defined = false;
  uint8_t fast_len[512];  // 9-bit lookahead: code length (0 = longer code or none)
  uint8_t fast_sym[512];
  // Validation needs no coefficient values: code + magnitude bits in one
  // skip when both fit the 9-bit lookahead (0 = take the slow path).
  uint8_t fast_total_dc[512];  // symbol = magnitude category
  uint8_t fast_total_ac[512];  // symbol = run << 4 | size
  int32_t maxcode[18];    // per length, the largest code, -1 if none
  int32_t valoff[18];     // vals index of a length's first code minus that code
  uint8_t vals[256];
  int max_symbol = 0;     // largest symbol value (for sanity checks)

  // From a DHT's 16 counts and the symbols; false if the table is invalid
  // (more than 256 symbols, or codes that do not fit their lengths).
  bool build(const uint8_t counts[16], const uint8_t* symbols, int nsymbols);
};

// Reads bits of one entropy-coded segment: FF 00 is a stuffed FF, any other
// FF xx is a marker at which reading stops (zeros are fed after it, as
// libjpeg does, and counted so that using them is detected).
class BitReader {
 public:
  BitReader(const uint8_t* p, const uint8_t* end) : begin_(p), p_(p), end_(end) {}

  inline void fill() {
    // Fast path: the next 8 bytes hold no FF (no stuffing, no marker).
    if (bits_ <= 56 && !stopped_ && end_ - p_ >= 8) {
      uint64_t w;
      std::memcpy(&w, p_, 8);
      uint64_t x = ~w;
      if (((x - 0x0101010101010101ULL) & ~x & 0x8080808080808080ULL) == 0) {
        int nbytes = (64 - bits_) >> 3;
        uint64_t be = __builtin_bswap64(w);
        if (nbytes < 8) be &= ~((uint64_t(1) << (64 - nbytes * 8)) - 1);
        acc_ |= be >> bits_;
        p_ += nbytes;
        bits_ += nbytes * 8;
        return;
      }
    }
    while (bits_ <= 56) {
      uint8_t b = 0;
      if (stopped_) {
        padded_ += 8;
      } else if (p_ >= end_) {
        stopped_ = true;
        at_end_ = true;
        padded_ += 8;
      } else if (*p_ != 0xFF) {
        b = *p_++;
      } else if (p_ + 1 >= end_) {
        stopped_ = true;
        at_end_ = true;
        padded_ += 8;
      } else if (p_[1] == 0x00) {
        b = 0xFF;
        p_ += 2;
      } else {
        stopped_ = true;  // a marker: p_ stays on its FF
        padded_ += 8;
      }
      acc_ |= uint64_t(b) << (56 - bits_);
      bits_ += 8;
    }
  }
  inline uint32_t peek(int n) {
    if (bits_ < n) fill();
    return static_cast<uint32_t>(acc_ >> (64 - n));
  }
  inline void skip(int n) {
    acc_ <<= n;
    bits_ -= n;
  }
  inline uint32_t get(int n) {
    if (n == 0) return 0;
    uint32_t v = peek(n);
    skip(n);
    return v;
  }
  // Consumes n bits exactly as n get(1) calls do (the buffer is refilled at
  // the same points, so where reading stops and what is buffered are the
  // same): the correction bits of a progressive refinement scan, whose
  // values validation does not need.
  // Any n: at most 32 bits a step, since the buffer may hold 64 and a
  // 64-bit shift is undefined.
  inline void skip_bits(int n) {
    while (n > 0) {
      if (bits_ == 0) fill();
      int t = n < bits_ ? n : bits_;
      if (t > 32) t = 32;
      skip(t);
      n -= t;
    }
  }
  // Decodes one Huffman symbol; -1 on an invalid code.
  inline int decode(const HuffTable& t) {
    uint32_t look = peek(16);
    uint32_t f = look >> 7;
    if (t.fast_len[f]) {
      skip(t.fast_len[f]);
      return t.fast_sym[f];
    }
    for (int len = 10; len <= 16; len++) {
      int32_t code = static_cast<int32_t>(look >> (16 - len));
      if (code <= t.maxcode[len]) {
        int idx = t.valoff[len] + code;
        if (idx < 0 || idx > 255) return -1;
        skip(len);
        return t.vals[idx];
      }
    }
    return -1;
  }
  // Bits of real data consumed beyond the segment's end (zeros fed after a
  // marker or the end of the buffer): any is an error.
  bool overran() const { return padded_ > bits_; }
  // Whole bytes of real data still unread in the bit buffer.
  int unread_real_bits() const { return padded_ >= bits_ ? 0 : bits_ - padded_; }
  bool at_end() const { return at_end_; }     // ran into the end of the buffer
  bool stopped() const { return stopped_; }
  const uint8_t* pos() const { return p_; }   // next byte not yet buffered
  // Drops the bit buffer and continues after `next` (used after RSTn).
  void restart(const uint8_t* next) {
    begin_ = next;
    p_ = next;
    acc_ = 0;
    bits_ = 0;
    padded_ = 0;
    stopped_ = false;
    at_end_ = false;
  }
  // The byte holding the next unread bit (for cut points). Buffered bytes
  // are unwound from p_ one data byte at a time, a stuffed FF 00 counting as
  // one (in entropy data an FF is always stuffed or a marker, so FF 00 read
  // backwards is unambiguous): the answer depends only on the bits consumed,
  // not on how far ahead the buffer happened to be filled (a check resumed
  // from a saved state buffers differently from one that ran from the start).
  // Called once per failed scan, not per symbol.
  const uint8_t* approx_pos() const {
    int bytes = (unread_real_bits() + 7) / 8;
    const uint8_t* q = p_;
    while (bytes-- > 0 && q > begin_) q -= (q - begin_ >= 2 && q[-1] == 0x00 && q[-2] == 0xFF) ? 2 : 1;
    return q;
  }

 private:
  const uint8_t* begin_;  // where this segment's bytes start (approx_pos unwinds no further)
  const uint8_t* p_;
  const uint8_t* end_;
  uint64_t acc_ = 0;
  int bits_ = 0;
  int padded_ = 0;
  bool stopped_ = false;
  bool at_end_ = false;
};

// JPEG's sign extension of an s-bit magnitude.
inline int extend(uint32_t v, int s) { return s == 0 ? 0 : (v < (1u << (s - 1)) ? int(v) - (1 << s) + 1 : int(v)); }

}  // namespace blocksmith::carve
