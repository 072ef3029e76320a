// The JPEG carver's core: the three checks on byte spans (complete, partial,
// reject, need-more), the signature search, and whole carves over memory
// readers (chunk boundaries, decoys, thumbnails, EIO ranges).
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "carve_samples.h"
#include "test_bytes.h"
#include "core/operations/carve.h"
#include "core/carve/jpeg_check.h"
#include "core/carve/jpeg_segments.h"
#include "core/carve/sha256.h"
#include "core/carve/signature.h"
#include "core/readers/memory_reader.h"
#include "test.h"

using namespace blocksmith;
using namespace blocksmith::carve;
using Bytes = std::vector<uint8_t>;

namespace {

Bytes random_bytes(size_t n, uint32_t seed) { return test_bytes::random_bytes(n, seed, 1); }

const std::vector<const Bytes*> all_samples() {
  return {&carve_samples::baseline, &carve_samples::progressive, &carve_samples::restart, &carve_samples::gray,
          &carve_samples::s444};
}

std::string temp_dir() {
  char tmpl[] = "/tmp/blocksmith-carve-test-XXXXXX";
  const char* d = ::mkdtemp(tmpl);
  if (!d) coretest::fail(__FILE__, __LINE__, "mkdtemp failed");
  return d;
}

Bytes read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(f), {});
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

void put(Bytes& img, size_t off, const Bytes& b) { std::memcpy(img.data() + off, b.data(), b.size()); }

// A JPEG whose APP1 (EXIF-like) holds a complete JPEG as its thumbnail.
Bytes with_thumbnail(const Bytes& outer, const Bytes& thumb) {
  // Built by offset into one sized buffer: GCC 12 reports a false -Warray-bounds
  // on vector::insert into a freshly list-initialised vector.
  const uint8_t exif[6] = {'E', 'x', 'i', 'f', 0, 0};
  const size_t seglen = 2 + sizeof exif + thumb.size();
  Bytes out(4 + seglen + (outer.size() - 2));
  const uint8_t head[6] = {0xFF, 0xD8, 0xFF, 0xE1, uint8_t(seglen >> 8), uint8_t(seglen)};
  std::memcpy(out.data(), head, sizeof head);
  std::memcpy(out.data() + sizeof head, exif, sizeof exif);
  std::memcpy(out.data() + sizeof head + sizeof exif, thumb.data(), thumb.size());
  std::memcpy(out.data() + 4 + seglen, outer.data() + 2, outer.size() - 2);
  return out;
}

// An MPO-like file: `first` with an APP2 MPF index listing `second`, stored right after it.
Bytes with_mpf(const Bytes& first, const Bytes& second) {
  const size_t tiff_len = 8 + 2 + 12 + 4 + 32;
  const size_t seg = 2 + 4 + tiff_len;
  const size_t first_len = 2 + 2 + seg + (first.size() - 2);
  Bytes t(tiff_len, 0);
  auto be32 = [&](size_t o, uint32_t v) { t[o] = uint8_t(v >> 24); t[o + 1] = uint8_t(v >> 16); t[o + 2] = uint8_t(v >> 8); t[o + 3] = uint8_t(v); };
  t[0] = 'M'; t[1] = 'M'; t[3] = 42;
  be32(4, 8);
  t[9] = 1;                       // one IFD entry
  t[10] = 0xB0; t[11] = 0x02;     // MPEntry
  t[13] = 7;                      // UNDEFINED
  be32(14, 32);                   // two entries
  be32(18, 26);                   // at TIFF offset 26
  be32(26 + 4, uint32_t(first_len));
  be32(42 + 4, uint32_t(second.size()));
  be32(42 + 8, uint32_t(first_len - 10));  // relative to the TIFF header at file offset 10
  Bytes out = {0xFF, 0xD8, 0xFF, 0xE2, uint8_t(seg >> 8), uint8_t(seg), 'M', 'P', 'F', 0};
  out.insert(out.end(), t.begin(), t.end());
  out.insert(out.end(), first.begin() + 2, first.end());
  out.insert(out.end(), second.begin(), second.end());
  return out;
}

}  // namespace

TEST("an MPF (MPO) file is one file: its second image is part of it, not a file of its own") {
  Bytes mpo = with_mpf(carve_samples::baseline, carve_samples::s444);
  Bytes tail = random_bytes(3000, 8);
  Bytes b = mpo;
  b.insert(b.end(), tail.begin(), tail.end());
  CheckResult r = check_jpeg(b.data(), b.size(), true);
  CHECK(r.status == Status::complete);
  CHECK_EQ(r.length, mpo.size());
  CHECK(r.info.mpf_included);
  // Cut inside the second image: the first image alone is complete.
  CheckResult cut = check_jpeg(b.data(), mpo.size() - 100, true);
  CHECK(cut.status == Status::complete);
  CHECK_EQ(cut.length, mpo.size() - carve_samples::s444.size());
  CHECK(check_jpeg(b.data(), mpo.size() - 100, false).status == Status::need_more);
}

