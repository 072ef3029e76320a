#include "core/sinks/sparse_file_sink.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include "core/base/error.h"

namespace blocksmith {
namespace {

std::string dirname_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string basename_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

mode_t default_mode() {
  mode_t mask = ::umask(0);
  ::umask(mask);
  return 0666 & ~mask;
}

}  // namespace

int create_exclusive(const std::string& path, mode_t mode) {
  return ::open(path.c_str(), O_CREAT | O_EXCL | O_NOFOLLOW | O_RDWR | O_CLOEXEC, mode);
}

std::optional<FileId> file_id(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return FileId{st.st_dev, st.st_ino, path, "the source"};
}

void check_copy_target(const std::string& target, bool overwrite, const std::vector<FileId>& protect) {
  struct stat lst {};
  if (::lstat(target.c_str(), &lst) != 0) {
    if (errno == ENOENT) return;  // a new name; linkat/link refuse one that appears meanwhile
    throw_sys(errno, "lstat", target, "cannot create the copy '" + target + "'");
  }
  const bool link = S_ISLNK(lst.st_mode);
  const std::string via = link ? " (through a symbolic link)" : "";
  // What the name leads to: a device or a source is the message that matters.
  struct stat st {};
  if (::stat(target.c_str(), &st) == 0) {
    const char* kind = S_ISBLK(st.st_mode) ? "a block device" : S_ISCHR(st.st_mode) ? "a character device" : nullptr;
    if (kind) {
      throw Error(EINVAL, "EINVAL", "open", target,
                  "refusing to write the copy to '" + target + "': it is " + kind + via + "; a copy is never written onto a device");
    }
    for (const FileId& id : protect) {
      if (id.dev == st.st_dev && id.ino == st.st_ino) {
        throw Error(EINVAL, "EINVAL", "open", target, "refusing to write the copy to '" + target + "': it is " + id.role + " '" + id.path + "'" + via);
      }
    }
  }
  if (link) {
    throw Error(overwrite ? ELOOP : EEXIST, overwrite ? "ELOOP" : "EEXIST", "open", target,
                "refusing to write the copy to '" + target + "': it is a symbolic link (not followed, not replaced)");
  }
  if (S_ISDIR(lst.st_mode)) throw Error(EISDIR, "EISDIR", "open", target, "target '" + target + "' is a directory");
  if (!S_ISREG(lst.st_mode)) {
    throw Error(EINVAL, "EINVAL", "open", target, "target '" + target + "' exists and is not a regular file");
  }
  if (!overwrite) throw Error(EEXIST, "EEXIST", "open", target, "target '" + target + "' exists (use --overwrite to replace it)");
}

SparseFileSink::SparseFileSink(std::string target, bool overwrite, std::vector<FileId> protect)
    : target_(std::move(target)), dir_(dirname_of(target_)), overwrite_(overwrite), protect_(std::move(protect)) {
  // A write past RLIMIT_FSIZE must fail with EFBIG, not kill the process.
  struct sigaction old {};
  if (::sigaction(SIGXFSZ, nullptr, &old) == 0 && old.sa_handler == SIG_DFL) ::signal(SIGXFSZ, SIG_IGN);

  check_copy_target(target_, overwrite_, protect_);
  int fd = ::open(dir_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, default_mode());
  if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
    // Filesystem without O_TMPFILE: a hidden temporary name, removed on failure.
    std::random_device rd;
    for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
      temp_name_ = dir_ + "/." + basename_of(target_) + ".blocksmith-" + std::to_string(rd());
      fd = create_exclusive(temp_name_, default_mode());
      if (fd < 0 && errno != EEXIST) break;
    }
  }
  if (fd < 0) {
    temp_name_.clear();
    throw_sys(errno, "open", target_, "cannot create the copy in '" + dir_ + "'");
  }
  fd_.reset(fd);
  // The same file again, by its fd, for the direct writes (refused on a
  // filesystem without O_DIRECT: every write then goes through the cache).
  const std::string self = "/proc/self/fd/" + std::to_string(fd_.get());
  direct_fd_.reset(::open(self.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC));
  start_writers();
}

SparseFileSink::~SparseFileSink() {
  stop_writers();
  if (!committed_ && !temp_name_.empty()) ::unlink(temp_name_.c_str());
}

void SparseFileSink::expect_size(uint64_t size) {
  // Only a hint: commit() sets the exact size either way.
  if (direct_fd_) (void)::ftruncate(fd_.get(), static_cast<off_t>(size));
}

