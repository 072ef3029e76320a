// The host module's storage facts (host/block_devices.h, host/same_storage.h):
// where an output would land relative to a source, checked on this machine's
// real filesystems (/tmp is the root ext4, /dev/shm a tmpfs) and, as root, a
// real loop device.
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "core/base/error.h"
#include "core/host/block_devices.h"
#include "core/host/mountinfo.h"
#include "core/host/same_storage.h"
#include "test.h"

using namespace blocksmith;

namespace {

struct TempDir {
  std::string path;
  explicit TempDir(const char* base) {
    std::string tmpl = std::string(base) + "/blocksmith-host-XXXXXX";
    path = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

std::string make_file(const std::string& path, size_t size) {
  std::ofstream(path) << std::string(size, 'x');
  return path;
}

std::string run(const std::string& cmd) {
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[256];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    ::pclose(p);
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

TEST("same_storage: an output directory on the filesystem of a file source is named, with the reason") {
  TempDir tmp("/tmp");
  const std::string src = make_file(tmp.path + "/disk.img", 4096);
  CHECK_EQ(host::same_storage(src, tmp.path + "/out").value_or(""), tmp.path + "/out is on the filesystem that holds " + src);
}

TEST("same_storage: an output directory that does not exist yet is judged by its nearest existing ancestor") {
  TempDir tmp("/tmp");
  const std::string src = make_file(tmp.path + "/disk.img", 4096);
  CHECK(host::same_storage(src, tmp.path + "/a/b/c").has_value());
  TempDir shm("/dev/shm");
  CHECK(!host::same_storage(src, shm.path + "/a/b/c").has_value());
}

TEST("same_storage: another filesystem is fine; a missing source is ENOENT") {
  TempDir tmp("/tmp");
  TempDir shm("/dev/shm");
  const std::string src = make_file(tmp.path + "/disk.img", 4096);
  CHECK(!host::same_storage(src, shm.path).has_value());
  CHECK_THROWS_CODE(host::same_storage(tmp.path + "/missing.img", shm.path), "ENOENT");
}

TEST("block devices: whole_disk_name falls back to M:m for a number sysfs does not know") {
  CHECK_EQ(host::whole_disk_name(makedev(4095, 1048575)), std::string("4095:1048575"));
  CHECK(!host::block_device_size(makedev(4095, 1048575)).has_value());
  CHECK(!host::loop_backing_file("no-such-disk").has_value());
  CHECK(!host::loop_backing_file("../loop0").has_value());
}

TEST("block devices: a loop device's size, whole disk and backing file; an output beside the backing file is refused") {
  if (::geteuid() != 0) return;  // losetup needs root (CI runs as root)
  TempDir tmp("/tmp");
  const std::string img = make_file(tmp.path + "/disk.img", 3 << 20);
  const std::string loop = run("losetup -f --show -r '" + img + "' 2>/dev/null");
  CHECK(loop.rfind("/dev/loop", 0) == 0);
  struct Detach {
    std::string dev;
    ~Detach() { std::system(("losetup -d " + dev).c_str()); }
  } detach{loop};
  struct stat st {};
  CHECK(::stat(loop.c_str(), &st) == 0);
  const std::string name = loop.substr(5);
  CHECK_EQ(host::whole_disk_name(st.st_rdev), name);
  CHECK_EQ(host::block_device_size(st.st_rdev).value_or(0), uint64_t(3) << 20);
  CHECK_EQ(host::loop_backing_file(name).value_or(""), img);
  CHECK_EQ(host::same_storage(loop, tmp.path + "/out").value_or(""),
           tmp.path + "/out is on the filesystem that holds " + img + ", the backing file of " + loop);
  TempDir shm("/dev/shm");
  CHECK(!host::same_storage(loop, shm.path).has_value());
}

TEST("mountinfo: every path lies under a mount; / is the root's, /dev/shm its own tmpfs; a missing path has none") {
  CHECK(!host::read_mountinfo().empty());
  CHECK_EQ(host::mount_point_of("/").value_or("?"), std::string("/"));
  CHECK_EQ(host::mount_point_of("/dev/shm/.").value_or("?"), std::string("/dev/shm"));
  CHECK(!host::mount_point_of("/no/such/path").has_value());
}

TEST("mountinfo: a mount point with a space is unescaped (\\040 in the file)") {
  if (::geteuid() != 0) return;  // mount needs root (CI runs as root)
  TempDir tmp("/tmp");
  const std::string mp = tmp.path + "/with space";
  CHECK(::mkdir(mp.c_str(), 0755) == 0);
  CHECK(std::system(("mount -t tmpfs -o size=1m none '" + mp + "'").c_str()) == 0);
  struct Unmount {
    std::string mp;
    ~Unmount() { std::system(("umount '" + mp + "'").c_str()); }
  } unmount{mp};
  CHECK_EQ(host::mount_point_of(mp + "/.").value_or("?"), mp);
}
