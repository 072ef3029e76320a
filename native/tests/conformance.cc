// The conformance table (see conformance.h): contents, the files and images
// holding them (made with the real tools: qemu-img, qemu-io, losetup), and
// one row per reader.
#include "conformance.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <stdexcept>

#include "core/readers/file_reader.h"
#include "core/readers/image_open.h"
#include "core/readers/memory_reader.h"
#include "core/base/unique_fd.h"
#include "test.h"
#include "test_bytes.h"

namespace conformance {
namespace {

constexpr uint64_t K = 1024, M = 1024 * 1024;

Content build(std::string name, std::vector<Piece> layout, uint32_t seed) {
  Content c;
  c.name = std::move(name);
  c.layout = std::move(layout);
  uint64_t size = c.layout.empty() ? 0 : c.layout.back().off + c.layout.back().len;
  c.bytes.assign(size, 0);
  uint64_t pos = 0;
  for (const Piece& p : c.layout) {
    if (p.off != pos) throw std::logic_error("conformance layout of '" + c.name + "' has a gap at " + std::to_string(pos));
    pos += p.len;
    if (p.kind == Piece::data) {
      auto r = test_bytes::random_bytes(p.len, seed++);
      // A data piece never holds a whole zero block (of 512 B or more): its
      // first byte of every 512 is non-zero.
      for (uint64_t i = 0; i < p.len; i += 512) r[i] |= 0x80;
      std::copy(r.begin(), r.end(), c.bytes.begin() + p.off);
    } else if (p.kind == Piece::one_byte) {
      c.bytes[p.off + p.at] = 0xA5;
    }
  }
  return c;
}

std::string run_output(const std::string& cmd) {
  FILE* f = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!f) throw std::runtime_error("popen failed: " + cmd);
  std::string out;
  char buf[512];
  while (size_t n = std::fread(buf, 1, sizeof buf, f)) out.append(buf, n);
  int status = ::pclose(f);
  if (status != 0) throw std::runtime_error("'" + cmd + "' failed (status " + std::to_string(status) + "): " + out);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

std::string q(const std::string& s) { return "'" + s + "'"; }

// Writes `c` as a file: data, zeros and single bytes are written; unwritten
// pieces stay holes (the size is set with ftruncate).
void write_file(const Content& c, const std::string& path) {
  blocksmith::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd) throw std::runtime_error("cannot create " + path);
  if (::ftruncate(fd.get(), static_cast<off_t>(c.size())) != 0) throw std::runtime_error("ftruncate " + path);
  for (const Piece& p : c.layout) {
    if (p.kind == Piece::unwritten) continue;
    if (::pwrite(fd.get(), c.bytes.data() + p.off, p.len, static_cast<off_t>(p.off)) != static_cast<ssize_t>(p.len))
      throw std::runtime_error("pwrite " + path);
  }
}

// The bytes of [off, off + len) of `c` in a file of their own (qemu-io -s).
std::string piece_file(const Content& c, uint64_t off, uint64_t len, const std::string& path) {
  blocksmith::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd || ::pwrite(fd.get(), c.bytes.data() + off, len, 0) != static_cast<ssize_t>(len))
    throw std::runtime_error("cannot write " + path);
  return path;
}

// All-zero 64 KiB clusters of `c` (capped at its size): qemu-img convert
// leaves them unallocated, and an overlay over a backing file that holds no
// data there reads through to a hole, so every qcow2 row reports them as holes.
std::vector<DataRange> zero_clusters(const Content& c) {
  std::vector<DataRange> out;
  const uint64_t cs = 64 * K;
  for (uint64_t b = 0; b < c.size(); b += cs) {
    const uint64_t e = std::min(c.size(), b + cs);
    bool zero = true;
    for (uint64_t i = b; i < e && zero; ++i) zero = c.bytes[i] == 0;
    if (!zero) continue;
    if (!out.empty() && out.back().end == b) {
      out.back().end = e;
    } else {
      out.push_back({b, e});
    }
  }
  return out;
}

// Unwritten pieces shrunk inward to whole filesystem blocks: a sparse file
// surely reports those as holes.
std::vector<DataRange> whole_blocks(const std::vector<DataRange>& ranges, uint64_t blk) {
  std::vector<DataRange> out;
  for (const auto& r : ranges) {
    uint64_t b = (r.begin + blk - 1) / blk * blk, e = r.end / blk * blk;
    if (e > b) out.push_back({b, e});
  }
  return out;
}

