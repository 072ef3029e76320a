#include "core/readers/file_reader.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>

#include "core/base/aligned_buffer.h"
#include "core/base/error.h"

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

size_t FileReader::pread_all(int fd, void* buf, size_t len, uint64_t off) const {
  auto* p = static_cast<uint8_t*>(buf);
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd, p + done, len - done, static_cast<off_t>(off + done));
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

size_t FileReader::read_at(void* buf, size_t len, uint64_t off) { return pread_all(fd_.get(), buf, len, off); }

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

namespace {

// cachestat(2), Linux 6.5; the C library and kernel headers here predate it.
// The number is the same on every architecture (the unified syscall table).
constexpr long kSysCachestat = 451;
struct CachestatRange {
  uint64_t off, len;
};
struct Cachestat {
  uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};

int cachestat(int fd, uint64_t off, uint64_t len, Cachestat& out) {
  CachestatRange range{off, len};
  return static_cast<int>(::syscall(kSysCachestat, fd, &range, &out, 0));
}

// The kernel's struct statx (the C library's predates the direct I/O fields).
struct KernelStatx {
  uint32_t mask, blksize;
  uint64_t attributes;
  uint32_t nlink, uid, gid;
  uint16_t mode, pad1;
  uint64_t ino, size, blocks, attributes_mask;
  struct {
    int64_t sec;
    uint32_t nsec;
    int32_t pad;
  } atime, btime, ctime, mtime;
  uint32_t rdev_major, rdev_minor, dev_major, dev_minor;
  uint64_t mnt_id;
  uint32_t dio_mem_align, dio_offset_align;
  uint64_t spare[12];
};
static_assert(sizeof(KernelStatx) == 256);
constexpr unsigned kStatxDioAlign = 0x2000;

constexpr size_t kBufferAlign = 4096;  // AlignedBuffer's

}  // namespace

bool FileReader::open_uncached() {
  if (direct_fd_) return true;
  Cachestat cs{};
  if (cachestat(fd_.get(), 0, 1, cs) != 0) return false;  // ENOSYS: a kernel before 6.5
  // The same file again, by its fd (in place the path may have been replaced).
  const std::string self = "/proc/self/fd/" + std::to_string(fd_.get());
  UniqueFd d(::open(self.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC | O_NOCTTY));
  if (!d) return false;  // EINVAL: a filesystem without O_DIRECT (tmpfs before 6.6, ...)
  UniqueFd c(::open(self.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!c) return false;
  for (int f : {d.get(), c.get()}) {
    struct stat st {};
    if (::fstat(f, &st) != 0 || st.st_dev != info_.st_dev || st.st_ino != info_.st_ino || st.st_rdev != info_.st_rdev)
      return false;
  }
  uint32_t align = info_.kind == SourceKind::block_device ? std::max<uint32_t>(info_.logical_sector_size, 512) : 4096;
  KernelStatx sx{};
  if (::syscall(SYS_statx, d.get(), "", AT_EMPTY_PATH, kStatxDioAlign, &sx) == 0 && (sx.mask & kStatxDioAlign)) {
    if (sx.dio_offset_align == 0 || sx.dio_mem_align > kBufferAlign) return false;  // no direct I/O here
    align = std::max<uint32_t>(sx.dio_offset_align, 512);
  }
  if (align > kBufferAlign) return false;
  // Cached ranges are read through a descriptor without read-ahead: the few
  // pages missing from a warm range must not pull the ranges after it into
  // the cache (they would then be read through it too).
  ::posix_fadvise(c.get(), 0, 0, POSIX_FADV_RANDOM);
  direct_align_ = align;
  direct_fd_ = std::move(d);
  cache_fd_ = std::move(c);
  return true;
}

// Nearly all: a few pages evicted from a warm range cost less to read
// through the cache than the whole range does around it.
bool FileReader::cached(uint64_t off, size_t len) const {
  static const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  Cachestat cs{};
  if (len == 0 || cachestat(fd_.get(), off, len, cs) != 0) return false;
  const uint64_t pages = (off + len + page - 1) / page - off / page;
  return cs.nr_cache >= pages - pages / 8;
}

size_t FileReader::read_uncached(void* buf, size_t len, uint64_t off) {
  if (!direct_fd_) return read_at(buf, len, off);
  if (cached(off, len) || direct_failed_.load(std::memory_order_relaxed)) return pread_all(cache_fd_.get(), buf, len, off);
  return read_direct(static_cast<uint8_t*>(buf), len, off);
}

// One O_DIRECT pread: the bytes read, 0 at the end of the file, -1 when the
// kernel refused the alignment (EINVAL: direct reads are then given up).
ssize_t FileReader::pread_direct(uint8_t* p, size_t len, uint64_t off) {
  for (;;) {
    ssize_t n = ::pread(direct_fd_.get(), p, len, static_cast<off_t>(off));
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno == EINVAL) {
      direct_failed_.store(true, std::memory_order_relaxed);
      return -1;
    }
    throw_sys(errno, "read", path_, "read of '" + path_ + "' at byte " + std::to_string(off) + " failed");
  }
}

size_t FileReader::read_direct(uint8_t* p, size_t len, uint64_t off) {
  const uint64_t a = direct_align_;
  size_t done = 0;
  // Aligned offset and buffer: whole blocks straight into it.
  if (off % a == 0 && reinterpret_cast<uintptr_t>(p) % a == 0) {
    const size_t body = static_cast<size_t>(len / a * a);
    while (done < body) {
      ssize_t n = pread_direct(p + done, body - done, off + done);
      if (n < 0) return done + pread_all(cache_fd_.get(), p + done, len - done, off + done);
      done += static_cast<size_t>(n);
      if (n == 0 || static_cast<uint64_t>(n) % a) return done;  // the end of the file
    }
  }
  // The rest (an unaligned start, a partial last block): the aligned blocks
  // around it, through a buffer of this thread's.
  constexpr size_t kBounce = 1 << 20;
  thread_local std::unique_ptr<AlignedBuffer> bounce;
  if (done < len && !bounce) bounce = std::make_unique<AlignedBuffer>(kBounce);
  while (done < len) {
    const uint64_t at = off + done, lo = at - at % a;
    const uint64_t hi = (at + (len - done) + a - 1) / a * a;
    const size_t want = static_cast<size_t>(std::min<uint64_t>(kBounce, hi - lo));
    ssize_t n = pread_direct(bounce->data(), want, lo);
    if (n < 0) return done + pread_all(cache_fd_.get(), p + done, len - done, off + done);
    if (static_cast<uint64_t>(n) <= at - lo) break;  // the end of the file
    const size_t k = std::min<size_t>(static_cast<size_t>(n - (at - lo)), len - done);
    std::memcpy(p + done, bounce->data() + (at - lo), k);
    done += k;
    if (static_cast<size_t>(n) < want) break;
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

void FileReader::advise_willneed(uint64_t off, uint64_t len) {
  ::posix_fadvise(fd_.get(), static_cast<off_t>(off), static_cast<off_t>(len), POSIX_FADV_WILLNEED);
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
