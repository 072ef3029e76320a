// Kernel-made ext2/3/4 images for the tests of the ext readers: a temp
// directory with an image that the real kernel mounts (mount -o loop: the
// loop device goes away with the umount), shell steps, debugfs output, and
// raw inodes read back through read_ext's layout.
#pragma once

#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/guest_fs/bytes.h"
#include "core/guest_fs/ext.h"
#include "core/pipeline/reader.h"
#include "test.h"

namespace ext_image {

struct ImageDir {
  std::string path;
  bool mounted = false;
  ImageDir() {
    char t[] = "/tmp/blocksmith-ext-XXXXXX";
    path = mkdtemp(t);
  }
  ~ImageDir() {
    if (mounted) std::system(("umount '" + path + "/mnt' >/dev/null 2>&1").c_str());
    std::system(("rm -rf '" + path + "'").c_str());
  }
  std::string img() const { return path + "/fs.img"; }
  std::string mnt() const { return path + "/mnt"; }
  void sh(const std::string& cmd) const {
    const std::string full = "cd '" + path + "' && { " + cmd + "; } >/dev/null 2>&1";
    if (std::system(full.c_str()) != 0) coretest::fail(__FILE__, __LINE__, "command failed: " + cmd);
  }
  std::string out(const std::string& cmd) const {
    std::string o;
    if (FILE* p = ::popen(("cd '" + path + "' && " + cmd + " 2>/dev/null").c_str(), "r")) {
      char buf[4096];
      size_t n;
      while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) o.append(buf, n);
      ::pclose(p);
    }
    return o;
  }
  // mkfs (`mkfs` is the whole command with options, e.g. "mkfs.ext4 -q"), then mounted at mnt/.
  void make(const std::string& mkfs, const std::string& size = "32M") {
    sh("truncate -s " + size + " fs.img && " + mkfs + " -F fs.img && mkdir -p mnt");
    mount();
  }
  void mount() {
    sh("mount -o loop fs.img mnt");
    mounted = true;
  }
  void umount() {
    sh("umount mnt");
    mounted = false;
  }
  // The inode number of a file under mnt/ (mounted).
  uint32_t ino(const std::string& rel) const {
    return static_cast<uint32_t>(std::stoul(out("stat -c %i 'mnt/" + rel + "'")));
  }
  std::vector<uint8_t> read(const std::string& rel) const {
    std::ifstream f(path + "/" + rel, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
  }
};

// The filesystem block holding inode `ino` and the byte offset in it.
inline std::pair<uint64_t, uint32_t> inode_location(const blocksmith::fs::ExtLayout& g, uint32_t ino) {
  const uint32_t grp = (ino - 1) / g.ipg, idx = (ino - 1) % g.ipg;
  const uint64_t byte = static_cast<uint64_t>(idx) * g.inode_size;
  return {g.inode_table(grp) + byte / g.bs, static_cast<uint32_t>(byte % g.bs)};
}

// The raw inode as the inode table holds it now.
inline std::vector<uint8_t> raw_inode(blocksmith::Reader& r, const blocksmith::fs::ExtLayout& g, uint32_t ino) {
  auto [block, off] = inode_location(g, ino);
  std::vector<uint8_t> b(g.inode_size);
  r.read_at(b.data(), b.size(), g.offset + block * g.bs + off);
  return b;
}

// Numbers in debugfs output, in order (e.g. `blocks FILE`: "1234 1235 ...").
inline std::vector<uint64_t> numbers(const std::string& s) {
  std::vector<uint64_t> v;
  uint64_t cur = 0;
  bool in = false;
  for (char c : s) {
    if (c >= '0' && c <= '9') {
      cur = cur * 10 + static_cast<uint64_t>(c - '0');
      in = true;
    } else if (in) {
      v.push_back(cur);
      cur = 0;
      in = false;
    }
  }
  if (in) v.push_back(cur);
  return v;
}

}  // namespace ext_image
