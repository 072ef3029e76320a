#include "core/host/image_lock.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "core/base/error.h"
#include "core/host/block_devices.h"

namespace blocksmith {
namespace {

constexpr long kLockBase = 100;   // RAW_LOCK_PERM_BASE
constexpr long kSharedBase = 200; // RAW_LOCK_SHARED_BASE
// Our own mutex byte: above QEMU's [100, 300), below any real use.
constexpr long kBlocksmithByte = 400;
constexpr long kLockEnd = 300;

// Processes (other than us) with an fd open on the same inode.
std::vector<LockHolder> find_openers(int fd) {
  std::vector<LockHolder> out;
  struct stat target {};
  if (::fstat(fd, &target) != 0) return out;
  DIR* proc = ::opendir("/proc");
  if (!proc) return out;
  const int self = ::getpid();
  while (struct dirent* de = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(de->d_name, &end, 10);
    if (*end != '\0' || pid <= 0 || pid == self) continue;
    std::string fd_dir = std::string("/proc/") + de->d_name + "/fd";
    DIR* fds = ::opendir(fd_dir.c_str());
    if (!fds) continue;
    bool found = false;
    while (struct dirent* fe = ::readdir(fds)) {
      if (fe->d_name[0] == '.') continue;
      struct stat st {};
      if (::stat((fd_dir + "/" + fe->d_name).c_str(), &st) == 0 && st.st_dev == target.st_dev &&
          st.st_ino == target.st_ino) {
        found = true;
        break;
      }
    }
    ::closedir(fds);
    if (found) {
      LockHolder h;
      h.pid = static_cast<int>(pid);
      std::ifstream comm(std::string("/proc/") + de->d_name + "/comm");
      std::getline(comm, h.command);
      out.push_back(h);
    }
  }
  ::closedir(proc);
  return out;
}

bool range_locked(int fd, long start, long len, long* first) {
  struct flock fl {};
  fl.l_type = F_WRLCK;  // conflicts with any lock another description holds
  fl.l_whence = SEEK_SET;
  fl.l_start = start;
  fl.l_len = len;
  if (::fcntl(fd, F_OFD_GETLK, &fl) != 0) return false;  // no OFD support: nothing to see
  if (fl.l_type == F_UNLCK) return false;
  *first = static_cast<long>(fl.l_start);
  return true;
}

}  // namespace

LockProbe probe_qemu_locks(int fd, const std::string& /*path*/) {
  LockProbe probe;
  long first = -1;
  if (range_locked(fd, kLockBase, kLockEnd - kLockBase, &first)) {
    probe.locked = true;
    probe.first_byte = first;
    long ignored = -1;
    probe.write_locked = range_locked(fd, kLockBase + 1, 1, &ignored);  // BLK_PERM_WRITE is bit 1
    probe.holders = find_openers(fd);
  }
  return probe;
}

void take_image_lock(int fd, const std::string& path) {
  // Bytes: we hold consistent-read and write (100, 101); we share neither
  // write nor resize (201, 203). Shared read locks, as QEMU takes them.
  for (long byte : {kLockBase + 0, kLockBase + 1, kSharedBase + 1, kSharedBase + 3}) {
    struct flock fl {};
    fl.l_type = F_RDLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = byte;
    fl.l_len = 1;
    if (::fcntl(fd, F_OFD_SETLK, &fl) != 0) {
      int err = errno;
      if (err == EINVAL || err == ENOLCK || err == EOPNOTSUPP) return;  // fs without locks
      throw Error(EBUSY, "EBUSY", "fcntl", path,
                  "'" + path + "' is locked by another process (QEMU or blocksmith); refusing to change it");
    }
  }
}

void take_blocksmith_lock(int fd, const std::string& path) {
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = kBlocksmithByte;
  fl.l_len = 1;
  if (::fcntl(fd, F_OFD_SETLK, &fl) == 0) return;
  int err = errno;
  if (err == EINVAL || err == ENOLCK || err == EOPNOTSUPP) return;  // fs without locks
  std::string who = describe_holders(find_openers(fd));
  throw Error(EBUSY, "EBUSY", "fcntl", path,
              "'" + path + "' is being changed by another process" + (who.empty() ? "" : " (" + who + ")") +
                  ", a second blocksmith or a program that locks it whole; refusing to change it");
}

std::string describe_holders(const std::vector<LockHolder>& holders) {
  std::string s;
  for (const auto& h : holders) {
    if (!s.empty()) s += ", ";
    s += (h.command.empty() ? std::string("pid ") : h.command + " (pid ") + std::to_string(h.pid) +
         (h.command.empty() ? "" : ")");
  }
  return s;
}

void release_image_locks(int fd) {
  struct flock fl {};
  fl.l_type = F_UNLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = kLockBase;
  fl.l_len = kBlocksmithByte + 1 - kLockBase;
  ::fcntl(fd, F_OFD_SETLK, &fl);
}

}  // namespace blocksmith

namespace blocksmith {

std::vector<std::string> loop_devices_backed_by(int fd) {
  std::vector<std::string> out;
  struct stat target {};
  if (::fstat(fd, &target) != 0 || !S_ISREG(target.st_mode)) return out;
  DIR* sys = ::opendir("/sys/block");
  if (!sys) return out;
  while (struct dirent* de = ::readdir(sys)) {
    if (std::strncmp(de->d_name, "loop", 4) != 0) continue;
    const auto backing = host::loop_backing_file(de->d_name);
    if (!backing) continue;
    struct stat st {};
    if (::stat(backing->c_str(), &st) == 0 && st.st_dev == target.st_dev && st.st_ino == target.st_ino) {
      out.push_back(std::string("/dev/") + de->d_name);
    }
  }
  ::closedir(sys);
  return out;
}

}  // namespace blocksmith