bool is_root() { return ::geteuid() == 0; }

// Attaches `file` to a free loop device and detaches it lazily at once: the
// kernel then frees the device when its last opener closes it, so a crashed
// run leaves no loop device behind. The returned fd keeps it attached.
struct LoopDevice {
  std::string path;
  blocksmith::UniqueFd keep;
};
LoopDevice attach_loop(const std::string& file, bool read_only) {
  if (!is_root()) {
    throw std::runtime_error("the loop device rows need root (running as uid " + std::to_string(::geteuid()) +
                             "): run core_tests as root to attach " + file + " with losetup");
  }
  LoopDevice d;
  // Another program may take the free device first: losetup then fails; retry.
  const std::string cmd = std::string("losetup --find --show ") + (read_only ? "--read-only " : "") + q(file);
  for (int attempt = 1;; ++attempt) {
    try {
      d.path = run_output(cmd);
      break;
    } catch (const std::runtime_error&) {
      if (attempt == 5) throw;
    }
  }
  d.keep.reset(::open(d.path.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC));
  if (!d.keep) throw std::runtime_error("cannot open " + d.path);
  run_output("losetup --detach " + q(d.path));
  return d;
}

class Fixture {
 public:
  Fixture() {
    char tmpl[] = "/tmp/blocksmith-conformance-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir = tmpl;
  }
  ~Fixture() { std::system(("rm -rf " + q(dir)).c_str()); }

  std::string dir;

  // The raw file of a content (written once).
  const std::string& raw(const Content& c) {
    auto it = raws_.find(c.name);
    if (it != raws_.end()) return it->second;
    std::string path = dir + "/" + c.name + ".raw";
    write_file(c, path);
    return raws_[c.name] = path;
  }

  // A qcow2 image converted from the content's raw file (once per options).
  const std::string& qcow2(const Content& c, const std::string& tag, const std::string& options) {
    const std::string key = c.name + "-" + tag;
    auto it = images_.find(key);
    if (it != images_.end()) return it->second;
    std::string path = dir + "/" + key + ".qcow2";
    run_output("qemu-img convert -f raw -O qcow2 " + options + " " + q(raw(c)) + " " + q(path));
    return images_[key] = path;
  }

  // An overlay whose content is `c` over a raw backing file that differs
  // from it: shorter (the overlay's tail reads past the backing file's end),
  // other data in cluster 0 (the overlay's cluster holds the right bytes),
  // data where `c` has zeros (zero clusters in the overlay), and the data of
  // [1M - 4K, 1M + 12K) only in the backing file (read through).
  const std::string& backed_qcow2() {
    const std::string key = "backed";
    auto it = images_.find(key);
    if (it != images_.end()) return it->second;
    const Content& c = main_content();
    const uint64_t base_size = 2 * M + 64 * K;
    std::vector<Piece> base_layout = {
        {0, 4 * K, Piece::unwritten},       {4 * K, 4 * K, Piece::data},         {8 * K, 56 * K, Piece::unwritten},
        {64 * K, 128 * K, Piece::data},     {192 * K, 1 * M - 196 * K, Piece::unwritten},
        {1 * M - 4 * K, 16 * K, Piece::unwritten},  // filled from `c` below
        {1 * M + 12 * K, base_size - (1 * M + 12 * K), Piece::unwritten}};
    Content base = build("base", base_layout, 1000);
    std::copy(c.bytes.begin() + (1 * M - 4 * K), c.bytes.begin() + (1 * M + 12 * K), base.bytes.begin() + (1 * M - 4 * K));
    base.layout[5].kind = Piece::data;  // written as is (holds c's bytes)
    const std::string base_path = dir + "/base.raw";
    write_file(base, base_path);
    const std::string path = dir + "/backed.qcow2";
    run_output("qemu-img create -q -f qcow2 -b base.raw -F raw " + q(path) + " " + std::to_string(c.size()));
    std::string cmds;
    auto write = [&](uint64_t off, uint64_t len) {
      std::string f = piece_file(c, off, len, dir + "/piece-" + std::to_string(off));
      cmds += " -c " + q("write -q -s " + f + " " + std::to_string(off) + " " + std::to_string(len));
    };
    write(0, 64 * K);
    cmds += " -c " + q("write -q -z " + std::to_string(64 * K) + " " + std::to_string(128 * K));
    write(2 * M + 4 * K, 4 * K);
    write(3 * M, 128 * K);
    write(c.size() - 1536, 1536);
    run_output("qemu-io -f qcow2" + cmds + " " + q(path));
    return images_[key] = path;
  }