void SparseFileSink::start_writers() {
  for (size_t i = 0; i < kBatches; ++i) {
    batches_.push_back(std::make_unique<Batch>(kBatch));
    free_.push(batches_.back().get());
  }
  for (size_t i = 0; i < kWriters; ++i) writers_.emplace_back([this] { writer_loop(); });
  flusher_ = std::thread([this] { flusher_loop(); });
}

void SparseFileSink::stop_writers() noexcept {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    turn_.notify_all();
  }
  full_.close();
  free_.close();
  for (auto& t : writers_) t.join();
  writers_.clear();
  {
    std::lock_guard lock(behind_mu_);
    flusher_stop_ = true;
    behind_cv_.notify_all();
  }
  if (flusher_.joinable()) flusher_.join();
}

// Data runs are gathered into the batch being filled: a run that continues
// the last segment (no hole or zero block between) extends it, any other
// starts a new segment at the next 4 KiB boundary of the buffer (so a direct
// write's memory is aligned too).
void SparseFileSink::on_data(uint64_t off, const uint8_t* bytes, size_t len) {
  throw_if_failed();
  while (len > 0) {
    if (!filling_) {
      auto b = free_.pop();
      if (!b) throw_if_failed();
      if (!b) throw Error(EINVAL, "EINVAL", "", target_, "internal: the copy's writers stopped");
      filling_ = *b;
      filling_->used = 0;
      filling_->segments.clear();
      run_open_ = false;
    }
    Batch& f = *filling_;
    Segment* last = f.segments.empty() ? nullptr : &f.segments.back();
    const bool extend = run_open_ && last && last->off + last->len == off;
    size_t pos = extend ? f.used : (f.used + kAlign - 1) / kAlign * kAlign;
    if (pos >= f.buf.size()) {
      submit();
      continue;
    }
    size_t n = std::min(len, f.buf.size() - pos);
    std::memcpy(f.buf.data() + pos, bytes, n);
    if (extend) {
      last->len += n;
    } else {
      f.segments.push_back({off, n, pos});
    }
    f.used = pos + n;
    run_open_ = true;
    written_ += n;
    off += n;
    bytes += n;
    len -= n;
    if (f.used == f.buf.size()) submit();
  }
}

void SparseFileSink::submit() {
  if (!filling_) return;
  Batch* b = filling_;
  filling_ = nullptr;
  run_open_ = false;
  b->seq = next_seq_++;
  {
    std::lock_guard lock(mu_);
    ++busy_;
  }
  if (!full_.push(b)) {
    std::lock_guard lock(mu_);
    --busy_;
  }
}

void SparseFileSink::writer_loop() {
  for (;;) {
    auto b = full_.pop();
    if (!b) return;
    bool skip;
    {
      std::lock_guard lock(mu_);
      skip = error_ != 0 || stopping_;
    }
    allocate_in_order(**b, !skip);
    uint64_t buffered_end = skip ? 0 : write_batch(**b);
    write_behind_in_order(**b, buffered_end);
    free_.push(*b);
    std::lock_guard lock(mu_);
    --busy_;
    idle_.notify_all();
  }
}

bool SparseFileSink::direct_eligible(const Segment& s) {
  if (!direct_fd_ || s.len < kDirectMin || s.off % kAlign != 0 || s.len % kAlign != 0) return false;
  std::lock_guard lock(mu_);
  return !direct_refused_;
}

// The runs to be written O_DIRECT are allocated (fallocate) batch after
// batch in file order, even though the two writers write them at once: an
// extent inserted before extents already in ext4's tree splits a full leaf
// in the middle and leaves two half-full leaves, so allocating out of order
// cost 90-100 KiB of extra extent-tree blocks on the 8 GiB mix (cp's copy,
// written in order, had none). fallocate only changes metadata, so the
// writers wait for each other here for microseconds, not for the disk.
// Allocated first, the write then only converts unwritten extents and runs
// beside the other writer's (ext4 takes the inode lock shared for an
// aligned write that allocates nothing). ENOSPC is reported as fallocate's.
template <typename Step>
void SparseFileSink::in_turn(uint64_t& turn, uint64_t seq, Step step) {
  {
    std::unique_lock lock(mu_);
    turn_.wait(lock, [&] { return turn == seq || stopping_; });
    if (stopping_) return;  // nothing more is written
  }
  step();
  std::lock_guard lock(mu_);
  ++turn;
  turn_.notify_all();
}

