#include "core/sinks/punch_sink.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cerrno>

#include "core/base/error.h"
#include "core/host/lease_guard.h"

namespace blocksmith {

PunchSink::~PunchSink() { stop_thread(false); }

void PunchSink::on_hole(uint64_t off, uint64_t len) {
  // Extend a pending zero run across a hole (punching a hole again is free);
  // a hole never starts a run on its own.
  if (pending_ && run_off_ + run_len_ == off) add_piece(off, len, false);
}

void PunchSink::on_zero(uint64_t off, uint64_t len) {
  rethrow_if_failed();
  stats_.zero_bytes += len;
  if (!pending_ || run_off_ + run_len_ != off) {
    flush();
    pending_ = true;
    run_off_ = off;
    run_len_ = 0;
    run_allocated_ = 0;
    head_.clear();
    tail_.clear();
  }
  add_piece(off, len, true);
  pending_has_zero_ = true;
}

void PunchSink::add_piece(uint64_t off, uint64_t len, bool allocated) {
  run_len_ += len;
  if (allocated) run_allocated_ += len;
  if (off < run_off_ + align_) head_.push_back({off, len, allocated});
  tail_.push_back({off, len, allocated});
  const uint64_t run_end = run_off_ + run_len_;
  while (tail_.size() > 1 && tail_.front().off + tail_.front().len + align_ <= run_end) tail_.pop_front();
}

template <typename It>
uint64_t PunchSink::allocated_in(It first, It last, uint64_t begin, uint64_t end) {
  uint64_t n = 0;
  for (It p = first; p != last; ++p) {
    if (!p->allocated) continue;
    const uint64_t b = std::max(begin, p->off), e = std::min(end, p->off + p->len);
    if (e > b) n += e - b;
  }
  return n;
}

void PunchSink::on_data(uint64_t, const uint8_t*, size_t) {
  rethrow_if_failed();
  flush();
}

void PunchSink::on_end(uint64_t size) {
  eof_ = size;
  flush();
  stop_thread(true);
  if (error_) std::rethrow_exception(error_);
}

void PunchSink::rethrow_if_failed() {
  if (!failed_.load(std::memory_order_acquire)) return;
  std::lock_guard lock(mu_);
  std::rethrow_exception(error_);
}

void PunchSink::enqueue(Range r) {
  std::unique_lock lock(mu_);
  if (!thread_.joinable()) thread_ = std::thread(&PunchSink::punch_loop, this);
  cv_.wait(lock, [&] { return error_ || (queue_.size() < kMaxQueued && !too_far_ahead(r)); });
  if (error_) std::rethrow_exception(error_);
  queue_.push_back(r);
  cv_.notify_all();
}

bool PunchSink::too_far_ahead(const Range& next) const {
  // Ranges are queued in ascending order: the oldest unfinished one is the
  // one being punched, else the queue's front.
  if (running_) return next.begin > running_end_ + kMaxLag;
  if (!queue_.empty()) return next.begin > queue_.front().end + kMaxLag;
  return false;
}

void PunchSink::punch_loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return abandon_ || closing_ || !queue_.empty(); });
    if (abandon_ || queue_.empty()) return;  // queue_ empty here means closing
    Range r = queue_.front();
    queue_.pop_front();
    running_ = true;
    running_end_ = r.end;
    lock.unlock();
    std::exception_ptr err;
    try {
      if (guard_) {
        guard_->run_held([&] { fallocate_range(r); });
      } else {
        fallocate_range(r);
      }
    } catch (...) {
      err = std::current_exception();
    }
    lock.lock();
    running_ = false;
    cv_.notify_all();  // room in the queue, and the scan may go further
    if (err) {
      error_ = err;
      failed_.store(true, std::memory_order_release);
      queue_.clear();
      cv_.notify_all();
      return;
    }
  }
}

void PunchSink::stop_thread(bool drain) {
  {
    std::lock_guard lock(mu_);
    closing_ = true;
    if (!drain) abandon_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void PunchSink::flush() {
  if (pending_ && pending_has_zero_) punch(run_off_, run_len_);
  pending_ = false;
  pending_has_zero_ = false;
}

void PunchSink::punch(uint64_t off, uint64_t len) {
  uint64_t begin = (off + align_ - 1) / align_ * align_;
  uint64_t end = (off + len) / align_ * align_;
  // A zero run that reaches the end of a regular file may free its partial
  // last block too: with KEEP_SIZE, punching past EOF changes nothing visible.
  if (!is_block_device_ && eof_ != 0 && off + len == eof_) end = (off + len + align_ - 1) / align_ * align_;
  if (end <= begin) return;
  ++stats_.punch_calls;
  stats_.punched_bytes += (eof_ != 0 && end > eof_ ? eof_ : end) - begin;
  // What this punch frees: the run's allocated bytes but those in the
  // slivers left out at either end.
  const uint64_t run_end = off + len;
  uint64_t kept = allocated_in(head_.begin(), head_.end(), off, begin);
  if (end < run_end) kept += allocated_in(tail_.begin(), tail_.end(), end, run_end);
  stats_.reclaimed_bytes += run_allocated_ - std::min(kept, run_allocated_);
  if (dry_run_) return;
  enqueue(Range{begin, end});
}

void PunchSink::fallocate_range(Range r) const {
  const uint64_t begin = r.begin, end = r.end;
  for (;;) {
    if (::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(begin),
                    static_cast<off_t>(end - begin)) == 0) {
      return;
    }
    int err = errno;
    if (err == EINTR) continue;
    if (err == EOPNOTSUPP) {
      throw Error(err, errno_name(err), "fallocate", path_,
                  is_block_device_
                      ? "'" + path_ + "' cannot punch holes (the device does not support discard or write-zeroes that read back as zeros); nothing was changed there"
                      : "the filesystem holding '" + path_ + "' does not support punching holes; the file is unchanged");
    }
    int ro = 0;
    if (is_block_device_ && (err == EPERM || err == EROFS || err == EACCES) && ::ioctl(fd_, BLKROGET, &ro) == 0 && ro) {
      throw Error(EROFS, "EROFS", "fallocate", path_,
                  "'" + path_ + "' is a read-only block device; discarding at byte " + std::to_string(begin) +
                      " was refused (content unchanged)");
    }
    throw_sys(err, "fallocate", path_,
              "punching a hole in '" + path_ + "' at byte " + std::to_string(begin) + " (" +
                  std::to_string(end - begin) + " bytes) failed");
  }
}

}  // namespace blocksmith
