#include "core/carve/output.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "core/base/error.h"
#include "core/base/unique_fd.h"

namespace blocksmith::carve {
namespace {

// Opens a directory to create entries relative to; its last component must
// not be a symlink.
UniqueFd open_dir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    int e = errno;
    struct stat st;
    // O_DIRECTORY|O_NOFOLLOW on a symlink fails with ENOTDIR (or ELOOP): say which.
    if ((e == ENOTDIR || e == ELOOP) && ::lstat(dir.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
      throw_sys(ELOOP, "open", dir, "'" + dir + "' is a symbolic link (not followed)");
    throw_sys(e, "open", dir);
  }
  return fd;
}

// Whether dfd/name is a regular file holding exactly data[0, len).
bool same_content(int dfd, const std::string& name, const uint8_t* data, size_t len) {
  UniqueFd fd(::openat(dfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return false;
  struct stat st;
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || uint64_t(st.st_size) != len) return false;
  std::vector<uint8_t> buf(std::min<size_t>(len, size_t(1) << 20));
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd.get(), buf.data(), std::min(buf.size(), len - done), off_t(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || std::memcmp(buf.data(), data + done, size_t(n)) != 0) return false;
    done += size_t(n);
  }
  return true;
}

[[noreturn]] void throw_exists(const std::string& path) {
  throw_sys(EEXIST, "open", path, "'" + path + "' already exists (not replaced)");
}

// Moves dfd/tmp to dfd/name unless name exists (then -1 with errno EEXIST).
int rename_noreplace(int dfd, const std::string& tmp, const std::string& name) {
  if (::renameat2(dfd, tmp.c_str(), dfd, name.c_str(), RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) return -1;
  // No RENAME_NOREPLACE here (NFS, some FUSE filesystems): a hard link fails
  // with EEXIST just the same.
  if (::linkat(dfd, tmp.c_str(), dfd, name.c_str(), 0) == 0) {
    ::unlinkat(dfd, tmp.c_str(), 0);
    return 0;
  }
  if (errno != EPERM && errno != ENOTSUP && errno != EOPNOTSUPP) return -1;
  // Neither (a filesystem without hard links and without the flag): check,
  // then rename; the directory was checked, so only a racing writer with
  // access to it could slip in between.
  struct stat st;
  if (::fstatat(dfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    errno = EEXIST;
    return -1;
  }
  return ::renameat(dfd, tmp.c_str(), dfd, name.c_str());
}

}  // namespace

void ensure_dir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0755) == 0) return;
  int e = errno;
  if (e != EEXIST) throw_sys(e, "mkdir", dir);
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0) throw_sys(errno, "lstat", dir);
  if (S_ISLNK(st.st_mode)) throw_sys(EEXIST, "mkdir", dir, "'" + dir + "' is a symbolic link (not followed)");
  if (!S_ISDIR(st.st_mode)) throw_sys(EEXIST, "mkdir", dir, "'" + dir + "' exists and is not a directory");
}

Written write_file(const std::string& dir, const std::string& name, const uint8_t* data, size_t len, bool keep_identical) {
  UniqueFd dfd = open_dir(dir);
  const std::string final_path = dir + "/" + name;
  struct stat st;
  if (::fstatat(dfd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (keep_identical && same_content(dfd.get(), name, data, len)) return Written::identical;
    throw_exists(final_path);
  }
  // A fresh temporary name: one left by a killed run, or planted, is skipped.
  std::string tmp;
  UniqueFd fd;
  const std::string prefix = "." + name + ".part-" + std::to_string(::getpid()) + "-";
  for (int attempt = 0; !fd; attempt++) {
    tmp = prefix + std::to_string(attempt);
    fd.reset(::openat(dfd.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (!fd && (errno != EEXIST || attempt >= 100000)) throw_sys(errno, "open", dir + "/" + tmp);
  }
  auto fail = [&](int e, const char* syscall) {
    fd.reset();
    ::unlinkat(dfd.get(), tmp.c_str(), 0);
    throw_sys(e, syscall, dir + "/" + tmp);
  };
  size_t done = 0;
  while (done < len) {
    ssize_t w = ::write(fd.get(), data + done, len - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail(errno, "write");
    }
    done += size_t(w);
  }
  if (::close(fd.release()) != 0) fail(errno, "close");
  if (rename_noreplace(dfd.get(), tmp, name) != 0) {
    int e = errno;
    ::unlinkat(dfd.get(), tmp.c_str(), 0);
    if (e == EEXIST) {
      if (keep_identical && same_content(dfd.get(), name, data, len)) return Written::identical;
      throw_exists(final_path);
    }
    throw_sys(e, "rename", final_path);
  }
  return Written::created;
}

void remove_file(const std::string& out_dir, const std::string& rel) {
  UniqueFd dfd(::open(out_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dfd) return;
  size_t slash = rel.find('/');
  if (slash == std::string::npos) {
    ::unlinkat(dfd.get(), rel.c_str(), 0);
    return;
  }
  UniqueFd sub(::openat(dfd.get(), rel.substr(0, slash).c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (sub) ::unlinkat(sub.get(), rel.substr(slash + 1).c_str(), 0);
}

}  // namespace blocksmith::carve
