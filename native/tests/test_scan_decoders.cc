// The JPEG scan decoder's two builds (portable, BMI2) and its AC run tables
// must decide exactly what the symbol-at-a-time decoder decides.
#include <cstring>
#include <random>
#include <vector>

#include "carve_samples.h"
#include "core/carve/ac_runs.h"
#include "core/carve/entropy_variants.h"
#include "core/carve/huffman.h"
#include "core/carve/jpeg_check.h"
#include "test.h"

using namespace blocksmith::carve;

namespace {

using Bytes = std::vector<uint8_t>;

const std::vector<const Bytes*> samples() {
  return {&carve_samples::baseline, &carve_samples::progressive, &carve_samples::restart, &carve_samples::gray,
          &carve_samples::s444,     &carve_samples::q100_noise};
}

// The AC tables of every sample's DHT segments, as their 16 counts and
// their symbols.
struct RawTable {
  uint8_t counts[16];
  std::vector<uint8_t> symbols;
  HuffTable build() const {
    HuffTable h;
    CHECK(h.build(counts, symbols.data(), int(symbols.size())));
    return h;
  }
};

std::vector<RawTable> sample_ac_raw() {
  std::vector<RawTable> out;
  for (const Bytes* s : samples()) {
    for (size_t i = 2; i + 4 <= s->size();) {
      if ((*s)[i] != 0xFF) break;
      const uint8_t m = (*s)[i + 1];
      const size_t len = size_t((*s)[i + 2]) << 8 | (*s)[i + 3];
      if (m == 0xDA || i + 2 + len > s->size()) break;
      for (size_t j = i + 4; m == 0xC4 && j + 17 <= i + 2 + len;) {
        RawTable t;
        std::memcpy(t.counts, s->data() + j + 1, 16);
        size_t n = 0;
        for (uint8_t c : t.counts) n += c;
        CHECK(j + 17 + n <= i + 2 + len);
        t.symbols.assign(s->begin() + long(j + 17), s->begin() + long(j + 17 + n));
        if ((*s)[j] >> 4 == 1) out.push_back(t);
        j += 17 + n;
      }
      i += 2 + len;
    }
  }
  return out;
}

std::vector<HuffTable> sample_ac_tables() {
  std::vector<HuffTable> out;
  for (const RawTable& r : sample_ac_raw()) out.push_back(r.build());
  return out;
}

// What one table entry must hold, worked out with BitReader::decode one
// symbol at a time over the 12 bits of v (then zeros, which no symbol taken
// may use): symbols are taken while their code and magnitude fit in the 12
// bits, the magnitude is at most 10 bits and the advance stays within 63;
// an end of block is taken and ends the entry.
uint32_t entry_by_symbols(const HuffTable& t, uint32_t v) {
  Bytes b;
  const uint32_t bits = v << 20;  // v in the top 12 of 32 bits
  for (int i = 0; i < 4; i++) {
    const uint8_t byte = uint8_t(bits >> (24 - 8 * i));
    b.push_back(byte);
    if (byte == 0xFF) b.push_back(0x00);  // stuffed, as in a scan
  }
  for (int i = 0; i < 4; i++) b.push_back(0);
  BitReader br(b.data(), b.data() + b.size());
  const int total = 64;
  int taken = 0, adv = 0;
  bool eob = false;
  while (true) {
    BitReader probe = br;
    const int rs = probe.decode(t);
    if (rs < 0) break;
    const int r = rs >> 4, sz = rs & 15;
    probe.get(sz);
    const int used = total - probe.unread_real_bits();
    if (used > kAcRunBits) break;
    if (sz) {
      if (sz > 10 || adv + r + 1 > 63) break;
      adv += r + 1;
    } else if (r == 15) {
      if (adv + 16 > 63) break;
      adv += 16;
    } else {
      eob = true;
    }
    br = probe;
    taken = used;
    if (eob) break;
  }
  return taken == 0 ? 0 : uint32_t(taken) | uint32_t(adv) << 5 | uint32_t(eob) << 12;
}

void check_same(const uint8_t* d, size_t n, bool eof) {
  use_scan_decoder(ScanDecoder::portable);
  const CheckResult a = check_jpeg(d, n, eof);
  use_scan_decoder(ScanDecoder::automatic);
  const CheckResult b = check_jpeg(d, n, eof);
  CHECK(a.status == b.status);
  CHECK_EQ(a.length, b.length);
  CHECK_EQ(a.broke_at, b.broke_at);
  CHECK_EQ(a.header_end, b.header_end);
  CHECK_EQ(a.reason, b.reason);
}

}  // namespace

TEST("AC run tables: every 12-bit entry of every sample's tables takes what decoding its symbols one by one takes") {
  const std::vector<HuffTable> tables = sample_ac_tables();
  CHECK(tables.size() >= 6);
  int multi = 0;
  for (const HuffTable& t : tables) {
    const uint32_t* runs = ac_run_table(t);
    for (uint32_t v = 0; v < (1u << kAcRunBits); v++) {
      CHECK_EQ(runs[v], entry_by_symbols(t, v));
      if (AcRun::bits(runs[v]) > 0 && AcRun::advance(runs[v]) > 1) multi++;
    }
  }
  CHECK(multi > 1000);  // entries do hold several symbols
}