TEST("sha256 of 'abc' and of a million 'a's match FIPS 180-4") {
  const uint8_t abc[] = {'a', 'b', 'c'};
  CHECK_EQ(sha256_hex(abc, 3), std::string("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
  Bytes a(1000000, 'a');
  Sha256 h;
  h.update(a.data(), 1000);
  h.update(a.data() + 1000, a.size() - 1000);
  CHECK_EQ(h.hex(), std::string("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
}

TEST("signature search finds FF D8 FF + a JPEG marker only, at every offset or on the sector grid") {
  Bytes b(4096, 0);
  put(b, 100, {0xFF, 0xD8, 0xFF, 0x00});  // not a marker that starts a JPEG
  put(b, 1001, {0xFF, 0xD8, 0xFF, 0xE0});
  put(b, 2048, {0xFF, 0xD8, 0xFF, 0xDB});
  put(b, 4092, {0xFF, 0xD8, 0xFF, 0xE1});  // the last 4 bytes
  CHECK_EQ(find_soi(b.data(), b.size(), 0), size_t(1001));
  CHECK_EQ(find_soi(b.data(), b.size(), 1002), size_t(2048));
  CHECK_EQ(find_soi(b.data(), b.size(), 2049), size_t(4092));
  CHECK_EQ(find_soi(b.data(), b.size(), 0, 0, 512), size_t(2048));
  // base 1001 + 1001 = 2002 is not on the grid; 2048 + 1001 = 3049 is not either: none.
  CHECK_EQ(find_soi(b.data(), b.size(), 0, 1001, 512), SIZE_MAX);
  CHECK_EQ(find_soi(b.data(), 3, 0), SIZE_MAX);
}

TEST("signature search (vector code) finds the same offsets as a byte-by-byte search, at every position and end") {
  // Signatures at every offset of a 32-byte vector and across its edges,
  // false starts (FF D8 FF 00, FF D8 00, overlapping FF D8 FF FF D8 FF E0),
  // and every buffer end, so a hit in the last 3 bytes (no room for the
  // marker byte) is never reported.
  Bytes b = random_bytes(300, 11);
  for (size_t i = 0; i < b.size(); i++)
    if (b[i] == 0xD8) b[i] = 0;  // the only D8s are the planted ones
  put(b, 0, {0xFF, 0xD8, 0xFF, 0xE0});
  put(b, 29, {0xFF, 0xD8, 0xFF, 0x00});
  put(b, 31, {0xFF, 0xD8, 0xFF, 0xDB});  // straddles the first vector's end
  put(b, 63, {0xFF, 0xD8, 0x00});
  put(b, 90, {0xFF, 0xD8, 0xFF, 0xFF, 0xD8, 0xFF, 0xC4});  // the second one (93)
  put(b, 130, {0xFF, 0xD8, 0xFF, 0xFE});
  put(b, 161, {0xFF, 0xD8, 0xFF, 0xC8});  // JPG-reserved SOF: not a start
  put(b, 200, {0xFF, 0xD8, 0xFF, 0xC2});
  put(b, 296, {0xFF, 0xD8, 0xFF, 0xE1});  // the last 4 bytes
  auto slow = [&](size_t n, size_t from) {
    for (size_t i = from; i + 4 <= n; i++)
      if (is_soi_candidate(b.data() + i)) return i;
    return SIZE_MAX;
  };
  size_t found = 0;
  for (size_t n = 0; n <= b.size(); n++)
    for (size_t from = 0; from <= n + 1; from++) {
      CHECK_EQ(find_soi(b.data(), n, from), slow(n, from));
      found += slow(n, from) != SIZE_MAX;
    }
  CHECK(found > 0);
  CHECK_EQ(find_soi(b.data(), b.size(), 1), size_t(31));
  CHECK_EQ(find_soi(b.data(), b.size(), 32), size_t(93));
  CHECK_EQ(find_soi(b.data(), b.size(), 201), size_t(296));
  CHECK_EQ(find_soi(b.data(), b.size() - 1, 201), SIZE_MAX);
}

TEST("every sample (baseline, progressive, restart markers, grayscale, 4:4:4) checks complete at its exact length") {
  for (const Bytes* s : all_samples()) {
    Bytes b = *s;
    Bytes tail = random_bytes(5000, 7);
    b.insert(b.end(), tail.begin(), tail.end());
    CheckResult r = check_jpeg(b.data(), b.size(), false);
    CHECK(r.status == Status::complete);
    CHECK_EQ(r.length, s->size());
    CHECK_EQ(r.info.width, 96);
    CHECK_EQ(r.info.height, 64);
  }
  CHECK(check_jpeg(carve_samples::progressive.data(), carve_samples::progressive.size(), true).info.progressive);
  CHECK_EQ(check_jpeg(carve_samples::restart.data(), carve_samples::restart.size(), true).info.restart_interval, 6u);  // one MCU row of 4:2:0
}

TEST("every prefix of every sample: need-more while data may follow, never complete at the end of the source") {
  for (const Bytes* s : all_samples()) {
    for (size_t n = 0; n < s->size(); n++) {
      CheckResult more = check_jpeg(s->data(), n, false);
      CHECK(more.status == Status::need_more);
      CheckResult end = check_jpeg(s->data(), n, true);
      CHECK(end.status == Status::reject || end.status == Status::partial);
      if (end.status == Status::partial) CHECK(end.length <= n);
    }
  }
}

TEST("a truncated file followed by random data is partial, cut before the break; garbage after a header is rejected") {
  const Bytes& s = carve_samples::s444;
  Bytes b(s.begin(), s.begin() + s.size() * 8 / 10);
  Bytes junk = random_bytes(20000, 3);
  b.insert(b.end(), junk.begin(), junk.end());
  CheckResult r = check_jpeg(b.data(), b.size(), true);
  CHECK(r.status == Status::partial);
  CHECK(r.length <= s.size() * 8 / 10);
  CHECK(r.length > 1024);
  CHECK(std::memcmp(b.data(), s.data(), r.length) == 0);

  // The "headers" decoy: real marker segments up to SOS, then random bytes.
  for (uint32_t seed = 1; seed <= 200; seed++) {
    CheckResult probe = check_jpeg(s.data(), s.size(), true);
    size_t header = probe.header_end;
    size_t sos_len = (size_t(s[header + 2]) << 8 | s[header + 3]) + 2;
    Bytes d(s.begin(), s.begin() + header + sos_len);
    Bytes g = random_bytes(30000, seed);
    d.insert(d.end(), g.begin(), g.end());
    CHECK(check_jpeg(d.data(), d.size(), true).status == Status::reject);
  }
}

TEST("random data with planted FF D8 FF xx never checks as a JPEG; bit flips never crash the checker") {
  for (uint32_t seed = 1; seed <= 300; seed++) {
    Bytes b = random_bytes(4096, seed);
    put(b, 0, {0xFF, 0xD8, 0xFF, uint8_t(0xE0 + seed % 16)});
    CheckResult r = check_jpeg(b.data(), b.size(), true);
    CHECK(r.status == Status::reject);
  }
  for (const Bytes* s : all_samples()) {
    for (size_t i = 2; i < s->size(); i += 7) {
      Bytes b = *s;
      b[i] ^= uint8_t(1u << (i % 8));
      CheckResult r = check_jpeg(b.data(), b.size(), true);
      CHECK(r.status != Status::need_more);
      CHECK(r.length <= b.size());
    }
  }
}

TEST("an embedded thumbnail does not end the outer file") {
  Bytes j = with_thumbnail(carve_samples::baseline, carve_samples::gray);
  CheckResult r = check_jpeg(j.data(), j.size(), true);
  CHECK(r.status == Status::complete);
  CHECK_EQ(r.length, j.size());
  CHECK_EQ(r.info.app_payloads.size(), size_t(2));  // JFIF APP0 and the APP1
}

TEST("carve over memory: byte-exact files named by offset, across chunk boundaries, decoys give nothing") {
  const size_t chunk = 1 << 16;
  Bytes img = random_bytes(chunk * 6, 11);
  std::memset(img.data() + chunk * 2, 0, chunk);  // a run of zeros
  Bytes thumbed = with_thumbnail(carve_samples::s444, carve_samples::gray);
  struct Placed { size_t off; const Bytes* b; };
  std::vector<Placed> files = {{1001, &carve_samples::baseline},
                               {chunk - 1000, &carve_samples::progressive},  // straddles the first chunk end
                               {chunk * 2 + 512, &carve_samples::restart},
                               {chunk * 3 - 2, &carve_samples::gray},         // signature split by the boundary
                               {chunk * 4 + 4096, &thumbed}};
  for (auto& f : files) put(img, f.off, *f.b);
  // Decoys: a bare SOI, a lone EOI, a JFIF header followed by random data.
  put(img, chunk * 5 + 100, {0xFF, 0xD8, 0xFF});
  put(img, chunk * 5 + 300, {0xFF, 0xD9});
  put(img, chunk * 5 + 1024, {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0, 1, 1, 1, 0, 0x48, 0, 0x48, 0, 0});

  std::string dir = temp_dir();
  MemoryReader reader(img.data(), img.size());
  CarveOptions opt;
  opt.out_dir = dir;
  opt.chunk_size = chunk;
  opt.thumbnails = true;
  Control control;
  std::vector<CarvedFile> events;
  CarveReport rep = carve::carve(reader, opt, control, [&](const CarvedFile& f) { events.push_back(f); });
  CHECK_EQ(rep.complete, uint64_t(files.size()));
  CHECK_EQ(rep.partial, uint64_t(0));
  CHECK_EQ(rep.thumbnails, uint64_t(1));
  CHECK(!rep.cancelled);
  CHECK(rep.unreadable.empty());
  CHECK_EQ(events.size(), files.size() + 1);
  for (auto& f : files) {
    Bytes got = read_file(dir + "/" + carved_name(f.off));
    CHECK(got == *f.b);
  }
  size_t thumb_off = chunk * 4 + 4096 + 12;  // SOI, APP1 marker and length, "Exif\0\0"
  CHECK(read_file(dir + "/thumbnails/" + carved_name(thumb_off)) == carve_samples::gray);
  CHECK(!exists(dir + "/partial"));
  CHECK_EQ(carved_name(123456789), std::string("f00000123456789.jpg"));
  std::string cmd = "rm -rf '" + dir + "'";
  CHECK_EQ(std::system(cmd.c_str()), 0);
}

TEST("sector-aligned mode finds only aligned files; offset/length limit where candidates start") {
  Bytes img = random_bytes(1 << 18, 5);
  put(img, 4096, carve_samples::baseline);
  put(img, 20001, carve_samples::gray);
  put(img, 100000 - 50, carve_samples::restart);  // starts inside the range, ends after it
  MemoryReader reader(img.data(), img.size());
  CarveOptions opt;
  opt.write = false;
  opt.sector_size = 512;
  Control c1;
  std::vector<uint64_t> found;
  carve::carve(reader, opt, c1, [&](const CarvedFile& f) { found.push_back(f.offset); });
  CHECK_EQ(found.size(), size_t(1));
  CHECK_EQ(found[0], uint64_t(4096));
  opt.sector_size = 1;
  opt.offset = 5000;
  opt.length = 100000 - 5000;
  found.clear();
  Control c2;
  carve::carve(reader, opt, c2, [&](const CarvedFile& f) {
    found.push_back(f.offset);
    CHECK(f.length == (f.offset == 20001 ? carve_samples::gray.size() : carve_samples::restart.size()));
  });
  CHECK_EQ(found.size(), size_t(2));
}

TEST("EIO ranges are skipped in sector steps, recorded, and the carve continues") {
  Bytes img = random_bytes(1 << 19, 9);
  put(img, 1000, carve_samples::baseline);
  put(img, 300000, carve_samples::progressive);
  put(img, 200000, carve_samples::gray);
  MemoryReader reader(img.data(), img.size());
  reader.faults = {{100 * 512, 103 * 512}, {200704, 200704 + 512}};  // the second hits the gray file
  CarveOptions opt;
  opt.write = false;
  opt.chunk_size = 1 << 16;
  Control control;
  std::vector<CarvedFile> got;
  CarveReport rep = carve::carve(reader, opt, control, [&](const CarvedFile& f) { got.push_back(f); });
  CHECK_EQ(rep.unreadable.size(), size_t(2));
  CHECK_EQ(rep.unreadable[0].begin, uint64_t(100 * 512));
  CHECK_EQ(rep.unreadable[0].end, uint64_t(103 * 512));
  CHECK_EQ(rep.unreadable[1].begin, uint64_t(200704));
  CHECK_EQ(rep.complete, uint64_t(2));
  bool gray_complete = false;
  for (auto& f : got)
    if (f.offset == 200000 && f.kind == "complete") gray_complete = true;
  CHECK(!gray_complete);
}

TEST("a cancelled carve returns its report with the offset to resume from") {
  Bytes img = random_bytes(1 << 20, 2);
  MemoryReader reader(img.data(), img.size());
  CarveOptions opt;
  opt.write = false;
  Control control;
  control.cancel();
  CarveReport rep = carve::carve(reader, opt, control, [](const CarvedFile&) {});
  CHECK(rep.cancelled);
  CHECK_EQ(rep.next_offset, uint64_t(0));
}

TEST("dedupe writes one copy of identical files and reports the others as duplicates") {
  Bytes img = random_bytes(1 << 17, 4);
  put(img, 512, carve_samples::gray);
  put(img, 40000, carve_samples::gray);
  MemoryReader reader(img.data(), img.size());
  CarveOptions opt;
  opt.write = false;
  opt.dedupe = true;
  Control control;
  std::vector<std::string> kinds;
  CarveReport rep = carve::carve(reader, opt, control, [&](const CarvedFile& f) { kinds.push_back(f.kind); });
  CHECK_EQ(rep.complete, uint64_t(1));
  CHECK_EQ(rep.duplicates, uint64_t(1));
  CHECK_EQ(kinds.size(), size_t(2));
  CHECK_EQ(kinds[1], std::string("duplicate"));
}

TEST("parallel parts give the same files as one thread, also for a file that crosses a part boundary") {
  const size_t size = size_t(80) << 20;
  Bytes img(size, 0);
  Bytes noise = random_bytes(1 << 20, 21);
  for (size_t off = 0; off < size; off += 8 << 20) put(img, off, noise);
  Bytes thumbed = with_thumbnail(carve_samples::s444, carve_samples::gray);
  // Threads=2 splits at 40 MiB: the outer file starts before it, its thumbnail lies after it.
  const size_t cross = (size_t(40) << 20) - 20;
  put(img, cross, thumbed);
  put(img, 1000, carve_samples::baseline);
  put(img, (size_t(60) << 20) + 3, carve_samples::progressive);
  MemoryReader reader(img.data(), img.size());
  auto run = [&](unsigned threads) {
    CarveOptions opt;
    opt.write = false;
    opt.threads = threads;
    Control control;
    std::vector<std::pair<uint64_t, uint64_t>> got;
    CarveReport rep = carve::carve(reader, opt, control, [&](const CarvedFile& f) { got.emplace_back(f.offset, f.length); });
    CHECK_EQ(rep.complete, uint64_t(got.size()));
    CHECK_EQ(rep.next_offset, uint64_t(size));
    return got;
  };
  auto one = run(1);
  CHECK_EQ(one.size(), size_t(3));
  CHECK(run(2) == one);
  CHECK(run(3) == one);
}

TEST("holes: the same files and counts as reading their zeros, also for a file cut by a hole and one waiting at its edge") {
  const size_t chunk = 1 << 16;
  Bytes img = random_bytes(chunk * 12, 31);
  const Bytes& b = carve_samples::baseline;
  const Bytes& p = carve_samples::progressive;
  // Hole 1 cuts a file: its bytes after the hole's start read as zeros.
  const size_t hole1 = chunk * 3;
  put(img, hole1 - b.size() / 2, b);
  // Hole 2 follows a file that ends 2 bytes before it, at a chunk end.
  const size_t hole2 = chunk * 7;
  put(img, hole2 - 2 - p.size(), p);
  // A signature whose last byte would lie in hole 3 (a zero there: no candidate).
  const size_t hole3 = chunk * 10;
  put(img, hole3 - 3, {0xFF, 0xD8, 0xFF});
  put(img, chunk * 9 + 7, carve_samples::gray);
  std::vector<DataRange> holes = {{hole1, hole1 + chunk}, {hole2, hole2 + chunk / 2}, {hole3, hole3 + 2 * chunk}};
  for (auto [h0, h1] : holes) std::memset(img.data() + h0, 0, h1 - h0);

  auto run = [&](bool with_holes) {
    MemoryReader reader(img.data(), img.size());
    if (with_holes) {
      reader.holes = holes;
      reader.faults = holes;  // never read
    }
    CarveOptions opt;
    opt.write = false;
    opt.chunk_size = chunk;
    Control control;
    std::vector<std::string> got;
    CarveReport rep = carve::carve(reader, opt, control, [&](const CarvedFile& f) {
      got.push_back(std::to_string(f.offset) + " " + std::to_string(f.length) + " " + f.kind + " " + f.sha256);
    });
    got.push_back("complete " + std::to_string(rep.complete) + " partial " + std::to_string(rep.partial) + " rejected " +
                  std::to_string(rep.rejected) + " candidates " + std::to_string(rep.candidates));
    return got;
  };
  auto read_all = run(false);
  CHECK(run(true) == read_all);
  CHECK_EQ(read_all.back(), std::string("complete 2 partial 1 rejected 0 candidates 3"));
}

TEST("a check that goes on from where a shorter one stopped decides exactly what a check from the start does") {
  int resumed = 0, walked = 0;
  for (const Bytes* sample : {&carve_samples::baseline, &carve_samples::progressive, &carve_samples::restart, &carve_samples::gray,
                              &carve_samples::s444}) {
    const size_t data = check_jpeg(sample->data(), sample->size(), true).header_end;
    // Intact, and broken at several points of the entropy-coded data (a
    // failure after the resume point must leave the same last good point).
    std::vector<size_t> breaks = {0};
    for (size_t k = 1; k <= 6; k++) breaks.push_back(data + 20 + (sample->size() - data - 40) * k / 7);
    for (size_t brk : breaks) {
      Bytes img = *sample;
      if (brk) img[brk] ^= 0x5A;
      Bytes tail = random_bytes(3000, uint32_t(brk + 7));
      img.insert(img.end(), tail.begin(), tail.end());
      CheckResult fresh = check_jpeg(img.data(), img.size(), true);
      for (size_t cut = data; cut < sample->size(); cut += 9) {
        CheckResume resume;
        CheckOptions go_on;
        go_on.resume = &resume;
        if (check_jpeg(img.data(), cut, false, go_on).status != Status::need_more) continue;
        if (resume.scan_data) resumed++;
        if (resume.walk) walked++;
        size_t cut2 = std::min(img.size(), cut + 150);
        CheckResult mid = check_jpeg(img.data(), cut2, false, go_on);
        CheckResult mid_fresh = check_jpeg(img.data(), cut2, false);
        CHECK(mid.status == mid_fresh.status);
        CHECK_EQ(mid.length, mid_fresh.length);
        if (mid.status != Status::need_more) continue;
        CheckResult r = check_jpeg(img.data(), img.size(), true, go_on);
        CHECK(r.status == fresh.status);
        CHECK_EQ(r.length, fresh.length);
        CHECK_EQ(r.broke_at, fresh.broke_at);
        CHECK_EQ(r.header_end, fresh.header_end);
        CHECK_EQ(r.reason, fresh.reason);
      }
    }
  }
  CHECK(resumed > 100);  // mid-scan resume points were taken and used
  CHECK(walked > resumed);  // and scan starts (progressive scans go on from there)
}

// Found by fuzz_jpeg: the resumed check put broke_at one byte later than a
// check from the start, because the reader's "where did it break" counted
// buffered bytes without unstuffing FF 00 (and a resumed reader buffers
// differently). The position now depends only on the bits consumed.
TEST("a resumed check and a fresh one agree on where stuffed data broke (fuzz_jpeg regression)") {
  const Bytes img = {
    0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01,
    0x00, 0x00, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x27, 0x01, 0x01, 0x01, 0x01, 0xff,
    0xdb, 0x00, 0x43, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0xff, 0xc0, 0x00, 0x11,
    0x08, 0x01, 0x10, 0x00, 0x10, 0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01, 0xff, 0xc4, 0x00,
    0x1f, 0x00, 0x00, 0x01, 0x05, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0xff, 0xc4, 0x00, 0xb5, 0x10, 0x00,
    0x02, 0x01, 0x03, 0x03, 0x02, 0x04, 0x03, 0x05, 0x05, 0x04, 0x04, 0x00, 0x00, 0x01, 0x7d, 0x01, 0x02, 0x03,
    0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x30, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22, 0x71, 0x14, 0x32, 0x81,
    0x91, 0x01, 0x01, 0x01, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a,
    0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a,
    0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64,
    0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86,
    0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6,
    0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6,
    0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5,
    0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xff, 0xc4, 0x00,
    0x1f, 0x01, 0x00, 0x03, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x02, 0x04, 0x06, 0x03, 0x05, 0x00, 0x01, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0xff, 0xc4, 0x00, 0xb5, 0x11, 0x00,
    0x02, 0x01, 0x02, 0x04, 0x04, 0x03, 0x04, 0x07, 0x05, 0x04, 0x04, 0x00, 0x01, 0x02, 0x77, 0x00, 0x01, 0x02,
    0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71, 0x13, 0x22, 0x32, 0x81, 0x08,
    0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0, 0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24,
    0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39,
    0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x2f, 0x58, 0x59, 0x5a, 0x63,
    0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84,
    0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x95, 0x9a, 0x98, 0x99, 0x94, 0x93, 0x97, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xdc, 0xf9, 0x6b, 0x8f, 0xf0, 0xbe, 0x75,
    0x95, 0x62, 0x6c, 0x6f, 0x63, 0xf7, 0x3e, 0x5a, 0xea, 0x2a, 0x29, 0x28, 0x27, 0x26, 0xda, 0xe2, 0xe3, 0xe4,
    0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xff, 0xda, 0x00,
    0x0c, 0x03, 0x01, 0x00, 0x02, 0x11, 0x03, 0x11, 0x00, 0x3f, 0x00, 0xfc, 0x65, 0xf8, 0x4d, 0xfb, 0x24, 0x42,
    0x9c, 0x3e, 0x93, 0x10, 0xe6, 0x1f, 0x97, 0xf6, 0x8d, 0xed, 0x1a, 0x79, 0x1e, 0x67, 0xdb, 0x25, 0xbf, 0x9f,
    0xba, 0x3f, 0xdc, 0xfd, 0xa7, 0xec, 0xd0, 0xf9, 0x1b, 0xf1, 0xe6, 0x7d, 0xb2, 0x21, 0x1e, 0xff, 0x00, 0x93,
    0xcd, 0xfd, 0x4b, 0xf8, 0x4f, 0xfb, 0x1c, 0xc2, 0xb9, 0xf3, 0x33, 0x88, 0xc7, 0xd8, 0xfc, 0xbf, 0xb4, 0x17,
    0x28, 0x82, 0x1f, 0x33, 0xed, 0x7f, 0x67, 0xf3, 0xf7, 0x45, 0xfb, 0x9f, 0xb4, 0xfd, 0x9a, 0x1f, 0x23, 0x7e,
    0x3c, 0xcf, 0xb5, 0xc5, 0xe5, 0xef, 0xf9, 0x3c, 0xc8, 0xb4, 0x33, 0xfb, 0x68, 0x7f, 0xc1, 0x3b, 0x3c, 0x2d,
    0xf6, 0xaf, 0xb7, 0xfc, 0x74, 0x96, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x6f, 0xf8, 0xfd, 0x4b,
    0xbe, 0x95, 0xc9, 0x2f, 0xf6, 0x83, 0x5f, 0x1b, 0x65, 0xfb, 0x3f, 0xf6, 0x16, 0xdf, 0xb4, 0x7d, 0x3d, 0x23,
    0x83, 0xce, 0x48, 0x0d, 0x08, 0x64, 0xdd, 0x3b, 0xc8, 0xf2, 0x3e, 0xd7, 0xe6, 0x79, 0x13, 0xf9, 0xbe, 0x5f,
    0x04, 0x00, 0x00, 0x00, 0xbc, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0,
    0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0x2b, 0xd0, 0xaa, 0xd0, 0xd0, 0xd0, 0x2e, 0x2f, 0xd0, 0xd0, 0xd0,
    0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0,
    0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0,
    0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0xd0, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x18,
    0x32, 0x00, 0x01, 0x00, 0x00, 0x7d, 0x9d, 0xfb, 0x7d, 0x7e, 0xad, 0xed, 0xf1, 0x9c, 0xfc, 0xd6, 0xff, 0x00,
    0x75, 0x6f, 0x54, 0xf5, 0xfa, 0xdf, 0xa0, 0x67, 0x8e, 0xdf, 0x48, 0x9e, 0x16, 0xfe, 0xd3, 0xfa, 0xef, 0x82,
    0xfe, 0x35, 0xe1, 0x9f, 0x04, 0x3f, 0xb6, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0x60, 0xa8,
    0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xd9
  };
  const CheckResult fresh = check_jpeg(img.data(), img.size(), true);
  CheckResume resume;
  CheckOptions go_on;
  go_on.resume = &resume;
  CHECK(check_jpeg(img.data(), 741, false, go_on).status == Status::need_more);
  CHECK(check_jpeg(img.data(), 869, false, go_on).status == Status::need_more);
  const CheckResult r = check_jpeg(img.data(), img.size(), true, go_on);
  CHECK(r.status == fresh.status);
  CHECK_EQ(r.reason, fresh.reason);
  CHECK_EQ(r.broke_at, fresh.broke_at);
}

TEST("sha256_hex (libcrypto when present) agrees with the portable implementation") {
  for (size_t n : {0, 1, 55, 56, 63, 64, 65, 1000, 100000}) {
    Bytes b = random_bytes(n, uint32_t(n + 1));
    Sha256 h;
    h.update(b.data(), b.size());
    CHECK_EQ(sha256_hex(b.data(), b.size()), h.hex());
  }
}

TEST("hostile JPEGs: a segment length past the end is rejected at the end of the source, waits for more before it") {
  for (uint8_t m : {uint8_t(0xE0), uint8_t(0xE1), uint8_t(0xDB), uint8_t(0xC4), uint8_t(0xFE)}) {
    Bytes b = {0xFF, 0xD8, 0xFF, m, 0xFF, 0xF0};  // a 65520-byte segment...
    b.resize(b.size() + 200, 0x41);              // ...with 200 bytes behind it
    CheckResult at_eof = check_jpeg(b.data(), b.size(), true);
    CHECK(at_eof.status == Status::reject);
    CHECK(!at_eof.reason.empty());
    CHECK(check_jpeg(b.data(), b.size(), false).status == Status::need_more);
  }
}

// The sample's marker segments up to its first scan, then `scans` DC
// refinement scans of the luma component (one bit per block, no state
// between scans), then EOI.
static Bytes progressive_with_scans(size_t scans) {
  const Bytes& p = carve_samples::progressive;
  const size_t header = check_jpeg(p.data(), p.size(), true).header_end;  // the first SOS marker
  Bytes b(p.begin(), p.begin() + header);
  const uint8_t luma = p[header + 5];  // Cs of the sample's first scan (the luma component comes first)
  const Bytes sos = {0xFF, 0xDA, 0x00, 0x08, 0x01, luma, 0x00, 0x00, 0x00, 0x10};  // Ss=0 Se=0 Ah=1 Al=0
  const Bytes data(12, 0x00);  // 96x64 4:2:0: 12x8 luma blocks, one bit each
  b.reserve(b.size() + scans * (sos.size() + data.size()) + 2);
  for (size_t i = 0; i < scans; i++) {
    b.insert(b.end(), sos.begin(), sos.end());
    b.insert(b.end(), data.begin(), data.end());
  }
  b.push_back(0xFF);
  b.push_back(0xD9);
  return b;
}

TEST("hostile JPEGs: a progressive file with 10^6 scans stops at the scan limit with a reason") {
  Bytes few = progressive_with_scans(3);
  CheckResult ok = check_jpeg(few.data(), few.size(), true);
  CHECK(ok.status == Status::complete);  // the crafted scans are valid ones
  CHECK_EQ(ok.info.scans, 3);

  Bytes many = progressive_with_scans(1000000);
  CheckResult r = check_jpeg(many.data(), many.size(), true);
  CHECK(r.status != Status::complete);
  CHECK(r.reason.find("scans") != std::string::npos);
  CHECK_EQ(r.info.scans, 1000);
}

TEST("hostile JPEGs: the blocks decoded over all scans are bounded (a real file stays within the default)") {
  const Bytes& p = carve_samples::progressive;
  CHECK(check_jpeg(p.data(), p.size(), true).status == Status::complete);
  CheckOptions tight;
  tight.max_decoded_blocks = 100;  // the sample's first scan alone decodes 96+24+24 blocks
  CheckResult r = check_jpeg(p.data(), p.size(), true, tight);
  CHECK(r.status == Status::reject);
  CHECK(r.reason.find("decoding work") != std::string::npos);
}

namespace {
// A DHT payload: one table (class tc, id th) with two 2-bit codes.
std::vector<uint8_t> dht_payload(int tc, int th) {
  std::vector<uint8_t> p{uint8_t(tc << 4 | th)};
  for (int len = 1; len <= 16; len++) p.push_back(len == 2 ? 2 : 0);
  p.push_back(0x00);
  p.push_back(0x01);
  return p;
}
}  // namespace

TEST("JPEG segments: DHT and DQT fill the tables they name; malformed ones are refused") {
  DecoderTables t;
  auto dc1 = dht_payload(0, 1);
  CHECK(parse_dht(dc1.data(), dc1.size(), t));
  CHECK(t.dc[1].defined);
  CHECK(!t.dc[0].defined && !t.ac[1].defined);
  CHECK(!parse_dht(dc1.data(), dc1.size() - 1, t));  // a symbol short
  auto bad_class = dht_payload(2, 0);
  CHECK(!parse_dht(bad_class.data(), bad_class.size(), t));

  std::vector<uint8_t> dqt{0x02};  // 8-bit table 2
  for (int k = 0; k < 64; k++) dqt.push_back(uint8_t(k + 1));
  CHECK(parse_dqt(dqt.data(), dqt.size(), t));
  CHECK(t.qt[2] && !t.qt[0]);
  CHECK_EQ(t.quant[2][5], 6);
  dqt[0] = 0x12;  // 16-bit: 128 bytes needed, 64 there
  CHECK(!parse_dqt(dqt.data(), dqt.size(), t));
  dqt[0] = 0x04;  // table 4 does not exist
  CHECK(!parse_dqt(dqt.data(), dqt.size(), t));
  CHECK(!parse_dqt(dqt.data(), 0, t));
}

TEST("JPEG segments: a 4:2:0 frame's MCU grid; a scan needs its components and tables") {
  // SOF0: 8-bit, 480 x 640, Y 2x2 with table 0, Cb and Cr 1x1 with table 1.
  std::vector<uint8_t> sof{8, 0x01, 0xE0, 0x02, 0x80, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1};
  Frame f;
  CHECK(parse_sof(0xC0, sof.data(), sof.size(), f));
  CHECK(f.present && !f.progressive && !f.arithmetic && !f.lossless);
  CHECK_EQ(f.width, 640);
  CHECK_EQ(f.height, 480);
  CHECK_EQ(f.hmax, 2);
  CHECK_EQ(f.mcux, 40);
  CHECK_EQ(f.mcuy, 30);
  CHECK_EQ(f.comp[0].bw, 80);
  CHECK_EQ(f.comp[1].bw, 40);
  CHECK_EQ(f.comp[1].bh_real, 30);
  Frame g;
  CHECK(parse_sof(0xC2, sof.data(), sof.size(), g) && g.progressive && g.comp[0].nz.size() == 80u * 60);
  auto refused = [&](size_t at, uint8_t v) {
    auto s = sof;
    s[at] = v;
    Frame x;
    return !parse_sof(0xC0, s.data(), s.size(), x);
  };
  CHECK(refused(9, 1));     // Cb has Y's id
  {
    auto s = sof;
    s[3] = s[4] = 0;  // width 0
    Frame x;
    CHECK(!parse_sof(0xC0, s.data(), s.size(), x));
  }
  CHECK(refused(0, 9));     // 9-bit baseline
  CHECK(refused(7, 0x52));  // h = 5
  CHECK(!parse_sof(0xC0, sof.data(), sof.size() - 1, g));

  // SOS over all three components: Y with tables 0, Cb and Cr with tables 1.
  std::vector<uint8_t> sos{3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0};
  DecoderTables t;
  ScanHeader sc;
  CHECK(!parse_sos(sos.data(), sos.size(), f, t, sc));  // no Huffman tables yet
  for (auto [tc, th] : {std::pair{0, 0}, std::pair{1, 0}, std::pair{0, 1}, std::pair{1, 1}}) {
    auto p = dht_payload(tc, th);
    CHECK(parse_dht(p.data(), p.size(), t));
  }
  CHECK(parse_sos(sos.data(), sos.size(), f, t, sc));
  CHECK_EQ(sc.ns, 3);
  CHECK_EQ(sc.cidx[2], 2);
  CHECK_EQ(sc.ta[1], 1);
  sos[8] = 62;  // a baseline scan covers all 64 coefficients
  CHECK(!parse_sos(sos.data(), sos.size(), f, t, sc));
  sos[8] = 63;
  sos[3] = 9;  // a component the frame does not have
  CHECK(!parse_sos(sos.data(), sos.size(), f, t, sc));
}
