// Fragmented JPEGs: the decoder's state snapshots and resuming from them,
// the fragment search over memory sources (random, zero and JPEG-data gaps,
// claimed ranges, continuations that must not validate), the block size
// detection, the carve's 'reassembled' files, and the seam check that keeps
// another photo's data out of them (photos made with cjpeg).
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "carve_samples.h"
#include "test_bytes.h"
#include "core/carve/block_size.h"
#include "core/operations/carve.h"
#include "core/carve/entropy.h"
#include "core/carve/jpeg_check.h"
#include "core/carve/reassemble.h"
#include "core/carve/seam.h"
#include "core/readers/memory_reader.h"
#include "test.h"

using namespace blocksmith;
using namespace blocksmith::carve;
using Bytes = std::vector<uint8_t>;

namespace {

Bytes noise(size_t n, uint32_t seed) { return test_bytes::random_bytes(n, seed, 7); }

void put(Bytes& img, size_t off, const uint8_t* p, size_t n) { std::memcpy(img.data() + off, p, n); }

Bytes read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(f), {});
}

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/blocksmith-frag-test-XXXXXX";
    const char* d = ::mkdtemp(tmpl);
    if (!d) coretest::fail(__FILE__, __LINE__, "mkdtemp failed");
    path = d;
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

// `jpeg` cut at `cut` bytes (a block boundary): the first fragment at `at`,
// the rest `gap` bytes later; the gap and everything else is `fill`.
Bytes two_fragments(const Bytes& jpeg, size_t at, size_t cut, size_t gap, const Bytes& fill) {
  Bytes img = fill;
  put(img, at, jpeg.data(), cut);
  put(img, at + cut + gap, jpeg.data() + cut, jpeg.size() - cut);
  return img;
}

struct Run {
  CarveReport rep;
  std::vector<CarvedFile> files;
};

Run carve_memory(const Bytes& img, const std::string& dir, uint32_t block, bool reassemble = true) {
  MemoryReader reader(img.data(), img.size());
  CarveOptions opt;
  opt.out_dir = dir;
  opt.block_size = block;
  opt.reassemble = reassemble;
  opt.threads = 1;
  Control control;
  Run r;
  r.rep = carve::carve(reader, opt, control, [&](const CarvedFile& f) { r.files.push_back(f); });
  return r;
}

const std::vector<const Bytes*> sequential_samples() {
  return {&carve_samples::baseline, &carve_samples::restart, &carve_samples::gray, &carve_samples::s444};
}

}  // namespace

TEST("a scan resumed from any MCU snapshot, over the rest of the file copied elsewhere, ends at the file's EOI") {
  for (const Bytes* s : sequential_samples()) {
    size_t cut = s->size() * 7 / 10;
    Bytes broken(s->begin(), s->begin() + long(cut));
    Bytes junk = noise(20000, 5);
    broken.insert(broken.end(), junk.begin(), junk.end());
    auto probe = std::make_unique<ScanProbe>();
    CheckOptions co;
    co.probe = probe.get();
    co.min_partial_entropy = 0;  // the samples are small
    CHECK(check_jpeg(broken.data(), broken.size(), true, co).status == Status::partial);
    CHECK(probe->valid);
    CHECK(probe->broke_at >= cut);
    size_t resumed = 0;
    for (size_t i = 0; i < probe->states.size(); i++) {
      const ScanState& st = probe->states[i];
      CHECK_EQ(st.unit, uint64_t(i + 1));  // one snapshot after every MCU
      size_t at = probe->data_start + st.byte;
      if (at >= cut) break;  // bits from the junk
      Bytes rest(s->begin() + long(at), s->end());
      ScanState from = st;
      from.byte = 0;
      Frame frame = probe->frame;
      ScanResult r = decode_scan(rest.data(), rest.data() + rest.size(), true, frame, probe->tables, probe->scan, &from);
      CHECK(r.outcome == ScanOutcome::ok);
      CHECK_EQ(at + size_t(r.end - rest.data()), s->size() - 2);  // FF D9
      resumed++;
    }
    CHECK(resumed >= 10);
  }
}

TEST("a snapshot inside a stuffed FF 00 or between restart intervals resumes exactly") {
  // The restart sample has RSTn every MCU row; s444 has stuffed bytes. Every
  // snapshot resumed over the intact file must end at the same EOI.
  for (const Bytes* s : {&carve_samples::restart, &carve_samples::s444}) {
    auto probe = std::make_unique<ScanProbe>();
    CheckOptions co;
    co.probe = probe.get();
    Bytes broken(s->begin(), s->end() - 200);  // ends early: the scan breaks, so the probe is filled
    Bytes junk = noise(4000, 9);
    broken.insert(broken.end(), junk.begin(), junk.end());
    check_jpeg(broken.data(), broken.size(), true, co);
    CHECK(probe->valid);
    size_t ok = 0;
    for (const ScanState& st : probe->states) {
      size_t at = probe->data_start + st.byte;
      if (at >= s->size() - 200) break;
      Frame frame = probe->frame;
      ScanState from = st;
      from.byte = at - probe->data_start;
      const uint8_t* p = s->data() + probe->data_start;
      ScanResult r = decode_scan(p, s->data() + s->size(), true, frame, probe->tables, probe->scan, &from);
      CHECK(r.outcome == ScanOutcome::ok);
      CHECK_EQ(size_t(r.end - s->data()), s->size() - 2);
      ok++;
    }
    CHECK(ok > 0);
  }
}

