// Backpressure from a JS consumer to a job thread: when the callback that
// took an event returns a promise (its output is full: a pipe that a slower
// reader drains), the job waits before its next event until the promise
// settles, so nothing piles up in memory on either side. A cancelled job
// stops waiting.
#pragma once

#include <napi.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>

#include "core/pipeline/control.h"

namespace binding {

class ConsumerGate : public std::enable_shared_from_this<ConsumerGate> {
 public:
  // On the JS thread, with what the callback returned.
  void hold_until_settled(Napi::Env env, Napi::Value returned) {
    if (!returned.IsPromise()) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      held_ = true;
    }
    auto self = shared_from_this();
    auto release = Napi::Function::New(env, [self](const Napi::CallbackInfo&) { self->release(); }, "release");
    Napi::Object promise = returned.As<Napi::Object>();
    promise.Get("then").As<Napi::Function>().Call(promise, {release, release});
  }

  // On the job thread, before the next event.
  void wait(const blocksmith::Control& control) {
    std::unique_lock<std::mutex> lock(mu_);
    while (held_ && !control.cancelled()) cv_.wait_for(lock, std::chrono::milliseconds(50));
  }

 private:
  void release() {
    std::lock_guard<std::mutex> lock(mu_);
    held_ = false;
    cv_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;
};

}  // namespace binding
