// Events from a job thread to a JS callback (carve's files and checkpoints,
// undelete's files, map's extents): lossless and in order, through a
// thread-safe function (BlockingCall). finish() waits until every event was
// delivered, so a job settles only after its last event reached JS.
#pragma once

#include <napi.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>

namespace binding {

template <class Event>
class EventQueue {
 public:
  // Turns one event into the callback's call (on the JS thread).
  using Deliver = void (*)(Napi::Env env, Napi::Function cb, Event& ev);
  explicit EventQueue(Deliver deliver) : deliver_(deliver) {}

  // Events go to `fn` when it is a function; otherwise they are dropped.
  // max_queue > 0 bounds the events waiting for JS: post() then blocks the
  // job until JS catches up (a stream whose consumer is slower than the
  // scan keeps a constant memory); 0 never blocks.
  void start(Napi::Env env, Napi::Value fn, const char* name, size_t max_queue = 0) {
    if (!fn.IsFunction()) return;
    tsfn_ = Napi::ThreadSafeFunction::New(env, fn.As<Napi::Function>(), name, max_queue, 1);
    active_ = true;
  }
  bool active() const { return active_; }

  void post(std::unique_ptr<Event> ev) {
    if (!active_) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      pending_++;
    }
    Event* raw = ev.release();
    napi_status st = tsfn_.BlockingCall(raw, [this](Napi::Env env, Napi::Function cb, Event* e) {
      std::unique_ptr<Event> owned(e);
      if (env != nullptr && cb != nullptr) {
        try {
          deliver_(env, cb, *owned);
        } catch (...) {
        }
      }
      std::lock_guard<std::mutex> lock(mu_);
      pending_--;
      cv_.notify_all();
    });
    if (st != napi_ok) {
      delete raw;
      std::lock_guard<std::mutex> lock(mu_);
      pending_--;
    }
  }

  // Waits until every event was delivered, then lets the function go.
  void finish() {
    if (!active_) return;
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return pending_ == 0; });
    lock.unlock();
    tsfn_.Release();
    active_ = false;
  }

 private:
  Deliver deliver_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t pending_ = 0;
  Napi::ThreadSafeFunction tsfn_;
  bool active_ = false;
};

}  // namespace binding
