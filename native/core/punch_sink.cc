#include "punch_sink.h"

#include <fcntl.h>
#include <linux/falloc.h>

#include <cerrno>

#include "error.h"

namespace blocksmith {

void PunchSink::on_hole(uint64_t off, uint64_t len) {
  // Extend a pending zero run across a hole (punching a hole again is free);
  // a hole never starts a run on its own.
  if (pending_ && run_off_ + run_len_ == off) run_len_ += len;
}

void PunchSink::on_zero(uint64_t off, uint64_t len) {
  stats_.zero_bytes += len;
  if (pending_ && run_off_ + run_len_ == off) {
    run_len_ += len;
  } else {
    flush();
    pending_ = true;
    run_off_ = off;
    run_len_ = len;
  }
  pending_has_zero_ = true;
}

void PunchSink::on_data(uint64_t, const uint8_t*, size_t) { flush(); }

void PunchSink::on_end(uint64_t size) {
  eof_ = size;
  flush();
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
  if (dry_run_) return;
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
    throw_sys(err, "fallocate", path_,
              "punching a hole in '" + path_ + "' at byte " + std::to_string(begin) + " (" +
                  std::to_string(end - begin) + " bytes) failed");
  }
}

}  // namespace blocksmith
