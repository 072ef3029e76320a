#include "core/host/image_use.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "core/base/error.h"
#include "core/host/mount_check.h"
#include "core/host/image_lock.h"
#include "core/base/unique_fd.h"

namespace blocksmith {
namespace {

std::string comm_of(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/comm");
  std::string s;
  std::getline(f, s);
  return s;
}

std::string who(int pid, const std::string& comm) {
  return comm.empty() ? "pid " + std::to_string(pid) : comm + " (pid " + std::to_string(pid) + ")";
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

bool same_file(const struct stat& a, const struct stat& b) {
  if (S_ISBLK(a.st_mode)) return S_ISBLK(b.st_mode) && a.st_rdev == b.st_rdev;
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// ------------------------------------------------------------ leases

struct LeaseHolder {
  int pid = 0;
  bool write = false;  // a write lease (an in-place run); else a read lease (a copy)
};

// Leases other processes hold on the inode, from /proc/locks (read without
// opening the image, which would break them). Lines look like
// "7: LEASE  ACTIVE    WRITE 1978 fe:00:2214199 0 EOF".
std::vector<LeaseHolder> lease_holders(const struct stat& st) {
  std::vector<LeaseHolder> out;
  if (!S_ISREG(st.st_mode)) return out;
  char id[64];
  std::snprintf(id, sizeof id, "%02x:%02x:%lu", major(st.st_dev), minor(st.st_dev),
                static_cast<unsigned long>(st.st_ino));
  std::ifstream f("/proc/locks");
  std::string line;
  while (std::getline(f, line)) {
    if (line.find("->") != std::string::npos) continue;  // a waiter (an opener breaking it), not a holder
    std::istringstream ls(line);
    std::vector<std::string> t;
    for (std::string w; ls >> w;) t.push_back(w);
    if (t.size() < 6 || t[1] != "LEASE" || t[2] == "BREAKER" || t[5] != id) continue;
    LeaseHolder h;
    h.pid = std::atoi(t[4].c_str());
    h.write = t[3] == "WRITE";
    out.push_back(h);
  }
  return out;
}

// ------------------------------------------------------------ processes

struct Opener {
  int pid = 0;
  std::string comm;
  bool writes = false;  // open for writing, or mapped shared and writable
  bool mapped = false;  // found in /proc/PID/maps only
};

int access_mode(const std::string& fdinfo) {
  std::ifstream f(fdinfo);
  std::string key;
  while (f >> key) {
    if (key == "flags:") {
      std::string v;
      f >> v;
      return static_cast<int>(std::strtol(v.c_str(), nullptr, 8)) & O_ACCMODE;
    }
  }
  return O_RDONLY;
}

// Processes with the image open (every fd in /proc/*/fd pointing at it,
// with its access mode from fdinfo), and, for a regular file, those that map
// it shared and writable (an mmap outlives its fd). Our own `own_fd` is left
// out. Processes of other users are invisible without privileges.
std::vector<Opener> find_openers(const struct stat& target, int own_fd) {
  std::vector<Opener> out;
  DIR* proc = ::opendir("/proc");
  if (!proc) return out;
  const int self = ::getpid();
  char dev[32];
  std::snprintf(dev, sizeof dev, "%02x:%02x", major(target.st_dev), minor(target.st_dev));
  while (struct dirent* de = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(de->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    const std::string base = std::string("/proc/") + de->d_name;
    Opener o;
    o.pid = static_cast<int>(pid);
    bool found = false;
    if (DIR* fds = ::opendir((base + "/fd").c_str())) {
      while (struct dirent* fe = ::readdir(fds)) {
        if (fe->d_name[0] == '.') continue;
        if (pid == self && std::atoi(fe->d_name) == own_fd) continue;
        struct stat st {};
        // stat() follows the magic link to the inode without opening it.
        if (::stat((base + "/fd/" + fe->d_name).c_str(), &st) != 0 || !same_file(target, st)) continue;
        found = true;
        if (access_mode(base + "/fdinfo/" + fe->d_name) != O_RDONLY) o.writes = true;
      }
      ::closedir(fds);
    }
    if (!o.writes && S_ISREG(target.st_mode)) {
      std::ifstream maps(base + "/maps");
      std::string line;
      while (std::getline(maps, line)) {
        std::istringstream ls(line);
        std::string range, perms, offset, mdev;
        unsigned long ino = 0;
        ls >> range >> perms >> offset >> mdev >> ino;
        if (ino != target.st_ino || mdev != dev) continue;
        if (perms.size() >= 4 && perms[1] == 'w' && perms[3] == 's') {
          o.writes = true;
          if (!found) o.mapped = true;
          found = true;
          break;
        }
      }
    }
    if (found) {
      o.comm = comm_of(o.pid);
      out.push_back(o);
    }
  }
  ::closedir(proc);
  return out;
}

// ------------------------------------------------------------ what we found

struct Finding {
  std::string text;  // "python3 (pid 12) has it open for writing"
  bool writer;       // can change the image
  std::vector<int> pids;
};

bool read_only_loop(const std::string& dev) {
  std::ifstream f("/sys/block/" + dev.substr(dev.rfind('/') + 1) + "/ro");
  std::string v;
  std::getline(f, v);
  return v == "1";
}

const char* lease_errno_text(int err) {
  switch (err) {
    case EACCES:
    case EPERM: return "leases need the file's owner or CAP_LEASE";
    case EINVAL: return "its filesystem has no leases, or fs.leases-enable is 0";
    default: return "";
  }
}

class Decider {
 public:
  Decider(std::string path, UseMode mode, bool force) : path_(std::move(path)), mode_(mode), force_(force) {}

  ImageUse run(const std::function<int(bool)>& open) {
    struct stat st {};
    bool have_stat = ::stat(path_.c_str(), &st) == 0;  // else `open` reports the error
    if (have_stat) check_leases(st);

    const bool device = have_stat && S_ISBLK(st.st_mode);
    int fd = -1;
    if (device && mode_ == UseMode::in_place) {
      fd = open_device_exclusive(open);
    } else {
      fd = open(false);
    }
    fd_ = fd;
    if (::fstat(fd, &st_) != 0) throw_sys(errno, "fstat", path_);

    if (mode_ == UseMode::in_place) {
      if (S_ISBLK(st_.st_mode)) refuse_read_only_device();
      // Another blocksmith changing this image is refused even with --force:
      // two in-place runs at once would race on the same blocks.
      take_blocksmith_lock(fd, path_);
    }
    collect_qemu();
    if (S_ISREG(st_.st_mode)) {
      collect_loops();
      lease_or_scan();
    } else {
      collect_device();
    }
    decide();
    if (mode_ == UseMode::in_place) {
      try {
        take_image_lock(fd, path_);
      } catch (const Error&) {
        if (!force_) throw;
      }
    }
    if (lease_type_ != F_UNLCK) make_guard();
    return std::move(use_);
  }

 private:
  // In place an open() of ours would break any lease (write or read); a
  // read-only open breaks only a write lease. Seen in /proc/locks first.
  void check_leases(const struct stat& st) {
    for (const auto& h : lease_holders(st)) {
      if (!h.write && mode_ != UseMode::in_place) continue;
      std::string holder = who(h.pid, comm_of(h.pid));
      if (h.write && mode_ == UseMode::in_place) {
        throw Error(EBUSY, "EBUSY", "open", path_,
                    "'" + path_ + "' is being changed by " + holder +
                        ", which holds a lease on it (another in-place sparsify); refusing to change it (--force does not apply)");
      }
      std::string what = h.write ? "being changed by " + holder + ", which holds a write lease on it (an in-place sparsify)"
                                 : "being copied by " + holder + ", which holds a read lease on it (a blocksmith copy)";
      if (!force_) {
        throw Error(EBUSY, "EBUSY", "open", path_,
                    "'" + path_ + "' is " + what + "; opening it now would stop that run: wait for it to end or use --force");
      }
      use_.warnings.push_back("--force: opened '" + path_ + "' although it was " + what + "; that run stops");
    }
  }

  // O_EXCL on a block device fails with EBUSY while it is mounted or held
  // (device-mapper, md, another O_EXCL user). With --force we still try it
  // first, to say what --force overrides.
  int open_device_exclusive(const std::function<int(bool)>& open) {
    try {
      return open(true);
    } catch (const Error& e) {
      if (e.errnum() != EBUSY) throw;
    }
    std::vector<Finding> users = device_users();
    std::vector<std::string> texts;
    for (const auto& u : users) texts.push_back(u.text);
    if (!force_) {
      std::string what = texts.empty() ? "in use (mounted, or held by device-mapper/md/another program)"
                                       : "in use: " + join(texts, "; ");
      throw Error(EBUSY, "EBUSY", "open", path_, "'" + path_ + "' is " + what + "; unmount or release it first or use --force");
    }
    // decide() lists these in the one --force warning.
    excl_overridden_ = true;
    for (auto& u : users) findings_.push_back(std::move(u));
    findings_.push_back({"it was opened without O_EXCL", true, {}});
    return open(false);
  }

  // Who holds a device that refused O_EXCL: mounts and holders, else the
  // programs that have it open (one of them claimed it with O_EXCL; the
  // kernel does not say which).
  std::vector<Finding> device_users() {
    std::vector<Finding> out;
    UniqueFd probe(::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    struct stat st {};
    if (!probe || ::fstat(probe.get(), &st) != 0) return out;
    for (const auto& u : host::filesystem_uses(probe.get())) out.push_back({u.text, !u.read_only, {}});
    if (!out.empty()) return out;
    for (const auto& o : find_openers(st, probe.get())) {
      out.push_back({who(o.pid, o.comm) + " has it open" + (o.writes ? " for writing" : ""), true, {o.pid}});
    }
    if (!out.empty()) out.front().text = "claimed by another program (O_EXCL): " + out.front().text;
    return out;
  }

  void refuse_read_only_device() {
    int ro = 0;
    if (::ioctl(fd_, BLKROGET, &ro) == 0 && ro) {
      throw Error(EROFS, "EROFS", "open", path_,
                  "'" + path_ + "' is a read-only block device (e.g. losetup -r, or a write-protected disk); in-place sparsify discards on it, so nothing was changed");
    }
  }

  void collect_qemu() {
    LockProbe p = probe_qemu_locks(fd_, path_);
    if (!p.locked) return;
    std::vector<std::string> names;
    Finding f;
    for (const auto& h : p.holders) {
      names.push_back(who(h.pid, h.command));
      f.pids.push_back(h.pid);
    }
    std::string holder = names.empty() ? "another process" : join(names, ", ");
    f.writer = p.write_locked;
    f.text = holder + (p.write_locked ? " holds QEMU's write lock on it (a running VM or qemu-img)"
                                      : " holds QEMU image locks on it (a VM or qemu-img using it read-only)");
    findings_.push_back(std::move(f));
  }

  void collect_loops() {
    auto loops = loop_devices_backed_by(fd_);
    if (loops.empty()) return;
    const auto mounts = host::filesystem_uses(fd_);  // of the loop devices and their partitions
    for (const auto& dev : loops) {
      bool ro = read_only_loop(dev);
      std::vector<std::string> uses;
      for (const auto& m : mounts) {
        const auto& t = m.text;
        if (t.rfind(dev, 0) == 0 && (t[dev.size()] == ' ' || t[dev.size()] == 'p')) uses.push_back(t);
      }
      findings_.push_back({"it backs " + std::string(ro ? "read-only " : "") + "loop device " + dev +
                               (uses.empty() ? "" : " (" + join(uses, "; ") + ")"),
                           !ro, {}});
    }
  }

  void add_openers(bool writers_only) {
    for (const auto& o : find_openers(st_, fd_)) {
      if (writers_only && !o.writes) continue;
      if (named(o.pid)) continue;
      std::string how = o.mapped ? "has it mapped for writing" : o.writes ? "has it open for writing" : "has it open for reading";
      findings_.push_back({who(o.pid, o.comm) + " " + how, o.writes, {o.pid}});
    }
  }

  bool named(int pid) const {
    for (const auto& f : findings_)
      for (int p : f.pids)
        if (p == pid) return true;
    return false;
  }

  // Regular files: the kernel answers "does anybody else have it open (for
  // writing)?" by granting or refusing a lease; /proc only names them.
  void lease_or_scan() {
    const int type = mode_ == UseMode::in_place ? F_WRLCK : F_RDLCK;
    const int err = LeaseGuard::try_take(fd_, type);
    if (err == 0) {
      if (mode_ == UseMode::dry_run) {
        LeaseGuard::release(fd_);  // a dry run only asked
      } else {
        lease_type_ = type;
      }
      return;
    }
    if (err == EAGAIN || err == EBUSY) {
      // Somebody else has it open (in place: in any mode; else: writing).
      add_openers(mode_ != UseMode::in_place);
      bool explained = false;
      for (const auto& f : findings_) explained = explained || f.writer || mode_ == UseMode::in_place;
      if (!explained) {
        findings_.push_back({std::string(mode_ == UseMode::in_place ? "another open file of it exists"
                                                                    : "something has it open for writing") +
                                 " (a process we cannot see, or the kernel: nfsd, a loop device)",
                             true, {}});
      }
      return;
    }
    // No lease possible (not the owner, or no leases on this filesystem).
    if (mode_ == UseMode::in_place) {
      no_lease_errno_ = err;
      no_lease_ = "no lease can be taken on it (" + errno_name(err) + ": " + lease_errno_text(err) +
                  "), so a process opening it during the run would not be detected";
      add_openers(false);
    } else {
      add_openers(true);  // best effort: the processes we can see
    }
  }

  void collect_device() {
    if (!excl_overridden_) {  // else device_users() named them already
      for (const auto& u : host::filesystem_uses(fd_)) findings_.push_back({u.text, !u.read_only, {}});
    }
    // Block devices have no leases: the processes we can see that write it.
    add_openers(true);
  }

  void decide() {
    std::vector<std::string> texts;
    for (const auto& f : findings_) {
      if (f.writer || mode_ == UseMode::in_place) texts.push_back(f.text);
    }
    if (!no_lease_.empty()) texts.push_back(no_lease_);
    if (texts.empty()) return;
    const std::string list = join(texts, "; ");
    switch (mode_) {
      case UseMode::dry_run:
        use_.warnings.push_back("'" + path_ + "' is in use (" + list + "): the figures can change");
        return;
      case UseMode::copy:
        if (!force_) {
          throw Error(EBUSY, "EBUSY", "open", path_,
                      "'" + path_ + "' is in use: " + list + "; a copy made now could be inconsistent: " + stop_hint() + " or use --force");
        }
        use_.warnings.push_back("--force: copying '" + path_ + "' although it is in use (" + list + "); the copy can be inconsistent");
        return;
      case UseMode::in_place:
        if (findings_.empty()) {  // nobody else seen; only the lease is missing
          if (!force_) {
            throw Error(no_lease_errno_, errno_name(no_lease_errno_), "fcntl", path_,
                        "'" + path_ + "': " + no_lease_ + ": run as its owner or root, or use --force");
          }
          use_.warnings.push_back("--force: punching '" + path_ + "' without a lease: " + no_lease_);
          return;
        }
        if (!force_) {
          throw Error(EBUSY, "EBUSY", "open", path_,
                      "'" + path_ + "' is in use: " + list +
                          "; in-place sparsify needs it to itself (a write made during the run could be lost): " + stop_hint() + " or use --force");
        }
        use_.warnings.push_back("--force: punching '" + path_ + "' although it is in use (" + list +
                                "); writes made to it during the run can be lost");
        return;
    }
  }

  std::string stop_hint() const {
    for (const auto& f : findings_) {
      if (f.text.find("loop device") != std::string::npos) return "stop it first (losetup -d for a loop device)";
    }
    return "stop it first";
  }

  void make_guard() {
    const std::string path = path_;
    const int fd = fd_;
    if (mode_ == UseMode::in_place) {
      use_.lease = std::make_unique<LeaseGuard>(
          fd, lease_type_, path,
          [path](uint64_t n) {
            return "another process opened '" + path + "' during the run: stopped before punching more; " +
                   std::to_string(n) + (n == 1 ? " hole" : " holes") + " punched, content unchanged";
          },
          // Give way completely: the opener may be QEMU, which would refuse
          // the image while our lock bytes are there.
          [fd] { release_image_locks(fd); });
    } else {
      use_.lease = std::make_unique<LeaseGuard>(fd, lease_type_, path, [path](uint64_t) {
        return "another process opened '" + path + "' for writing during the copy: stopped (the copy would be inconsistent)";
      });
    }
  }

  std::string path_;
  UseMode mode_;
  bool force_;
  int fd_ = -1;
  struct stat st_ {};
  std::vector<Finding> findings_;
  std::string no_lease_;
  int no_lease_errno_ = 0;
  bool excl_overridden_ = false;
  int lease_type_ = F_UNLCK;
  ImageUse use_;
};

}  // namespace

ImageUse check_image_use(const std::string& path, UseMode mode, bool force, const std::function<int(bool)>& open) {
  return Decider(path, mode, force).run(open);
}

}  // namespace blocksmith