TEST("AC run tables are found by content: a table parsed again gets the same entries, another table others") {
  const std::vector<HuffTable> tables = sample_ac_tables();
  HuffTable copy = tables[0];
  CHECK(std::memcmp(ac_run_table(copy), ac_run_table(tables[0]), sizeof(uint32_t) << kAcRunBits) == 0);
  for (const HuffTable& t : tables) {
    if (std::memcmp(t.vals, tables[0].vals, sizeof t.vals) == 0) continue;
    const uint32_t* a = ac_run_table(tables[0]);
    const uint32_t* b = ac_run_table(t);
    CHECK(std::memcmp(a, b, sizeof(uint32_t) << kAcRunBits) != 0);
  }
}

TEST("AC run tables: a table's entries stay good while 3 other tables are asked for after it") {
  const RawTable base = sample_ac_raw()[0];
  std::vector<HuffTable> eight;
  for (size_t i = 0; i < 8; i++) {
    RawTable t = base;
    std::swap(t.symbols[0], t.symbols[1 + i]);  // the same codes for other symbols: other entries
    eight.push_back(t.build());
  }
  for (int i = 4; i < 8; i++) ac_run_table(eight[size_t(i)]);
  std::vector<const uint32_t*> got;
  std::vector<std::vector<uint32_t>> want;
  for (int i = 0; i < 4; i++) {
    got.push_back(ac_run_table(eight[size_t(i)]));
    want.emplace_back(got.back(), got.back() + (1u << kAcRunBits));
  }
  for (int i = 0; i < 4; i++) {
    CHECK(std::memcmp(got[size_t(i)], want[size_t(i)].data(), sizeof(uint32_t) << kAcRunBits) == 0);
    for (uint32_t v = 0; v < (1u << kAcRunBits); v += 97) CHECK_EQ(got[size_t(i)][v], entry_by_symbols(eight[size_t(i)], v));
  }
  for (int i = 0; i < 4; i++) CHECK(ac_run_table(eight[size_t(i)]) == got[size_t(i)]);  // found again, not rebuilt
}

TEST("BitReader::skip_bits(n) takes exactly the n bits that n get(1) take, for n up to 2000 (EOB runs pass many at once)") {
  std::mt19937 rng(7);
  Bytes data;
  for (int i = 0; i < 600; i++) {
    const uint8_t b = uint8_t(rng());
    data.push_back(b);
    if (b == 0xFF) data.push_back(0x00);
  }
  data.push_back(0xFF);
  data.push_back(0xD9);
  for (int lead : {0, 1, 7, 13}) {
    for (int n : {1, 31, 32, 33, 63, 64, 65, 127, 128, 500, 2000, 4700}) {
      BitReader a(data.data(), data.data() + data.size());
      BitReader b(data.data(), data.data() + data.size());
      a.get(lead);
      b.get(lead);
      a.skip_bits(n);
      for (int i = 0; i < n; i++) b.get(1);
      CHECK_EQ(a.get(16), b.get(16));
      CHECK_EQ(a.overran(), b.overran());
      CHECK(a.approx_pos() == b.approx_pos());
    }
  }
}

TEST("a quality-100 noise sample (blocks ending at coefficient 63, no end of block) checks complete at its length") {
  const Bytes& s = carve_samples::q100_noise;
  for (ScanDecoder d : {ScanDecoder::portable, ScanDecoder::automatic}) {
    use_scan_decoder(d);
    const CheckResult r = check_jpeg(s.data(), s.size(), true);
    CHECK(r.status == Status::complete);
    CHECK_EQ(r.length, s.size());
  }
  use_scan_decoder(ScanDecoder::automatic);
}

TEST("scan decoders: the portable and the BMI2 build decide alike on every sample, prefix, bit flip and decoy") {
  CHECK(std::string(scan_decoder_name()) == "bmi2" || std::string(scan_decoder_name()) == "portable");
  for (const Bytes* s : samples()) {
    check_same(s->data(), s->size(), true);
    for (size_t n = 0; n < s->size(); n += 3) {
      check_same(s->data(), n, false);
      check_same(s->data(), n, true);
    }
    for (size_t i = 2; i < s->size(); i++) {
      Bytes b = *s;
      b[i] ^= uint8_t(1u << (i % 8));
      check_same(b.data(), b.size(), true);
    }
  }
  std::mt19937 rng(19);
  for (int i = 0; i < 300; i++) {
    const Bytes& s = *samples()[size_t(i) % samples().size()];
    const CheckResult whole = check_jpeg(s.data(), s.size(), true);
    const size_t header = whole.header_end;
    const size_t sos = (size_t(s[header + 2]) << 8 | s[header + 3]) + 2;
    Bytes d(s.begin(), s.begin() + long(header + sos));
    for (int j = 0; j < 20000; j++) d.push_back(uint8_t(rng()));
    check_same(d.data(), d.size(), true);
  }
}