TEST("two fragments with a random, a zero or another JPEG's data in the gap are reassembled byte-exact") {
  const Bytes& s = carve_samples::s444;
  const size_t at = 64 * 512, cut = 6 * 512;
  Bytes random = noise(1 << 20, 21);
  Bytes zeros = noise(1 << 20, 22);
  std::memset(zeros.data() + at + cut, 0, 40 * 512);
  Bytes other = noise(1 << 20, 23);
  // The gap holds most of another JPEG (same tables family, valid entropy data).
  put(other, at + cut, carve_samples::baseline.data() + 600, carve_samples::baseline.size() - 600);
  struct Case { const char* name; const Bytes* fill; size_t gap; };
  for (const Case& c : {Case{"random", &random, 7 * 512}, Case{"zeros", &zeros, 40 * 512}, Case{"jpeg", &other, 5 * 512}}) {
    Bytes img = two_fragments(s, at, cut, c.gap, *c.fill);
    TempDir dir;
    Run r = carve_memory(img, dir.path, 512);
    CHECK_EQ(r.rep.reassembled, uint64_t(1));
    CHECK_EQ(r.rep.partial, uint64_t(0));
    const CarvedFile* f = nullptr;
    for (auto& x : r.files)
      if (x.offset == at) f = &x;
    CHECK(f != nullptr);
    CHECK_EQ(f->kind, std::string("reassembled"));
    CHECK_EQ(f->fragments.size(), size_t(2));
    CHECK_EQ(f->fragments[0].offset, uint64_t(at));
    CHECK_EQ(f->fragments[0].length, uint64_t(cut));
    CHECK_EQ(f->fragments[1].offset, uint64_t(at + cut + c.gap));
    CHECK_EQ(f->fragments[1].length, uint64_t(s.size() - cut));
    CHECK(read_file(dir.path + "/" + carved_name(at)) == s);
  }
}

TEST("a truncated file followed by random data or zeros stays partial; so does every file with reassembly off") {
  const Bytes& s = carve_samples::s444;
  const size_t at = 16 * 512, keep = 6 * 512;
  for (int zeros = 0; zeros <= 1; zeros++) {
    Bytes img = noise(1 << 20, 31);
    if (zeros) std::memset(img.data() + at, 0, img.size() - at);
    put(img, at, s.data(), keep);
    TempDir dir;
    Run r = carve_memory(img, dir.path, 512);
    CHECK_EQ(r.rep.reassembled, uint64_t(0));
    CHECK_EQ(r.rep.partial, uint64_t(1));
    CHECK_EQ(r.files.at(0).kind, std::string("partial"));
  }
  Bytes img = two_fragments(s, 16 * 512, 6 * 512, 3 * 512, noise(1 << 20, 32));
  TempDir dir;
  Run r = carve_memory(img, dir.path, 512, false);
  CHECK_EQ(r.rep.reassembled, uint64_t(0));
  CHECK_EQ(r.rep.partial, uint64_t(1));
}

TEST("a continuation inside a claimed range (a file already recovered) is not used") {
  const Bytes& s = carve_samples::s444;
  const size_t at = 16 * 512, cut = 6 * 512, gap = 3 * 512;
  Bytes img = two_fragments(s, at, cut, gap, noise(1 << 20, 41));
  MemoryReader reader(img.data(), img.size());
  auto probe = std::make_unique<ScanProbe>();
  CheckOptions co;
  co.probe = probe.get();
  CheckResult first = check_jpeg(img.data() + at, img.size() - at, true, co);
  CHECK(first.status == Status::partial);
  ReassembleOptions ro;
  ro.block_size = 512;
  Claims none;
  Reassembly ok = reassemble(reader, at, at + first.broke_at, none, ro);
  CHECK(ok.ok);
  Claims taken;
  taken.add(at + cut + gap, 512);
  Reassembly refused = reassemble(reader, at, at + first.broke_at, taken, ro);
  CHECK(!refused.ok);
}

TEST("the attempt limit bounds the search: with a limit of 1, a continuation 3 blocks away is not found") {
  const Bytes& s = carve_samples::s444;
  const size_t at = 16 * 512, cut = 6 * 512, gap = 3 * 512;
  Bytes img = two_fragments(s, at, cut, gap, noise(1 << 20, 51));
  MemoryReader reader(img.data(), img.size());
  CheckResult first = check_jpeg(img.data() + at, img.size() - at, true);
  ReassembleOptions ro;
  ro.block_size = 512;
  ro.max_attempts = 1;
  Reassembly r = reassemble(reader, at, at + first.broke_at, Claims{}, ro);
  CHECK(!r.ok);
  CHECK_EQ(r.attempts, uint64_t(2));  // one in the two-fragment pass, one in the pass for more
  ro.max_attempts = 50000;
  ro.max_gap = 2 * 512;  // the continuation is further than that
  CHECK(!reassemble(reader, at, at + first.broke_at, Claims{}, ro).ok);
}

TEST("claims merge overlapping ranges and answer overlap queries at their edges") {
  Claims c;
  c.add(100, 50);   // [100, 150)
  c.add(140, 60);   // [140, 200) merges
  c.add(300, 10);
  CHECK(c.overlaps(199, 200));
  CHECK(!c.overlaps(200, 300));
  CHECK(c.overlaps(0, 101));
  CHECK(!c.overlaps(0, 100));
  CHECK(c.overlaps(305, 306));
  CHECK(!c.overlaps(310, 400));
}

