// Fragmented JPEGs: the decoder's state snapshots and resuming from them,
// the fragment search over memory sources (random, zero and JPEG-data gaps,
// claimed ranges, continuations that must not validate), the block size
// detection, and the carve's 'reassembled' files.
#include <unistd.h>

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
#include "core/carve/carver.h"
#include "core/carve/entropy.h"
#include "core/carve/jpeg_check.h"
#include "core/carve/reassemble.h"
#include "core/memory_reader.h"
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
