#include "core/sinks/rbd_sink.h"

#include <algorithm>
#include <cstring>

#include "core/base/error.h"

namespace blocksmith::rbd {

RbdSink::RbdSink(rbd_image_t image, const Target& target, uint64_t write_size, unsigned parallel)
    : image_(image), target_(target), write_size_(write_size), free_(std::max(1u, parallel)) {
  for (unsigned i = 0; i < std::max(1u, parallel); ++i) {
    auto s = std::make_unique<Slot>();
    s->owner = this;
    s->buf = std::make_unique<AlignedBuffer>(write_size_);
    free_.push(s.get());
    slots_.push_back(std::move(s));
  }
}

RbdSink::~RbdSink() { drain_quietly(); }

void RbdSink::on_complete(rbd_completion_t c, void* arg) {
  // librbd's thread: record, release, hand back. Nothing else.
  auto* slot = static_cast<Slot*>(arg);
  RbdSink* self = slot->owner;
  ssize_t r = api().rbd_aio_get_return_value(c);
  api().rbd_aio_release(c);
  if (r >= 0) {
    self->acknowledged_.fetch_add(1);
  } else {
    std::lock_guard lock(self->error_mu_);
    if (self->first_error_ == 0) {
      self->first_error_ = static_cast<int>(r);
      self->first_error_off_ = slot->off;
    }
  }
  self->free_.push(slot);
}

void RbdSink::check_error() {
  int err;
  uint64_t off;
  {
    std::lock_guard lock(error_mu_);
    err = first_error_;
    off = first_error_off_;
  }
  if (err < 0) {
    throw_rbd(err, "rbd_aio_write", target_, "writing to " + target_.spec() + " at byte " + std::to_string(off) + " failed",
              acknowledged_.load() > 0);
  }
}

RbdSink::Slot* RbdSink::take_slot() {
  // Blocks until a write completes when all slots are in flight.
  Slot* s = *free_.pop();
  try {
    check_error();
  } catch (...) {
    free_.push(s);
    throw;
  }
  return s;
}

void RbdSink::on_data(uint64_t off, const uint8_t* bytes, size_t len) {
  while (len > 0) {
    // Extend the pending write only when contiguous and in the same
    // write_size-aligned piece (so in the same object).
    if (pending_ && pending_->off + pending_->len != off) submit();
    if (!pending_) {
      pending_ = take_slot();
      pending_->off = off;
      pending_->len = 0;
    }
    size_t room = static_cast<size_t>(write_size_ - (off % write_size_));
    size_t n = std::min(len, room);
    std::memcpy(pending_->buf->data() + pending_->len, bytes, n);
    pending_->len += n;
    off += n;
    bytes += n;
    len -= n;
    if (off % write_size_ == 0) submit();  // the piece is complete
  }
}

void RbdSink::submit() {
  if (!pending_) return;
  Slot* s = pending_;
  pending_ = nullptr;
  if (s->len == 0) {
    free_.push(s);
    return;
  }
  rbd_completion_t c = nullptr;
  int r = api().rbd_aio_create_completion(s, &RbdSink::on_complete, &c);
  if (r < 0) {
    free_.push(s);
    throw_rbd(r, "rbd_aio_create_completion", target_, "cannot start a write");
  }
  r = api().rbd_aio_write2(image_, s->off, s->len, reinterpret_cast<const char*>(s->buf->data()), c,
                           kFadviseSequential | kFadviseNocache);
  if (r < 0) {
    api().rbd_aio_release(c);
    free_.push(s);
    throw_rbd(r, "rbd_aio_write2", target_, "cannot start a write at byte " + std::to_string(s->off));
  }
  ++writes_;
  written_ += s->len;
}

void RbdSink::drain() {
  submit();
  // Collect every slot back: then nothing is in flight.
  std::vector<Slot*> back;
  for (size_t i = 0; i < slots_.size(); ++i) back.push_back(*free_.pop());
  for (Slot* s : back) free_.push(s);
  check_error();
}

void RbdSink::drain_quietly() noexcept {
  try {
    if (pending_) {
      free_.push(pending_);
      pending_ = nullptr;
    }
    std::vector<Slot*> back;
    for (size_t i = 0; i < slots_.size(); ++i) back.push_back(*free_.pop());
    for (Slot* s : back) free_.push(s);
  } catch (...) {
  }
}

}  // namespace blocksmith::rbd