TEST("block grid: FAT clusters from the data region, ext blocks from the superblock; else the offsets' common grid") {
  Bytes fat(4096, 0);
  fat[11] = 0x00; fat[12] = 0x02;  // 512 bytes per sector
  fat[13] = 8;                     // 8 sectors per cluster
  fat[14] = 32;                    // reserved sectors
  fat[16] = 2;                     // FATs
  fat[36] = 0x01; fat[37] = 0x02;  // 513 sectors per FAT (FAT32 field; the FAT16 one is 0)
  std::memcpy(fat.data() + 82, "FAT32   ", 8);
  fat[510] = 0x55; fat[511] = 0xAA;
  MemoryReader f(fat.data(), fat.size());
  BlockGrid fg = filesystem_grid(f);
  CHECK_EQ(fg.size, 4096u);
  CHECK_EQ(fg.phase, uint64_t((32 + 2 * 513) * 512 % 4096));  // cluster 2 starts after the FATs
  Bytes ext(4096, 0);
  ext[1024 + 56] = 0x53; ext[1024 + 57] = 0xEF;
  ext[1024 + 24] = 2;  // 1024 << 2
  MemoryReader e(ext.data(), ext.size());
  CHECK_EQ(filesystem_grid(e).size, 4096u);
  Bytes none = noise(4096, 1);
  MemoryReader n(none.data(), none.size());
  CHECK_EQ(filesystem_grid(n).size, 0u);
  BlockGrid og = offsets_grid({8192 + 512, 16384 + 512, 4096 * 7 + 512, 4096 * 9 + 512, 2048 * 3 + 7});  // 4 of 5 agree
  CHECK_EQ(og.size, 512u);   // 512-aligned all but one, 4096 only after the shift: size 512
  CHECK_EQ(og.phase, 0u);
  BlockGrid shifted = offsets_grid({8192 + 1024, 16384 + 1024, 4096 * 7 + 1024, 3}, 4096);
  CHECK_EQ(shifted.size, 4096u);
  CHECK_EQ(shifted.phase, 1024u);
  CHECK_EQ(offsets_grid({}).size, 512u);
}

TEST("a first fragment ending inside an EXIF segment is joined only where the embedded thumbnail checks complete") {
  // SOI, APP1 "Exif\0\0" + a whole JPEG (the thumbnail), then the main image.
  auto with_app1 = [](const Bytes& outer, const Bytes& payload) {
    const size_t seglen = 2 + 6 + payload.size();
    Bytes out(4 + seglen + outer.size() - 2);
    const uint8_t head[10] = {0xFF, 0xD8, 0xFF, 0xE1, uint8_t(seglen >> 8), uint8_t(seglen), 'E', 'x', 'i', 'f'};
    std::memcpy(out.data(), head, sizeof head);
    std::memcpy(out.data() + 12, payload.data(), payload.size());
    std::memcpy(out.data() + 4 + seglen, outer.data() + 2, outer.size() - 2);
    return out;
  };
  const size_t at = 32 * 512, cut = 2 * 512, gap = 5 * 512;  // the cut falls inside the thumbnail
  Bytes jpeg = with_app1(carve_samples::s444, carve_samples::gray);
  Bytes img = two_fragments(jpeg, at, cut, gap, noise(1 << 20, 61));
  TempDir dir;
  Run r = carve_memory(img, dir.path, 512);
  CHECK_EQ(r.rep.reassembled, uint64_t(1));
  CHECK(read_file(dir.path + "/" + carved_name(at)) == jpeg);
  CHECK_EQ(r.files.at(0).fragments.at(1).offset, uint64_t(at + cut + gap));

  // The same cut in an APP1 of bytes nothing checks: every boundary in it
  // lines the rest of the header up equally well, so nothing is joined.
  Bytes plain = with_app1(carve_samples::s444, noise(carve_samples::gray.size(), 62));
  Bytes img2 = two_fragments(plain, at, cut, gap, noise(1 << 20, 63));
  TempDir dir2;
  Run r2 = carve_memory(img2, dir2.path, 512);
  CHECK_EQ(r2.rep.reassembled, uint64_t(0));
}

namespace {

// A smooth scene with soft shapes and a little noise, different per seed:
// what a photo looks like to the seam check (the carve_samples are noise).
Bytes scene_ppm(int w, int h, uint32_t seed) {
  char head[32];
  int n = std::snprintf(head, sizeof head, "P6\n%d %d\n255\n", w, h);
  Bytes out(head, head + n);
  Bytes jitter = noise(size_t(w) * h * 3, seed);
  const double f1 = 0.015 + 0.006 * (seed % 4), f2 = 0.022 + 0.005 * (seed % 3), ph = seed * 1.7;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++) {
        double v = 120 + 60 * std::sin(x * f1 + ph + c) * std::cos(y * f2 - ph) + 35 * std::sin((x + 2 * y) * 0.011 + c * ph) +
                   (jitter[(size_t(y) * w + x) * 3 + c] % 9) - 4;
        out.push_back(uint8_t(std::clamp(v, 0.0, 255.0)));
      }
  return out;
}

// cjpeg (libjpeg-turbo) over scene_ppm; `args` e.g. "-restart 1".
Bytes photo(int w, int h, uint32_t seed, const std::string& args = "") {
  TempDir dir;
  {
    std::ofstream f(dir.path + "/in.ppm", std::ios::binary);
    Bytes p = scene_ppm(w, h, seed);
    f.write(reinterpret_cast<const char*>(p.data()), std::streamsize(p.size()));
  }
  std::string cmd = "cjpeg -quality 85 " + args + " -outfile '" + dir.path + "/out.jpg' '" + dir.path + "/in.ppm'";
  if (std::system(cmd.c_str()) != 0) coretest::fail(__FILE__, __LINE__, "cjpeg failed (libjpeg-turbo-progs installed?)");
  return read_file(dir.path + "/out.jpg");
}