  const LoopDevice& loop(const Content& c) {
    if (!loop_) loop_ = std::make_unique<LoopDevice>(attach_loop(raw(c), true));
    return *loop_;
  }

  // A fresh writable copy of `c`'s file (same holes) for an in-place run.
  std::string writable_copy(const Content& c) {
    std::string path = dir + "/inplace-" + std::to_string(++copies_) + ".raw";
    write_file(c, path);
    return path;
  }

 private:
  std::map<std::string, std::string> raws_, images_;
  std::unique_ptr<LoopDevice> loop_;
  int copies_ = 0;
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

std::unique_ptr<Reader> open_path(const std::string& path, bool seek_hole = true) {
  return std::move(blocksmith::open_image(path, blocksmith::ImageFormat::automatic, seek_hole).reader);
}

uint64_t fs_block(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || st.st_blksize <= 0) return 4096;
  return static_cast<uint64_t>(st.st_blksize);
}

struct FileInPlace final : InPlace {
  blocksmith::UniqueFd own;
};
struct LoopInPlace final : InPlace {
  LoopDevice dev;
};

std::unique_ptr<InPlace> file_in_place(const Content& c) {
  auto p = std::make_unique<FileInPlace>();
  p->path = p->backing_file = fixture().writable_copy(c);
  p->own.reset(::open(p->path.c_str(), O_RDWR | O_CLOEXEC));
  if (!p->own) throw std::runtime_error("cannot open " + p->path);
  p->fd = p->own.get();
  p->align = fs_block(p->path);
  return p;
}

std::unique_ptr<InPlace> loop_in_place(const Content& c) {
  auto p = std::make_unique<LoopInPlace>();
  p->backing_file = fixture().writable_copy(c);
  p->dev = attach_loop(p->backing_file, false);
  p->path = p->dev.path;
  p->fd = p->dev.keep.get();
  p->is_block_device = true;
  int lss = 0;
  if (::ioctl(p->fd, BLKSSZGET, &lss) != 0 || lss <= 0) throw std::runtime_error("BLKSSZGET " + p->path);
  p->align = static_cast<uint64_t>(lss);
  return p;
}

struct Row {
  std::string name;
  bool in_place;  // the row's Source has in_place
  std::function<Source()> make;
};

Source memory_row(const Content& c) {
  Source s;
  s.content = &c;
  s.open = [&c] {
    auto r = std::make_unique<blocksmith::MemoryReader>(c.bytes.data(), c.bytes.size(), "<memory " + c.name + ">");
    r->holes = c.unwritten();
    return std::unique_ptr<Reader>(std::move(r));
  };
  s.holes.at_least = c.unwritten();
  return s;
}

Source file_row(const Content& c) {
  Source s;
  s.content = &c;
  const std::string path = fixture().raw(c);
  s.open = [path] { return open_path(path); };
  s.holes.at_least = whole_blocks(c.unwritten(), fs_block(path));
  s.in_place = [&c] { return file_in_place(c); };
  return s;
}

Source qcow2_row(const Content& c, const std::string& tag, const std::string& options) {
  Source s;
  s.content = &c;
  const std::string path = fixture().qcow2(c, tag, options);
  s.open = [path] { return open_path(path); };
  s.holes.at_least = zero_clusters(c);
  return s;
}

// The table. Row names are fixed here; each row is built on first use.
const std::vector<Row>& table() {
  static const std::vector<Row> rows = {
      {"memory", false, [] { return memory_row(main_content()); }},
      {"memory, byte-odd size", false, [] { return memory_row(odd_content()); }},
      {"memory, empty", false, [] { return memory_row(empty_content()); }},
      {"file", true, [] { return file_row(main_content()); }},
      {"file, byte-odd size", true, [] { return file_row(odd_content()); }},
      {"file, empty", true, [] { return file_row(empty_content()); }},
      {"file without SEEK_HOLE", false,
       [] {
         Source s;
         s.content = &main_content();
         const std::string path = fixture().raw(main_content());
         s.open = [path] { return open_path(path, false); };
         s.holes.never = true;
         return s;
       }},
      {"loop device", true,
       [] {
         Source s;
         const Content& c = main_content();
         s.content = &c;
         const std::string dev = fixture().loop(c).path;
         s.open = [dev] { return open_path(dev); };
         s.holes.never = true;  // block devices have no holes to seek to
         s.in_place = [&c] { return loop_in_place(c); };
         return s;
       }},
      {"qcow2", false, [] { return qcow2_row(main_content(), "plain", ""); }},
      {"qcow2, empty", false, [] { return qcow2_row(empty_content(), "plain", ""); }},
      {"qcow2 compressed (zlib)", false, [] { return qcow2_row(main_content(), "zlib", "-c -o compression_type=zlib"); }},
      {"qcow2 compressed (zstd)", false, [] { return qcow2_row(main_content(), "zstd", "-c -o compression_type=zstd"); }},
      {"qcow2 extended L2", false, [] { return qcow2_row(main_content(), "extl2", "-o extended_l2=on"); }},
      {"qcow2 over a backing file", false,
       [] {
         Source s;
         const Content& c = main_content();
         s.content = &c;
         const std::string path = fixture().backed_qcow2();
         s.open = [path] { return open_path(path); };
         s.holes.at_least = zero_clusters(c);
         return s;
       }},
  };
  return rows;
}

}  // namespace

