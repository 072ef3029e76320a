// Reader over a regular file or a block device, opened read-only.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <string>

#include "core/pipeline/reader.h"
#include "core/base/unique_fd.h"

namespace blocksmith {

enum class SourceKind { regular_file, block_device };

struct SourceInfo {
  SourceKind kind = SourceKind::regular_file;
  uint64_t size = 0;
  uint64_t allocated = 0;           // st_blocks * 512 for files; size for devices
  uint32_t logical_sector_size = 0;  // devices only (BLKSSZGET)
  uint32_t physical_sector_size = 0; // devices only (BLKPBSZGET)
  dev_t st_dev = 0;
  ino_t st_ino = 0;
  dev_t st_rdev = 0;
};

class FileReader final : public Reader {
 public:
  // Opens read-only. Refuses (with a clear Error) directories, character
  // devices, FIFOs and sockets. `use_seek_hole` = false reads everything.
  static FileReader open(const std::string& path, bool use_seek_hole = true);
  // Reads through an fd the caller opened (in place: the O_RDWR fd that also
  // punches and holds the lease; a second open of the image would break it).
  // Same refusals as open().
  static FileReader adopt(UniqueFd fd, const std::string& path, bool use_seek_hole = true);

  // Movable (image_open keeps it on the heap); the atomic flags are copied by value.
  FileReader(FileReader&& o) noexcept
      : fd_(std::move(o.fd_)),
        path_(std::move(o.path_)),
        info_(o.info_),
        use_seek_hole_(o.use_seek_hole_),
        nowait_unsupported_(o.nowait_unsupported_.load(std::memory_order_relaxed)),
        direct_fd_(std::move(o.direct_fd_)),
        cache_fd_(std::move(o.cache_fd_)),
        direct_align_(o.direct_align_),
        direct_failed_(o.direct_failed_.load(std::memory_order_relaxed)) {}

  uint64_t size() const override { return info_.size; }
  const std::string& path() const override { return path_; }
  const SourceInfo& info() const { return info_; }
  int fd() const { return fd_.get(); }

  size_t read_at(void* buf, size_t len, uint64_t off) override;
  size_t read_cached(void* buf, size_t len, uint64_t off) override;  // preadv2(RWF_NOWAIT)
  DataRange next_data(uint64_t off) override;
  bool concurrent_reads() const override { return true; }  // pread only
  // Two more read-only fds on the same file or device: one O_DIRECT, one
  // buffered without read-ahead (for the cached ranges); what is cached is
  // told by cachestat(2) (Linux 6.5), which starts no I/O (a RWF_NOWAIT
  // probe would start read-ahead into the cache). False without either:
  // reads stay buffered.
  bool open_uncached() override;
  bool cached(uint64_t off, size_t len) const override;
  size_t read_uncached(void* buf, size_t len, uint64_t off) override;
  void advise_sequential() override;
  void advise_done(uint64_t off, uint64_t len) override;
  void advise_willneed(uint64_t off, uint64_t len) override;

  // Re-reads st_blocks (allocated bytes) of a regular file.
  uint64_t current_allocated() const;

 private:
  FileReader(UniqueFd fd, std::string path, SourceInfo info, bool use_seek_hole)
      : fd_(std::move(fd)), path_(std::move(path)), info_(info), use_seek_hole_(use_seek_hole) {}

  void check_size_unchanged() const;
  size_t pread_all(int fd, void* buf, size_t len, uint64_t off) const;
  ssize_t pread_direct(uint8_t* p, size_t len, uint64_t off);
  size_t read_direct(uint8_t* p, size_t len, uint64_t off);

  UniqueFd fd_;
  std::string path_;
  SourceInfo info_;
  bool use_seek_hole_;
  std::atomic<bool> nowait_unsupported_{false};
  UniqueFd direct_fd_;             // O_DIRECT twin of fd_ (open_uncached)
  UniqueFd cache_fd_;              // ...and a buffered one without read-ahead, for cached ranges
  uint32_t direct_align_ = 0;      // offset and length alignment of direct reads
  std::atomic<bool> direct_failed_{false};  // EINVAL from a direct read: buffered from then on
};

// Opens `path` read-only and describes it (shared by FileReader and callers
// that need the fd for other work). Same refusals as FileReader::open.
SourceInfo describe_fd(int fd, const std::string& path);

}  // namespace blocksmith