// The scan of a whole file as seam.h wants it, and the decoder's state after
// every MCU (from a copy whose end is replaced by noise, so that it breaks).
struct Scan {
  std::unique_ptr<ScanProbe> whole = std::make_unique<ScanProbe>();
  std::unique_ptr<ScanProbe> states = std::make_unique<ScanProbe>();
};
Scan scan_of(const Bytes& jpeg) {
  Scan s;
  CheckOptions co;
  co.probe = s.whole.get();
  co.probe_whole = true;
  CHECK(check_jpeg(jpeg.data(), jpeg.size(), true, co).status == Status::complete);
  CHECK(s.whole->valid);
  Bytes broken(jpeg.begin(), jpeg.end() - 64);
  Bytes junk = noise(4096, 77);
  broken.insert(broken.end(), junk.begin(), junk.end());
  CheckOptions cs;
  cs.probe = s.states.get();
  cs.min_partial_entropy = 0;
  check_jpeg(broken.data(), broken.size(), true, cs);
  CHECK(s.states->valid);
  return s;
}

// MCUs where both files' data is at a byte boundary: A's bytes up to one of
// them and B's from it make a file that decodes with the exact MCU count.
std::vector<std::pair<size_t, size_t>> common_boundaries(const Scan& a, const Scan& b) {
  std::vector<std::pair<size_t, size_t>> out;
  const auto& sa = a.states->states;
  const auto& sb = b.states->states;
  for (size_t i = 0; i < sa.size() && i < sb.size(); i++)
    if (sa[i].bit == 0 && sb[i].bit == 0 && sa[i].unit == sb[i].unit)
      out.emplace_back(a.states->data_start + sa[i].byte, b.states->data_start + sb[i].byte);
  return out;
}

Bytes splice(const Bytes& a, size_t cut_a, const Bytes& b, size_t from_b) {
  Bytes out(a.begin(), a.begin() + long(cut_a));
  out.insert(out.end(), b.begin() + long(from_b), b.end());
  return out;
}

}  // namespace

TEST("seam check: a photo split anywhere in its scan data goes on across every join") {
  for (const std::string args : {"", "-restart 1", "-sample 1x1", "-grayscale"}) {
    Bytes a = photo(320, 240, 1, args);
    Scan sa = scan_of(a);
    const size_t data = sa.whole->data_start, len = a.size() - data;
    std::vector<size_t> all;
    for (int k = 1; k < 10; k++) {
      size_t j = data + len * k / 10;
      all.push_back(j);
      SeamVerdict v = check_seams(a.data(), a.size(), *sa.whole, {j});
      CHECK(v.ok);
      CHECK_EQ(v.seams.size(), size_t(1));
      CHECK(v.seams[0].pairs > 0);
    }
    SeamVerdict v = check_seams(a.data(), a.size(), *sa.whole, all);
    CHECK(v.ok);
    CHECK_EQ(v.seams.size(), size_t(9));
  }
}

TEST("seam check: two photos joined where their data lines up decode whole, and are refused") {
  // Same size and settings: the same tables, so B's data decodes as the rest of A.
  Bytes a = photo(480, 320, 1), b = photo(480, 320, 2);
  Scan sa = scan_of(a), sb = scan_of(b);
  size_t tried = 0;
  for (auto [cut_a, from_b] : common_boundaries(sa, sb)) {
    if (cut_a < sa.whole->data_start + 2000 || cut_a > a.size() - 2000) continue;  // a picture on both sides
    Bytes j = splice(a, cut_a, b, from_b);
    CheckResult r = check_jpeg(j.data(), j.size(), true);
    CHECK(r.status == Status::complete);
    CHECK_EQ(r.length, j.size());
    SeamVerdict v = check_seams(j.data(), j.size(), *sa.whole, {cut_a});
    CHECK(!v.ok);
    CHECK(v.reason.find("the picture does not go on across the join") == 0);
    // The same bytes from A itself go on.
    CHECK(check_seams(a.data(), a.size(), *sa.whole, {cut_a}).ok);
    tried++;
  }
  CHECK(tried >= 3);

  // With restart markers each interval starts from DC 0 (no level shift to
  // see): B's rows after A's still do not continue them.
  Bytes ra = photo(480, 320, 1, "-restart 1"), rb = photo(480, 320, 2, "-restart 1");
  Scan rsa = scan_of(ra);
  auto rst = [](const Bytes& x, size_t from, int nth) {  // offset after the nth RSTn marker
    for (size_t i = from; i + 1 < x.size(); i++)
      if (x[i] == 0xFF && x[i + 1] >= 0xD0 && x[i + 1] <= 0xD7 && --nth == 0) return i + 2;
    return size_t(0);
  };
  for (int row : {3, 8, 14}) {
    size_t cut = rst(ra, rsa.whole->data_start, row), from = rst(rb, rsa.whole->data_start, row);
    CHECK(cut > 0 && from > 0);
    Bytes j = splice(ra, cut, rb, from);
    CHECK(check_jpeg(j.data(), j.size(), true).status == Status::complete);
    CHECK(!check_seams(j.data(), j.size(), *rsa.whole, {cut}).ok);
    CHECK(check_seams(ra.data(), ra.size(), *rsa.whole, {cut}).ok);
  }
}

