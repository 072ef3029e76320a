#include "core/sinks/rbd_discard_sink.h"

#include <algorithm>

#include "core/base/error.h"

namespace blocksmith::rbd {

std::vector<DiscardRange> plan_discards(uint64_t begin, uint64_t end, const std::vector<DataRange>& own,
                                        const DiscardPlan& plan) {
  std::vector<DiscardRange> out;
  const uint64_t os = std::max<uint64_t>(plan.object_size, 1);
  const uint64_t max_len = std::max(os, plan.max_discard - plan.max_discard % os);
  end = std::min(end, plan.image_size);
  for (const auto& e : own) {
    uint64_t a = std::max(begin, e.begin);
    uint64_t b = std::min(end, e.end);
    for (uint64_t p = a; p < b;) {
      const uint64_t obj_begin = p - p % os;
      const uint64_t obj_end = std::min(obj_begin + os, plan.image_size);
      const uint64_t q = std::min(b, obj_end);
      const bool whole = p == obj_begin && q == obj_end;
      if (whole) {
        // Whole objects side by side go in one call, up to max_len.
        if (!out.empty() && out.back().whole && out.back().off + out.back().len == p && out.back().len + (q - p) <= max_len) {
          out.back().len += q - p;
        } else {
          out.push_back({p, q - p, true});
        }
      } else if (q - p >= plan.min_partial) {
        out.push_back({p, q - p, false});
      }
      p = q;
    }
  }
  return out;
}

RbdDiscardSink::RbdDiscardSink(rbd_image_t image, const Target& target, std::vector<DataRange> own,
                               const DiscardPlan& plan, unsigned parallel, bool dry_run)
    : image_(image),
      target_(target),
      own_(std::move(own)),
      plan_(plan),
      dry_run_(dry_run),
      slots_(std::max(1u, parallel)),
      free_(std::max(1u, parallel)) {
  for (auto& s : slots_) {
    s.owner = this;
    free_.push(&s);
  }
}

RbdDiscardSink::~RbdDiscardSink() {
  // After an error or a cancel upstream: what is queued was read as zeros,
  // so letting it finish is safe; nothing new is started.
  try {
    for (size_t i = 0; i < slots_.size(); ++i) free_.pop();
  } catch (...) {
  }
}

void RbdDiscardSink::on_complete(rbd_completion_t c, void* arg) {
  // librbd's thread: record, release, hand back. Nothing else.
  auto* slot = static_cast<Slot*>(arg);
  RbdDiscardSink* self = slot->owner;
  ssize_t r = api().rbd_aio_get_return_value(c);
  api().rbd_aio_release(c);
  if (r < 0) {
    std::lock_guard lock(self->error_mu_);
    if (self->first_error_ == 0) {
      self->first_error_ = static_cast<int>(r);
      self->first_error_off_ = slot->off;
    }
  }
  self->free_.push(slot);
}

void RbdDiscardSink::check_error() {
  std::lock_guard lock(error_mu_);
  if (first_error_ < 0) {
    throw_rbd(first_error_, "rbd_aio_discard", target_,
              "discarding zeros of " + target_.spec() + " at byte " + std::to_string(first_error_off_) + " failed", true);
  }
}

void RbdDiscardSink::on_zero(uint64_t off, uint64_t len) {
  if (pending_ && run_end_ == off) {
    run_end_ += len;
    return;
  }
  flush();
  pending_ = true;
  run_begin_ = off;
  run_end_ = off + len;
}

void RbdDiscardSink::flush() {
  if (!pending_) return;
  pending_ = false;
  for (const DiscardRange& d : plan_discards(run_begin_, run_end_, own_, plan_)) submit(d);
}

void RbdDiscardSink::submit(const DiscardRange& d) {
  ++stats_.discards;
  stats_.discarded_bytes += d.len;
  if (d.whole) stats_.freed_bytes += d.len;
  if (dry_run_) return;
  Slot* s = *free_.pop();  // blocks while `parallel` discards are in flight
  s->off = d.off;
  try {
    check_error();
  } catch (...) {
    free_.push(s);
    throw;
  }
  rbd_completion_t c = nullptr;
  int r = api().rbd_aio_create_completion(s, &RbdDiscardSink::on_complete, &c);
  if (r < 0) {
    free_.push(s);
    throw_rbd(r, "rbd_aio_create_completion", target_, "cannot start a discard");
  }
  r = api().rbd_aio_discard(image_, d.off, d.len, c);
  if (r < 0) {
    api().rbd_aio_release(c);
    free_.push(s);
    throw_rbd(r, "rbd_aio_discard", target_, "cannot start a discard at byte " + std::to_string(d.off));
  }
}

void RbdDiscardSink::drain() {
  std::vector<Slot*> back;
  for (size_t i = 0; i < slots_.size(); ++i) back.push_back(*free_.pop());
  for (Slot* s : back) free_.push(s);
  check_error();
}

void RbdDiscardSink::on_end(uint64_t) {
  flush();
  drain();
}

}  // namespace blocksmith::rbd
