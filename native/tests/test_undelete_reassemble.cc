// undelete's fragment search (operations/undelete_reassemble.h) on a
// hand-made volume: a photo (cjpeg) whose first 10 clusters are followed by
// another file's 8, then its own again. The plan (contiguous from its first
// cluster) does not decode; the search finds the continuation when it lies
// in free clusters, and never takes it from clusters the volume does not
// call free.
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/carve/sha256.h"
#include "core/operations/undelete.h"
#include "core/readers/memory_reader.h"
#include "test.h"

using namespace blocksmith;
using namespace blocksmith::undelete;

namespace {

constexpr uint64_t kCluster = 1024;

std::string temp_dir() {
  char tmpl[] = "/tmp/blocksmith-undelete-reasm-XXXXXX";
  const char* d = ::mkdtemp(tmpl);
  if (!d) coretest::fail(__FILE__, __LINE__, "mkdtemp failed");
  return d;
}

std::vector<uint8_t> slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

void remove_all(const std::string& dir) { CHECK_EQ(std::system(("rm -rf '" + dir + "'").c_str()), 0); }

std::vector<uint8_t> noise(size_t n, uint32_t seed) {
  std::vector<uint8_t> b(n);
  uint32_t x = seed | 1;
  for (auto& c : b) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = uint8_t(x);
  }
  return b;
}

// A 256x192 scene with grain, through cjpeg (libjpeg-turbo): 12-100 KiB.
std::vector<uint8_t> photo(const std::string& dir) {
  {
    std::ofstream f(dir + "/in.ppm", std::ios::binary);
    f << "P6\n256 192\n255\n";
    std::vector<uint8_t> j = noise(256 * 192 * 3, 9);
    for (int y = 0; y < 192; y++)
      for (int x = 0; x < 256; x++)
        for (int c = 0; c < 3; c++)
          f.put(char(uint8_t(120 + 60 * std::sin(x * 0.02 + c) * std::cos(y * 0.03) + (j[(y * 256 + x) * 3 + c] % 48))));
  }
  std::string cmd = "cjpeg -quality 85 -outfile '" + dir + "/out.jpg' '" + dir + "/in.ppm'";
  if (std::system(cmd.c_str()) != 0) coretest::fail(__FILE__, __LINE__, "cjpeg failed (libjpeg-turbo-progs installed?)");
  return slurp(dir + "/out.jpg");
}

struct Card {
  std::vector<uint8_t> bytes;
  std::vector<uint8_t> jpeg;
  uint64_t first = 10 * kCluster, gap = 20 * kCluster, second = 28 * kCluster;
};

// 256 KiB of noise: the photo's first 10 clusters at cluster 10, the other
// file's 8 clusters (noise) at 20, the rest of the photo from cluster 28.
Card card(const std::string& dir) {
  Card c;
  c.jpeg = photo(dir);
  CHECK(c.jpeg.size() > 12 * kCluster && c.jpeg.size() < 100 * kCluster);
  c.bytes = noise(256 * kCluster, 3);
  std::copy(c.jpeg.begin(), c.jpeg.begin() + 10 * kCluster, c.bytes.begin() + c.first);
  std::copy(c.jpeg.begin() + 10 * kCluster, c.jpeg.end(), c.bytes.begin() + c.second);
  return c;
}

fs::SourceVolumes volume(const Card& c, fs::FreeMap free) {
  fs::SourceVolumes s;
  s.scheme = "none";
  fs::FoundVolume v;
  v.length = c.bytes.size();
  v.read = true;
  v.files.filesystem = "fat16";
  v.files.cluster_size = kCluster;
  v.files.data_offset = 0;
  v.files.free = std::move(free);
  fs::DeletedFile d;
  d.path = "DCIM/PHOTO.JPG";
  d.size = c.jpeg.size();
  d.extents = {{c.first, c.first + d.size}};  // the plan: on through the other file's clusters
  v.files.deleted.push_back(d);
  s.volumes.push_back(std::move(v));
  return s;
}

}  // namespace

TEST("undelete: a JPEG whose plan does not decode is reassembled from free clusters, byte-equal, with its fragments") {
  std::string dir = temp_dir();
  Card c = card(dir);
  fs::FreeMap free;
  free.add(0, c.bytes.size());  // everything free: the other file was deleted too
  free.normalize();
  MemoryReader r(c.bytes.data(), c.bytes.size(), "card.img");
  std::string out = dir + "/out";
  CHECK_EQ(::mkdir(out.c_str(), 0755), 0);
  Control control;
  UndeleteOptions opt;
  opt.out_dir = out;
  auto rep = undelete_volumes(r, volume(c, free), opt, control);
  const UndeletedFile& f = rep.files[0];
  CHECK_EQ(f.status, std::string("reassembled"));
  CHECK_EQ(f.jpeg, std::string("complete"));
  CHECK_EQ(f.fragments.size(), size_t(2));
  CHECK_EQ(f.fragments[0].offset, c.first);
  CHECK_EQ(f.fragments[0].length, 10 * kCluster);
  CHECK_EQ(f.fragments[1].offset, c.second);
  CHECK_EQ(f.fragments[1].length, c.jpeg.size() - 10 * kCluster);
  CHECK(slurp(out + "/" + f.written_as) == c.jpeg);
  CHECK_EQ(f.sha256, carve::sha256_hex(c.jpeg.data(), c.jpeg.size()));
  CHECK_EQ(f.bytes_written, uint64_t(c.jpeg.size()));
  CHECK_EQ(rep.reassembled, uint64_t(1));
  CHECK_EQ(rep.partial, uint64_t(0));
  remove_all(dir);
}

TEST("undelete: a continuation in clusters the volume does not call free is never taken: the JPEG stays partial") {
  std::string dir = temp_dir();
  Card c = card(dir);
  // A live file owns the clusters from 28 on (where the photo's rest lies).
  fs::FreeMap free;
  free.add(0, c.second);
  free.normalize();
  MemoryReader r(c.bytes.data(), c.bytes.size(), "card.img");
  std::string out = dir + "/out";
  CHECK_EQ(::mkdir(out.c_str(), 0755), 0);
  Control control;
  UndeleteOptions opt;
  opt.out_dir = out;
  auto rep = undelete_volumes(r, volume(c, free), opt, control);
  const UndeletedFile& f = rep.files[0];
  CHECK_EQ(f.status, std::string("partial"));
  CHECK(f.fragments.empty());
  CHECK_EQ(f.bytes_written, uint64_t(c.jpeg.size()));  // the plan, as written
  CHECK_EQ(rep.reassembled, uint64_t(0));
  remove_all(dir);
}