TEST("a damaged photo whose decoding another photo's data would finish stays partial, and says why") {
  // A's first part ends on a block boundary, noise after it (A damaged);
  // further on, on a block boundary, B's data from the same MCU. Nothing
  // claims B's bytes (its header is not in the source), so only the seam
  // check stands between them and a 'reassembled' A.
  Bytes a = photo(480, 320, 1), b = photo(480, 320, 2);
  Scan sa = scan_of(a), sb = scan_of(b);
  auto cuts = common_boundaries(sa, sb);
  size_t used = 0;
  for (auto [cut_a, from_b] : cuts) {
    if (cut_a < sa.whole->data_start + 4000 || cut_a > a.size() - 4000) continue;
    const size_t block = 512, at = 64 * block - cut_a % block + block * 4, cont = 200 * block;  // at + cut_a is a boundary
    Bytes img = noise(1 << 20, 91);
    put(img, at, a.data(), cut_a);
    put(img, cont, b.data() + from_b, b.size() - from_b);
    MemoryReader reader(img.data(), img.size());
    CheckResult first = check_jpeg(img.data() + at, img.size() - at, true);
    CHECK(first.status == Status::partial);
    ReassembleOptions ro;
    ro.block_size = block;
    Reassembly r = reassemble(reader, at, at + first.broke_at, Claims{}, ro);
    CHECK(!r.ok);
    CHECK(r.refused.find("data at " + std::to_string(cont) + " completes its decoding but was not used: the picture does not go on") == 0);
    // A's own rest there instead: reassembled, byte-exact.
    put(img, cont, a.data() + cut_a, a.size() - cut_a);
    std::vector<uint8_t> bytes;
    MemoryReader reader2(img.data(), img.size());
    Reassembly ok = reassemble(reader2, at, at + first.broke_at, Claims{}, ro, &bytes);
    CHECK(ok.ok);
    CHECK(bytes == a);
    if (++used == 2) break;
  }
  CHECK_EQ(used, size_t(2));
}

TEST("claims: a continuation never starts in another candidate's bytes; the file's own and those embedded in it do not count") {
  Claims c;
  c.add(1000, 100);                   // a recovered file
  c.add_candidate(5000, 5000, 3000);  // a partial at 5000: [5000, 8000)
  c.add_candidate(6000, 6000, 4000);  // a preview embedded in it, its verified data running on to 10000
  c.add_candidate(20000, 20000, 500);
  CHECK(c.taken(1050, 1051));
  CHECK(c.taken(1050, 1051, 1000, 2000));  // recovered files count for everyone
  CHECK(c.taken(7000, 7512));
  CHECK(c.taken(9000, 9512));               // the preview's
  CHECK(!c.taken(9000, 9512, 5000, 6500));  // for the file at 5000 (broke at 6500), its preview's bytes are its own
  CHECK(!c.taken(9000, 9512, 6000, 6500));  // nor for the preview itself
  CHECK(c.taken(7000, 7512, 6000, 6500));   // but for the preview, the outer file's bytes count
  CHECK(!c.taken(10000, 20000));
  CHECK(c.taken(19999, 20001));
  CHECK(!c.taken(20000, 20500, 20000, 20100));
  CHECK(!c.overlaps(5000, 9000));  // overlaps(): recovered files only
  CHECK(c.overlaps(1099, 1100));
}

TEST("a file damaged in place: its data after the damage runs on to its EOI; a cut one's does not") {
  Bytes a = photo(320, 240, 3);
  Bytes img = noise(1 << 18, 93);
  const size_t at = 4096, hit = a.size() / 2;
  put(img, at, a.data(), a.size());
  std::memset(img.data() + at + hit, 0xFF, 1);  // damage: a marker-like byte and noise
  img[at + hit + 1] = 0xC4;
  MemoryReader reader(img.data(), img.size());
  CHECK_EQ(damaged_tail_end(reader, at + hit, 1 << 20), uint64_t(at + a.size()));
  // Cut at the same place, noise after it: markers turn up long before any EOI.
  Bytes cut = noise(1 << 18, 93);
  put(cut, at, a.data(), hit);
  MemoryReader r2(cut.data(), cut.size());
  CHECK_EQ(damaged_tail_end(r2, at + hit, 1 << 20, 0), uint64_t(0));
}

TEST("ext2/ext3: a file whose indirect block falls inside a marker segment is read in the order its blocks are listed") {
  // s444 behind a 20 KB COM segment: with 1 KiB blocks, block 12 (the
  // indirect block's place) is inside the comment, where the segment walk
  // cannot tell where the file goes on.
  const Bytes& s = carve_samples::s444;
  Bytes jpeg{0xFF, 0xD8, 0xFF, 0xFE, uint8_t((20000 + 2) >> 8), uint8_t((20000 + 2) & 0xFF)};
  Bytes text = noise(20000, 95);
  for (auto& c : text) c = uint8_t('a' + c % 26);
  jpeg.insert(jpeg.end(), text.begin(), text.end());
  jpeg.insert(jpeg.end(), s.begin() + 2, s.end());
  const size_t bs = 1024, first = 200, nblocks = (jpeg.size() + bs - 1) / bs;
  auto layout = [&](bool reversed, uint32_t bad_entry) {
    Bytes img = noise(2 << 20, 96);
    put(img, first * bs, jpeg.data(), 12 * bs);
    Bytes ind(bs, 0);
    for (size_t i = 12; i < nblocks; i++) {
      // Logical block i at physical block first + 1 + i (after the indirect block), or from the
      // end of a far range backwards.
      uint32_t phys = uint32_t(reversed ? 1800 - i : first + 1 + i);
      if (i == 14 && bad_entry) phys = bad_entry;
      std::memcpy(ind.data() + 4 * (i - 12), &phys, 4);  // little-endian host
      size_t n = std::min(bs, jpeg.size() - i * bs);
      put(img, size_t(reversed ? 1800 - i : first + 1 + i) * bs, jpeg.data() + i * bs, n);
    }
    put(img, (first + 12) * bs, ind.data(), bs);
    return img;
  };
  for (bool reversed : {false, true}) {
    Bytes img = layout(reversed, 0);
    TempDir dir;
    Run r = carve_memory(img, dir.path, bs);
    CHECK_EQ(r.rep.reassembled, uint64_t(1));
    CHECK(read_file(dir.path + "/" + carved_name(first * bs)) == jpeg);
    const CarvedFile& f = r.files.at(0);
    CHECK_EQ(f.fragments.at(0).length, uint64_t(12 * bs));
    CHECK_EQ(f.fragments.at(1).offset, uint64_t(reversed ? (1800 - 12) * bs : (first + 13) * bs));
    CHECK_EQ(f.fragments.size(), reversed ? nblocks - 11 : size_t(2));
  }
  // A number past the end of the source: not a block list, nothing to follow.
  Bytes bad = layout(false, 1u << 30);
  TempDir dir;
  Run r = carve_memory(bad, dir.path, bs);
  CHECK_EQ(r.rep.reassembled, uint64_t(0));
}