void SparseFileSink::allocate_in_order(Batch& b, bool run) {
  in_turn(alloc_turn_, b.seq, [&] {
    {
      std::lock_guard lock(mu_);
      if (!run || error_ != 0) return;
    }
    for (const Segment& s : b.segments) {
      if (!direct_eligible(s)) continue;
      if (::fallocate(fd_.get(), FALLOC_FL_KEEP_SIZE, static_cast<off_t>(s.off), static_cast<off_t>(s.len)) != 0) {
        int err = errno;
        if (err == EOPNOTSUPP || err == ENOSYS || err == EINVAL) break;  // the writes allocate, as without it
        fail(err, "fallocate", s.off);
        break;
      }
    }
  });
}

// The buffered runs get their blocks when the kernel writes them back
// (delayed allocation), so their writeback is started in file order too:
// a batch's write-behind waits until the batches before it have written
// theirs, so that no range is written back while an earlier one still gets
// its pages (which would insert extents before others: leaf splits, one
// more extent-tree block on the mix than cp's copy).
void SparseFileSink::write_behind_in_order(Batch& b, uint64_t buffered_end) {
  in_turn(behind_turn_, b.seq, [&] {
    if (buffered_end) post_dirty(buffered_end);
  });
}

// Returns the end of the last run written buffered (0: none).
uint64_t SparseFileSink::write_batch(Batch& b) {
  {
    std::lock_guard lock(mu_);
    if (error_) return 0;  // e.g. ENOSPC from allocate_in_order
  }
  uint64_t buffered_end = 0;
  for (const Segment& s : b.segments) {
    const uint8_t* p = b.buf.data() + s.pos;
    if (!direct_eligible(s) || !write_direct(p, s.len, s.off)) {
      {
        std::lock_guard lock(mu_);
        if (error_) return 0;
      }
      write_buffered(p, s.len, s.off);
      buffered_end = std::max<uint64_t>(buffered_end, s.off + s.len);
    }
  }
  return buffered_end;
}

// True when written; false when the kernel refused O_DIRECT here (EINVAL:
// the segment is then written buffered, and so is everything after).
bool SparseFileSink::write_direct(const uint8_t* p, size_t len, uint64_t off) {
  // Allocated already (allocate_in_order).
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pwrite(direct_fd_.get(), p + done, len - done, static_cast<off_t>(off + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EINVAL && done == 0) {
        std::lock_guard lock(mu_);
        direct_refused_ = true;
        return false;
      }
      fail(errno, "write", off + done);
      return false;
    }
    if (n == 0) {
      fail(EIO, "write", off + done);
      return false;
    }
    done += static_cast<size_t>(n);
  }
  std::lock_guard lock(mu_);
  direct_bytes_ += len;
  return true;
}

