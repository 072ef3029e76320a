#include "file_reader.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>

#include "error.h"

namespace blocksmith {

static const char* type_name(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

SourceInfo describe_fd(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_sys(errno, "fstat", path);
  SourceInfo info;
  info.st_dev = st.st_dev;
  info.st_ino = st.st_ino;
  info.st_rdev = st.st_rdev;
  if (S_ISREG(st.st_mode)) {
    info.kind = SourceKind::regular_file;
    info.size = static_cast<uint64_t>(st.st_size);
    info.allocated = static_cast<uint64_t>(st.st_blocks) * 512;
    return info;
  }
  if (S_ISBLK(st.st_mode)) {
    info.kind = SourceKind::block_device;
    uint64_t size = 0;
    if (::ioctl(fd, BLKGETSIZE64, &size) != 0) throw_sys(errno, "ioctl", path, "BLKGETSIZE64 on '" + path + "'");
    int lss = 0;
    unsigned int pss = 0;
    if (::ioctl(fd, BLKSSZGET, &lss) != 0) throw_sys(errno, "ioctl", path, "BLKSSZGET on '" + path + "'");
    if (::ioctl(fd, BLKPBSZGET, &pss) != 0) throw_sys(errno, "ioctl", path, "BLKPBSZGET on '" + path + "'");
    info.size = size;
    info.allocated = size;
    info.logical_sector_size = static_cast<uint32_t>(lss);
    info.physical_sector_size = pss;
    return info;
  }
  int err = S_ISDIR(st.st_mode) ? EISDIR : ENOTBLK;
  throw Error(err, errno_name(err), "open", path,
              "'" + path + "' is " + type_name(st.st_mode) +
                  "; expected a regular file or a block device");
}

FileReader FileReader::open(const std::string& path, bool use_seek_hole) {
  // O_NONBLOCK so that opening a FIFO cannot hang; it is refused right after.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd) throw_sys(errno, "open", path);
  return adopt(std::move(fd), path, use_seek_hole);
}

FileReader FileReader::adopt(UniqueFd fd, const std::string& path, bool use_seek_hole) {
  SourceInfo info = describe_fd(fd.get(), path);
  int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags >= 0) ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
  // Block devices have no holes to seek to.
  bool seek = use_seek_hole && info.kind == SourceKind::regular_file;
  return FileReader(std::move(fd), path, info, seek);
}

size_t FileReader::read_at(void* buf, size_t len, uint64_t off) {
  auto* p = static_cast<uint8_t*>(buf);
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd_.get(), p + done, len - done, static_cast<off_t>(off + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_sys(errno, "read", path_,
                "read of '" + path_ + "' at byte " + std::to_string(off + done) + " failed");
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

size_t FileReader::read_cached(void* buf, size_t len, uint64_t off) {
  if (nowait_unsupported_.load(std::memory_order_relaxed)) return 0;
  auto* p = static_cast<uint8_t*>(buf);
  size_t done = 0;
  while (done < len) {
    struct iovec iov {p + done, len - done};
    ssize_t n = ::preadv2(fd_.get(), &iov, 1, static_cast<off_t>(off + done), RWF_NOWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EOPNOTSUPP || errno == EINVAL || errno == ENOSYS) nowait_unsupported_.store(true, std::memory_order_relaxed);
      break;  // EAGAIN: not cached; anything else: read_at will report it
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

// A file that shrank while we scan would make SEEK_DATA/SEEK_HOLE report the
// cut-off tail as a hole, and the caller would take it for zeros. Every time
// the answer implies "hole up to the end", the size is checked again.
void FileReader::check_size_unchanged() const {
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0) throw_sys(errno, "fstat", path_);
  if (static_cast<uint64_t>(st.st_size) < info_.size)
    throw Error(0, "ERR_SOURCE_CHANGED", "read", path_,
                "'" + path_ + "' shrank from " + std::to_string(info_.size) + " to " +
                    std::to_string(st.st_size) + " bytes while it was being read");
}

DataRange FileReader::next_data(uint64_t off) {
  const uint64_t s = info_.size;
  if (off >= s) return {s, s};
  if (!use_seek_hole_) return {off, s};
  off_t d = ::lseek(fd_.get(), static_cast<off_t>(off), SEEK_DATA);
  if (d < 0) {
    if (errno == ENXIO) {  // only a hole (or EOF) follows
      check_size_unchanged();
      return {s, s};
    }
    if (errno == EINVAL || errno == EOPNOTSUPP) return {off, s};  // fs without SEEK_DATA
    throw_sys(errno, "lseek", path_, "SEEK_DATA on '" + path_ + "'");
  }
  uint64_t begin = static_cast<uint64_t>(d);
  if (begin >= s) return {s, s};
  off_t h = ::lseek(fd_.get(), d, SEEK_HOLE);
  if (h < 0) {
    if (errno == ENXIO) {
      check_size_unchanged();
      return {begin, s};
    }
    throw_sys(errno, "lseek", path_, "SEEK_HOLE on '" + path_ + "'");
  }
  uint64_t end = static_cast<uint64_t>(h);
  if (end > s) end = s;
  if (end < s) check_size_unchanged();
  return {begin, end};
}

void FileReader::advise_sequential() {
  ::posix_fadvise(fd_.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
}

void FileReader::advise_done(uint64_t off, uint64_t len) {
  ::posix_fadvise(fd_.get(), static_cast<off_t>(off), static_cast<off_t>(len), POSIX_FADV_DONTNEED);
}

uint64_t FileReader::current_allocated() const {
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0) throw_sys(errno, "fstat", path_);
  if (S_ISBLK(st.st_mode)) return info_.size;
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

}  // namespace blocksmith