TEST("seam check: only joins inside the scan's data are judged, in order, each once") {
  CHECK(joins_in_scan(100, 1000, {}).empty());
  // At or before the data start, at or past the end: not in the scan.
  CHECK(joins_in_scan(100, 1000, {100, 1000, 5000, 0}).empty());
  CHECK(joins_in_scan(100, 1000, {700, 101, 999, 700, 50}) == (std::vector<size_t>{101, 700, 999}));
}

TEST("seam check: a join is refused only far above the rows before it and above every one of them") {
  SeamStats st;
  st.unit = 10;
  st.pairs = 16;  // kFewPairs / pairs = 1: the limits are 3x the 90th percentile and 2.5x the largest row
  st.ref_rows = 5;
  st.ref_step = 2;
  st.ref_max = 2;
  st.step = 6.2;  // 3.1x both
  CHECK_EQ(seam_refusal(st, 100),
           std::string("the picture does not go on across the join (its edges differ 3.1x as much as the rows before it, "
                       "3.1x their largest)"));
  st.step = 5.8;  // 2.9x: under the first limit
  CHECK_EQ(seam_refusal(st, 100), std::string());
  st.step = 6.2;
  st.ref_max = 3;  // 2.07x the largest row: a strong edge of the picture
  CHECK_EQ(seam_refusal(st, 100), std::string());
  // Fewer pairs across the join: higher limits.
  st.ref_max = 2;
  st.pairs = 4;  // limits 6x and 5.5x
  CHECK_EQ(seam_refusal(st, 100), std::string());
  // Rows that hardly differ count as differing one pixel level.
  st.pairs = 16;
  st.ref_step = 0.1;
  st.ref_max = 0.2;
  st.step = 2.9;
  CHECK_EQ(seam_refusal(st, 100), std::string());
  st.step = 3.1;
  CHECK(!seam_refusal(st, 100).empty());
  // Nothing to compare with, or too little.
  st.pairs = 0;
  CHECK_EQ(seam_refusal(st, 100), std::string("there is no picture before the join to compare the rest with"));
  st.pairs = 16;
  st.ref_rows = 2;
  CHECK_EQ(seam_refusal(st, 100), std::string("the picture is too small to check that it goes on across the join"));
  // After the join only the end of the scan: nothing to judge.
  st.pairs = 0;
  CHECK_EQ(seam_refusal(st, 10), std::string());
}

namespace {

// `jpeg` as ext2/ext3 store a file written in one go from block `first`:
// its first 12 blocks, except the `holes` (all-zero blocks a sparse file
// does not store), then the indirect block listing the rest, then the rest.
// `ind`, when not empty, is written where the indirect block goes instead.
Bytes ext_layout(const Bytes& jpeg, size_t bs, size_t first, const std::vector<size_t>& holes = {}, const Bytes& ind = {}) {
  Bytes img = noise(2 << 20, 97);
  size_t phys = first;
  for (size_t i = 0; i < 12; i++) {
    if (std::find(holes.begin(), holes.end(), i) != holes.end()) {
      CHECK(std::all_of(jpeg.begin() + i * bs, jpeg.begin() + (i + 1) * bs, [](uint8_t b) { return b == 0; }));
      continue;
    }
    put(img, phys++ * bs, jpeg.data() + i * bs, bs);
  }
  const size_t ind_at = phys++;
  Bytes list(bs, 0);
  for (size_t i = 12; i * bs < jpeg.size(); i++, phys++) {
    const uint32_t n = uint32_t(phys);
    std::memcpy(list.data() + 4 * (i - 12), &n, 4);  // little-endian host
    put(img, phys * bs, jpeg.data() + i * bs, std::min(bs, jpeg.size() - i * bs));
  }
  put(img, ind_at * bs, ind.empty() ? list.data() : ind.data(), bs);
  return img;
}

// SOI, `segment` (a whole marker segment), then `photo` after its SOI.
Bytes with_segment(const Bytes& segment, const Bytes& photo) {
  Bytes j(segment.size() + photo.size());
  std::memcpy(j.data(), photo.data(), 2);
  std::memcpy(j.data() + 2, segment.data(), segment.size());
  std::memcpy(j.data() + 2 + segment.size(), photo.data() + 2, photo.size() - 2);
  return j;
}

// A marker segment FF `marker` LL LL: `id` then `n` bytes of `fill`.
Bytes segment(uint8_t marker, const std::string& id, const Bytes& fill) {
  const size_t len = 2 + id.size() + fill.size();
  Bytes s(4 + id.size());
  s[0] = 0xFF;
  s[1] = marker;
  s[2] = uint8_t(len >> 8);
  s[3] = uint8_t(len & 0xFF);
  std::memcpy(s.data() + 4, id.data(), id.size());
  s.insert(s.end(), fill.begin(), fill.end());
  return s;
}

// Noise with no zero byte (so that no boundary in it looks like padding).
Bytes nonzero_noise(size_t n, uint32_t seed) {
  Bytes b = noise(n, seed);
  for (auto& c : b) c = c ? c : 1;
  return b;
}

}  // namespace

