// A fixed set of buffers shared by threads. Last in, first out: the buffer
// handed out next is the one given back last, still in the CPU cache (the
// page-cache copy into a cold 1 MiB buffer costs far more than into a warm
// one). close() wakes every waiter; take() then returns nullptr.
#pragma once

#include <condition_variable>
#include <mutex>
#include <vector>

namespace blocksmith {

template <typename T>
class BufferPool {
 public:
  void give(T* item) {
    std::lock_guard lock(mu_);
    items_.push_back(item);
    available_.notify_one();
  }

  T* take() {
    std::unique_lock lock(mu_);
    available_.wait(lock, [&] { return closed_ || !items_.empty(); });
    if (closed_) return nullptr;
    T* item = items_.back();
    items_.pop_back();
    return item;
  }

  void close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    available_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable available_;
  std::vector<T*> items_;
  bool closed_ = false;
};

}  // namespace blocksmith
