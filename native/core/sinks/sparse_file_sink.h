// Sink that writes a sparse copy: data blocks are written, zero blocks and
// holes are left as holes, the size is set exactly. The copy lives in an
// unnamed file (O_TMPFILE) in the target's directory and gets its name only
// when complete, so an interrupted or failed copy (even SIGKILL) never
// leaves a half file under the target's name.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/base/aligned_buffer.h"
#include "core/pipeline/channel.h"

#include "core/pipeline/scan_pipeline.h"
#include "core/base/unique_fd.h"

namespace blocksmith {

// A file the copy must never replace: a source (st_dev, st_ino).
struct FileId {
  dev_t dev = 0;
  ino_t ino = 0;
  std::string path;                // for the message
  std::string role = "the source";  // "the source", "a backing file of the source"
};

// The rule for a copy's target (the same as src/output/output-file.ts for the CLIs'
// other files), checked before anything is created: never a block or
// character device or any other non-regular file, never one of `protect`
// (the source and its backing files, also through a symlink or a hard link),
// never a symbolic link (root writes into directories others can write to),
// never an existing file without `overwrite`. Throws blocksmith::Error
// (EINVAL, EISDIR, ELOOP, EEXIST); creates nothing.
void check_copy_target(const std::string& target, bool overwrite, const std::vector<FileId>& protect);

// Creates `path` for writing with O_CREAT|O_EXCL|O_NOFOLLOW: whatever is
// already at the name (a file, a device node, a planted symbolic link, even a
// dangling one) is never opened. Returns the fd, or -1 with errno (EEXIST).
int create_exclusive(const std::string& path, mode_t mode);

// The FileId of `path` (following symlinks); nullopt when it cannot be stat'ed.
std::optional<FileId> file_id(const std::string& path);

// The data goes through a few large buffers to writer threads, so reading
// the source never waits for the disk to take a write (the copy was read,
// then written, in turns: 0.95x cp). Runs of at least kDirectMin bytes on the
// 4 KiB grid are written with O_DIRECT after fallocate of their range (each
// writer then takes ext4's inode lock shared, and neither the page-cache copy
// nor the kernel's writeback runs on our two CPUs: buffered writeback of a
// fresh file was measured at 195-250 MB/s here, O_DIRECT 4 MiB writes at
// 530-690 MB/s); shorter or unaligned runs are written through the page cache
// with the write-behind window, as before. Nothing is ever written where the
// source has holes or zero blocks, so the allocation is the data's; the
// direct runs are allocated in file order (allocate_in_order), so the extent
// tree is no larger than that of a copy written front to back (cp's).
class SparseFileSink final : public Sink {
 public:
  // Applies check_copy_target first, so a refused target creates nothing.
  SparseFileSink(std::string target, bool overwrite, std::vector<FileId> protect = {});
  ~SparseFileSink() override;

  // The size the copy will have (the source's), set up front so that the
  // direct writes never extend the file (extending writes take ext4's inode
  // lock exclusively). on_end still sets the exact size.
  void expect_size(uint64_t size);

  void on_hole(uint64_t, uint64_t) override { end_run(); }
  void on_zero(uint64_t, uint64_t) override { end_run(); }
  void on_data(uint64_t off, const uint8_t* bytes, size_t len) override;
  void on_end(uint64_t size) override;

  // Flushes to disk and gives the file its name. Call after run_scan.
  void commit();

  uint64_t data_bytes_written() const { return written_; }
  uint64_t allocated_bytes() const;  // of the copy, after commit
  uint64_t direct_bytes() const { return direct_bytes_; }  // of them, written with O_DIRECT

 private:
  // One contiguous range of the copy, at `pos` in a batch's buffer.
  struct Segment {
    uint64_t off;
    size_t len;
    size_t pos;
  };
  // What a writer thread writes at once: up to kBatch bytes of data runs.
  struct Batch {
    explicit Batch(size_t size) : buf(size) {}
    AlignedBuffer buf;
    size_t used = 0;
    uint64_t seq = 0;  // submission order: the order its direct runs are allocated in
    std::vector<Segment> segments;
  };

  void start_writers();
  void stop_writers() noexcept;
  void writer_loop();
  // Runs step() when it is batch `seq`'s turn on `turn` (batches take turns
  // in the order they were filled), then passes the turn on; returns at once
  // when the writers are stopping.
  template <typename Step>
  void in_turn(uint64_t& turn, uint64_t seq, Step step);
  void allocate_in_order(Batch& b, bool run);
  bool direct_eligible(const Segment& s);
  uint64_t write_batch(Batch& b);
  void write_behind_in_order(Batch& b, uint64_t buffered_end);
  void write_buffered(const uint8_t* p, size_t len, uint64_t off);
  bool write_direct(const uint8_t* p, size_t len, uint64_t off);
  void end_run() { run_open_ = false; }
  void submit();
  void fail(int err, const char* syscall, uint64_t off) noexcept;
  void throw_if_failed();
  void post_dirty(uint64_t written_to);
  void flusher_loop();

  static constexpr size_t kMaxWrite = 256 << 10;   // bytes per buffered pwrite
  static constexpr uint64_t kWindow = 64 << 20;    // writeback started every kWindow of buffered writes
  static constexpr uint64_t kMaxDirty = 256 << 20;  // writers wait when more is written and not yet started
  static constexpr size_t kBatch = 8 << 20;        // bytes per batch
  static constexpr size_t kBatches = 4;            // batches (32 MiB): one filling, the rest queued or written
  static constexpr size_t kWriters = 2;            // direct writes in flight
  static constexpr size_t kDirectMin = 64 << 10;   // shorter runs go through the page cache
  static constexpr size_t kAlign = 4096;           // direct writes: offset, length and memory

  std::string target_;
  std::string dir_;
  bool overwrite_;
  std::vector<FileId> protect_;
  UniqueFd fd_;
  UniqueFd direct_fd_;     // the same file with O_DIRECT; empty: every write buffered
  std::string temp_name_;  // only when O_TMPFILE is not available
  uint64_t written_ = 0;
  uint64_t direct_bytes_ = 0;
  uint64_t size_ = 0;
  bool ended_ = false;
  bool committed_ = false;

  // The batch being filled (on the delivering thread) and the writers.
  std::vector<std::unique_ptr<Batch>> batches_;
  Channel<Batch*> free_{kBatches};
  Channel<Batch*> full_{kBatches};
  Batch* filling_ = nullptr;
  bool run_open_ = false;  // the last segment may grow (no hole or zero block since)
  uint64_t next_seq_ = 0;  // the next batch's seq (delivering thread)
  std::vector<std::thread> writers_;
  // Writer state (under mu_): the first error, buffered write-behind.
  std::mutex mu_;
  bool stopping_ = false;
  bool direct_refused_ = false;  // EINVAL from a direct write: the rest goes buffered
  int error_ = 0;
  const char* error_syscall_ = "";
  uint64_t error_off_ = 0;
  size_t busy_ = 0;          // batches taken and not yet given back
  std::condition_variable idle_;
  uint64_t alloc_turn_ = 0;  // the seq of the batch whose runs are allocated next
  uint64_t behind_turn_ = 0;  // the seq of the batch whose write-behind comes next
  std::condition_variable turn_;
  // The flusher thread's state (under behind_mu_).
  std::thread flusher_;
  std::mutex behind_mu_;
  std::condition_variable behind_cv_;
  bool flusher_stop_ = false;
  uint64_t dirty_to_ = 0;      // buffered runs written (in file order) up to here
  uint64_t started_to_ = 0;    // writeback started for [0, started_to_)
};

}  // namespace blocksmith