TEST("ext2/ext3: a file is read over its indirect block wherever it falls: in the scan, an ICC (APP2), an EXIF (APP1) or a comment segment") {
  const size_t bs = 1024, first = 300;
  const Bytes p = photo(640, 480, 11);
  Bytes exif = {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0};  // a TIFF with an empty IFD0, then bytes nothing reads
  Bytes body = nonzero_noise(16000, 98);
  exif.insert(exif.end(), body.begin(), body.end());
  struct Case {
    const char* what;
    Bytes jpeg;
  };
  const Case cases[] = {
      {"in the scan", p},
      {"in an ICC profile", with_segment(segment(0xE2, std::string("ICC_PROFILE\0\1\1", 14), nonzero_noise(16000, 99)), p)},
      {"in an EXIF block", with_segment(segment(0xE1, std::string("Exif\0\0", 6), exif), p)},
      {"in a comment", with_segment(segment(0xFE, "", Bytes(16000, 'x')), p)},
  };
  for (const Case& c : cases) {
    std::printf("  %s\n", c.what);
    CHECK(c.jpeg.size() > 14 * bs);
    CHECK(check_jpeg(c.jpeg.data(), c.jpeg.size(), true).status == Status::complete);
    Bytes img = ext_layout(c.jpeg, bs, first);
    TempDir dir;
    Run r = carve_memory(img, dir.path, bs);
    CHECK_EQ(r.rep.reassembled, uint64_t(1));
    CHECK(read_file(dir.path + "/" + carved_name(first * bs)) == c.jpeg);
    const CarvedFile& f = r.files.back();
    CHECK_EQ(f.offset, uint64_t(first * bs));
    // The indirect block (at first + 12) is stepped over.
    CHECK_EQ(f.fragments.size(), size_t(2));
    CHECK_EQ(f.fragments[0].length, uint64_t(12 * bs));
    CHECK_EQ(f.fragments[1].offset, uint64_t((first + 13) * bs));
    CHECK_EQ(f.info.width, 640);
  }
}

TEST("ext2/ext3: a block that is not a block list is not stepped over") {
  // Where the indirect block goes (inside a comment, where nothing else
  // tells where the file goes on): numbers in range but data after them (no
  // zeros to the end of the block). And a file with a hole whose list does
  // not go on right after it: fewer than 12 blocks before a list is a guess
  // taken only on that evidence.
  const size_t bs = 1024, first = 300;
  const Bytes p = photo(640, 480, 12);
  const Bytes jpeg = with_segment(segment(0xFE, "", Bytes(16000, 'x')), p);
  Bytes not_list(bs, 0);
  for (size_t i = 0; i < bs / 4; i++) {
    const uint32_t n = uint32_t(first + 13 + i);
    std::memcpy(not_list.data() + 4 * i, &n, 4);
  }
  not_list[bs - 1] = 0x5A;
  Bytes img = ext_layout(jpeg, bs, first, {}, not_list);
  TempDir dir;
  Run r = carve_memory(img, dir.path, bs);
  CHECK_EQ(r.rep.reassembled, uint64_t(0));
  CHECK_EQ(r.rep.complete, uint64_t(0));
  // The real list there: read.
  Bytes good = ext_layout(jpeg, bs, first);
  TempDir dir2;
  CHECK_EQ(carve_memory(good, dir2.path, bs).rep.reassembled, uint64_t(1));

  Bytes padded = jpeg;  // the comment's block 1 all zeros: a hole
  std::fill(padded.begin() + bs, padded.begin() + 2 * bs + 100, 0);
  Bytes sparse = ext_layout(padded, bs, first, {1});
  // The list (right after the 11 stored blocks) moved to name blocks elsewhere, holding the same bytes.
  const size_t ind_at = first + 11, moved = 1200;
  Bytes list(bs, 0);
  for (size_t i = 12; i * bs < padded.size(); i++) {
    const uint32_t n = uint32_t(moved + i);
    std::memcpy(list.data() + 4 * (i - 12), &n, 4);
    put(sparse, (moved + i) * bs, padded.data() + i * bs, std::min(bs, padded.size() - i * bs));
  }
  put(sparse, ind_at * bs, list.data(), bs);
  TempDir dir3;
  Run r3 = carve_memory(sparse, dir3.path, bs);
  CHECK_EQ(r3.rep.reassembled, uint64_t(0));
  // With the list right after it: read, the hole put back.
  TempDir dir4;
  Run r4 = carve_memory(ext_layout(padded, bs, first, {1}), dir4.path, bs);
  CHECK_EQ(r4.rep.reassembled, uint64_t(1));
  CHECK(read_file(dir4.path + "/" + carved_name(first * bs)) == padded);
}

