// What a long operation shares with its caller: a cancel flag it polls, and
// progress counters it updates. The core never knows who is listening; the
// binding installs `on_progress`, which the core calls at most every
// `progress_interval` from its own thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>

#include "core/base/error.h"

namespace blocksmith {

class Control {
 public:
  using Clock = std::chrono::steady_clock;

  void cancel() noexcept { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancelled() const noexcept { return cancelled_.load(std::memory_order_relaxed); }
  void throw_if_cancelled() const {
    if (cancelled()) throw Cancelled();
  }

  void set_total(uint64_t total) noexcept { total_.store(total, std::memory_order_relaxed); }
  void set_done(uint64_t done) noexcept { done_.store(done, std::memory_order_relaxed); }
  uint64_t done() const noexcept { return done_.load(std::memory_order_relaxed); }
  uint64_t total() const noexcept { return total_.load(std::memory_order_relaxed); }

  // Called by the worker after each unit of work; rate-limited report.
  void tick(bool force = false) {
    if (!on_progress) return;
    auto now = Clock::now();
    if (force || now - last_report_ >= progress_interval) {
      last_report_ = now;
      on_progress(done(), total());
    }
  }

  std::function<void(uint64_t done, uint64_t total)> on_progress;
  std::chrono::milliseconds progress_interval{100};

 private:
  std::atomic<bool> cancelled_{false};
  std::atomic<uint64_t> done_{0};
  std::atomic<uint64_t> total_{0};
  Clock::time_point last_report_{};
};

}  // namespace blocksmith