std::vector<DataRange> Content::unwritten() const {
  std::vector<DataRange> out;
  for (const Piece& p : layout) {
    if (p.kind != Piece::unwritten) continue;
    if (!out.empty() && out.back().end == p.off) {
      out.back().end = p.off + p.len;
    } else {
      out.push_back({p.off, p.off + p.len});
    }
  }
  return out;
}

// Data at 0; written zeros inside a data cluster and over whole clusters; a
// hole; data across the 1 MiB chunk edge; a block whose only non-zero byte
// is in its middle, one whose only non-zero byte is its first; written zeros
// across the 2 MiB chunk edge; a zero block inside a data run, across a
// cluster edge; a hole; a short last block (1536 B: not a block multiple,
// a sector multiple) whose only non-zero byte is the last byte.
const Content& main_content() {
  static const Content c = build("main",
                                 {{0, 4 * K, Piece::data},
                                  {4 * K, 60 * K, Piece::zeros},
                                  {64 * K, 128 * K, Piece::zeros},
                                  {192 * K, 1 * M - 196 * K, Piece::unwritten},
                                  {1 * M - 4 * K, 12 * K, Piece::data},
                                  {1 * M + 8 * K, 4 * K, Piece::one_byte, 2047},
                                  {1 * M + 12 * K, 52 * K, Piece::unwritten},
                                  {1 * M + 64 * K, 1 * M - 60 * K, Piece::zeros},
                                  {2 * M + 4 * K, 4 * K, Piece::one_byte, 0},
                                  {2 * M + 8 * K, 1 * M - 8 * K, Piece::unwritten},
                                  {3 * M, 60 * K, Piece::data},
                                  {3 * M + 60 * K, 8 * K, Piece::zeros},
                                  {3 * M + 68 * K, 60 * K, Piece::data},
                                  {3 * M + 128 * K, 128 * K, Piece::unwritten},
                                  {3 * M + 256 * K, 1536, Piece::one_byte, 1535}},
                                 1);
  return c;
}

// Data, a hole, zeros, a block whose only non-zero byte is its last, and a
// 777-byte tail of written zeros (the source ends in a zero run).
const Content& odd_content() {
  static const Content c = build("odd",
                                 {{0, 4 * K, Piece::data},
                                  {4 * K, 8 * K, Piece::unwritten},
                                  {12 * K, 4 * K, Piece::zeros},
                                  {16 * K, 4 * K, Piece::one_byte, 4095},
                                  {20 * K, 777, Piece::zeros}},
                                 50);
  return c;
}

const Content& empty_content() {
  static const Content c = build("empty", {}, 0);
  return c;
}

const std::vector<std::string>& source_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& row : table()) n.push_back(row.name);
    return n;
  }();
  return names;
}

const std::vector<std::string>& in_place_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& row : table())
      if (row.in_place) n.push_back(row.name);
    return n;
  }();
  return names;
}

Source& source(const std::string& name) {
  static std::map<std::string, Source> built;
  auto it = built.find(name);
  if (it != built.end()) return it->second;
  for (const auto& row : table()) {
    if (row.name != name) continue;
    Source s = row.make();
    if (static_cast<bool>(s.in_place) != row.in_place) throw std::logic_error("conformance row '" + name + "': in_place flag is wrong");
    s.name = name;
    return built[name] = std::move(s);
  }
  throw std::logic_error("no conformance row '" + name + "'");
}

const std::string& scratch_dir() { return fixture().dir; }

}  // namespace conformance