TEST("ext2/ext3 sparse file: blocks of zeros in its EXIF padding that were never stored go back in (zeros fragments)") {
  const size_t bs = 1024, first = 300;
  const Bytes p = photo(320, 240, 13);
  // EXIF: IFD0 with a Make string at TIFF offset 2588 (file offset 2600),
  // padding A over file bytes [900, 2200) (block 1 is all zeros: the hole),
  // padding B over [4700, 5500) (longer around its boundary than A is once
  // block 1 is left out, but no whole block): only the pointer to the string
  // tells that the hole goes in A.
  Bytes tiff = nonzero_noise(9000, 100);
  const uint8_t head[] = {'M', 'M', 0, 42, 0, 0, 0, 8,              // header, IFD0 at 8
                          0, 1,                                      // one entry
                          0x01, 0x0F, 0, 2, 0, 0, 0, 16, 0, 0, 0x0A, 0x1C,  // Make: ASCII, 16 bytes at 2588
                          0, 0, 0, 0};                               // no next IFD
  std::memcpy(tiff.data(), head, sizeof head);
  const char make[16] = "Blocksmith Cam";
  std::memcpy(tiff.data() + 2588, make, 16);
  auto zero = [&](size_t from, size_t to) { std::fill(tiff.begin() + (from - 12), tiff.begin() + (to - 12), 0); };
  zero(900, 2200);
  zero(4700, 5500);
  const Bytes jpeg = with_segment(segment(0xE1, std::string("Exif\0\0", 6), tiff), p);
  CHECK(check_jpeg(jpeg.data(), jpeg.size(), true).status == Status::complete);
  Bytes img = ext_layout(jpeg, bs, first, {1});
  TempDir dir;
  Run r = carve_memory(img, dir.path, bs);
  CHECK_EQ(r.rep.reassembled, uint64_t(1));
  CHECK(read_file(dir.path + "/" + carved_name(first * bs)) == jpeg);
  const CarvedFile& f = r.files.back();
  // Block 0, the hole, blocks 2..11 (stored right after block 0), then the rest after the indirect block.
  CHECK_EQ(f.fragments.size(), size_t(4));
  CHECK(!f.fragments[0].zeros && f.fragments[0].length == bs);
  CHECK(f.fragments[1].zeros && f.fragments[1].length == bs && f.fragments[1].offset == (first + 1) * bs);
  CHECK(!f.fragments[2].zeros && f.fragments[2].offset == (first + 1) * bs && f.fragments[2].length == 10 * bs);
  CHECK_EQ(f.fragments[3].offset, uint64_t((first + 12) * bs));
  CHECK_EQ(f.info.exif.make, std::string("Blocksmith Cam"));

  // The same without the string's pointer to decide (an IFD0 with no
  // entries): the hole goes where the zeros run longest, B. That file is not
  // the one stored (the padding was in A), but nothing in it tells: this
  // shows the rule the EXIF pointers overrule above.
  Bytes tiff2 = tiff;
  tiff2[8] = 0;
  tiff2[9] = 0;  // zero entries: no IFD to check
  const Bytes jpeg2 = with_segment(segment(0xE1, std::string("Exif\0\0", 6), tiff2), p);
  Bytes img2 = ext_layout(jpeg2, bs, first, {1});
  TempDir dir2;
  Run r2 = carve_memory(img2, dir2.path, bs);
  CHECK_EQ(r2.rep.reassembled, uint64_t(1));
  CHECK(r2.files.back().fragments[1].zeros);
  CHECK_EQ(r2.files.back().fragments[1].offset, uint64_t((first + 4) * bs));  // at B's boundary (5120 - 1024 stored)

  // B shorter, [4950, 5330): 380 bytes against A's 276 left around its
  // boundary, not twice as long. No telling: nothing is written as whole.
  Bytes tiff3 = tiff2;
  std::fill(tiff3.begin() + (4700 - 12), tiff3.begin() + (4950 - 12), 0x55);
  std::fill(tiff3.begin() + (5330 - 12), tiff3.begin() + (5500 - 12), 0x55);
  const Bytes jpeg3 = with_segment(segment(0xE1, std::string("Exif\0\0", 6), tiff3), p);
  TempDir dir3;
  Run r3 = carve_memory(ext_layout(jpeg3, bs, first, {1}), dir3.path, bs);
  CHECK_EQ(r3.rep.reassembled, uint64_t(0));
  CHECK_EQ(r3.rep.complete, uint64_t(0));
}

TEST("ext2/ext3: an arithmetic-coded file (checked by structure only) that runs over its indirect block is read in list order") {
  const size_t bs = 1024, first = 300;
  const Bytes a = photo(640, 480, 14, "-arithmetic");
  CHECK(a.size() > 14 * bs);
  CheckResult whole = check_jpeg(a.data(), a.size(), true);
  CHECK(whole.status == Status::complete && !whole.info.decoded);
  Bytes img = ext_layout(a, bs, first);
  TempDir dir;
  Run r = carve_memory(img, dir.path, bs);
  CHECK_EQ(r.rep.reassembled, uint64_t(1));
  CHECK_EQ(r.rep.complete, uint64_t(0));  // not the file with the block list in it
  CHECK(read_file(dir.path + "/" + carved_name(first * bs)) == a);
  // Stored in one piece, it stays one complete file.
  Bytes one = noise(2 << 20, 97);
  put(one, first * bs, a.data(), a.size());
  TempDir dir2;
  Run r2 = carve_memory(one, dir2.path, bs);
  CHECK_EQ(r2.rep.complete, uint64_t(1));
  CHECK_EQ(r2.rep.reassembled, uint64_t(0));
}