void SparseFileSink::write_buffered(const uint8_t* p, size_t len, uint64_t off) {
  size_t done = 0;
  while (done < len) {
    // At most 256 KiB per call: writing the same data in 4 MiB pwrites was
    // measured 14x slower here (bench/results/sparsify-floors.json,
    // pageCacheWriteByPwriteSize).
    size_t piece = std::min(len - done, kMaxWrite);
    ssize_t n = ::pwrite(fd_.get(), p + done, piece, static_cast<off_t>(off + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(errno, "write", off + done);
      return;
    }
    done += static_cast<size_t>(n);
  }
}

void SparseFileSink::fail(int err, const char* syscall, uint64_t off) noexcept {
  std::lock_guard lock(mu_);
  if (error_) return;
  error_ = err;
  error_syscall_ = syscall;
  error_off_ = off;
}

void SparseFileSink::throw_if_failed() {
  int err;
  const char* syscall;
  uint64_t off;
  {
    std::lock_guard lock(mu_);
    err = error_;
    syscall = error_syscall_;
    off = error_off_;
  }
  if (!err) return;
  if (std::strcmp(syscall, "sync_file_range") == 0) throw_sys(err, syscall, target_, "writing the copy '" + target_ + "' failed");
  throw_sys(err, syscall, target_, "writing the copy '" + target_ + "' at byte " + std::to_string(off) + " failed");
}

// Write-behind for the buffered runs, on a thread of its own: it starts
// writeback of each kWindow of them as soon as they are written and then
// waits for the window before, so the disk writes while the source is still
// being read and the final fdatasync only covers the tail. Starting
// writeback blocks for as long as the disk's queue is full (0.1-0.5 s per
// 64 MiB of 4 KiB runs on the mix), which in the writers' own threads held
// their batches and so the reader; now a writer only waits when more than
// kMaxDirty is written and not yet started, so the page cache holds at most
// about twice that of the copy. Posted in batch order
// (write_behind_in_order): every page before written_to is dirty by then.
void SparseFileSink::post_dirty(uint64_t written_to) {
  std::unique_lock lock(behind_mu_);
  dirty_to_ = std::max(dirty_to_, written_to);
  behind_cv_.notify_all();
  behind_cv_.wait(lock, [&] { return flusher_stop_ || dirty_to_ <= started_to_ + kMaxDirty; });
}

void SparseFileSink::flusher_loop() {
  uint64_t waited_to = 0;  // writeback finished for [0, waited_to)
  std::unique_lock lock(behind_mu_);
  for (;;) {
    behind_cv_.wait(lock, [&] { return flusher_stop_ || dirty_to_ >= started_to_ + kWindow; });
    if (flusher_stop_) return;  // the rest is fdatasync's
    const uint64_t from = started_to_, to = dirty_to_;
    lock.unlock();
    // Only a hint: fdatasync in commit() still does all of it.
    if (::sync_file_range(fd_.get(), static_cast<off_t>(from), static_cast<off_t>(to - from), SYNC_FILE_RANGE_WRITE) == 0 &&
        from > waited_to) {
      // The windows before: wait until they are on the disk (also surfaces EIO/ENOSPC early).
      if (::sync_file_range(fd_.get(), static_cast<off_t>(waited_to), static_cast<off_t>(from - waited_to),
                            SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER) != 0) {
        int err = errno;
        if (err != EINVAL && err != ESPIPE && err != ENOSYS) fail(err, "sync_file_range", waited_to);
      }
      waited_to = from;
    }
    lock.lock();
    started_to_ = to;
    behind_cv_.notify_all();
  }
}

void SparseFileSink::on_end(uint64_t size) {
  submit();
  size_ = size;
  ended_ = true;
}

void SparseFileSink::commit() {
  if (!ended_) throw Error(EINVAL, "EINVAL", "", target_, "internal: commit before the copy ended");
  {
    std::unique_lock lock(mu_);
    idle_.wait(lock, [&] { return busy_ == 0; });
  }
  stop_writers();
  throw_if_failed();
  if (::ftruncate(fd_.get(), static_cast<off_t>(size_)) != 0) {
    throw_sys(errno, "ftruncate", target_, "setting the size of the copy '" + target_ + "' failed");
  }
  if (::fdatasync(fd_.get()) != 0) throw_sys(errno, "fdatasync", target_, "flushing the copy '" + target_ + "' failed");
  // The target may have changed during the copy (minutes): check it again
  // right before it gets its name.
  check_copy_target(target_, overwrite_, protect_);

  if (temp_name_.empty()) {
    // Give the unnamed file a name. Without --overwrite, linkat itself refuses
    // an existing target (EEXIST), so a file that appeared meanwhile is safe.
    std::string proc = "/proc/self/fd/" + std::to_string(fd_.get());
    if (!overwrite_) {
      if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, target_.c_str(), AT_SYMLINK_FOLLOW) != 0) {
        int err = errno;
        if (err == EEXIST) throw Error(EEXIST, "EEXIST", "link", target_, "target '" + target_ + "' exists (use --overwrite to replace it)");
        throw_sys(err, "link", target_, "naming the copy '" + target_ + "' failed");
      }
    } else {
      std::random_device rd;
      std::string tmp = dir_ + "/." + basename_of(target_) + ".blocksmith-" + std::to_string(rd());
      if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, tmp.c_str(), AT_SYMLINK_FOLLOW) != 0) {
        throw_sys(errno, "link", target_, "naming the copy '" + target_ + "' failed");
      }
      if (::rename(tmp.c_str(), target_.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        throw_sys(err, "rename", target_, "replacing '" + target_ + "' failed");
      }
    }
  } else {
    if (!overwrite_) {
      // No atomic no-replace rename without renameat2 on every fs: link then unlink.
      if (::link(temp_name_.c_str(), target_.c_str()) != 0) {
        throw_sys(errno, "link", target_, "naming the copy '" + target_ + "' failed");
      }
      ::unlink(temp_name_.c_str());
    } else if (::rename(temp_name_.c_str(), target_.c_str()) != 0) {
      throw_sys(errno, "rename", target_, "replacing '" + target_ + "' failed");
    }
  }
  committed_ = true;
  // Make the new name durable too.
  UniqueFd dir(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir) ::fsync(dir.get());
}

uint64_t SparseFileSink::allocated_bytes() const {
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

}  // namespace blocksmith
