// A page-aligned heap buffer (aligned so the same buffers can serve O_DIRECT).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <new>

namespace blocksmith {

class AlignedBuffer {
 public:
  explicit AlignedBuffer(size_t size, size_t alignment = 4096) : size_(size) {
    void* p = nullptr;
    if (posix_memalign(&p, alignment, size ? size : alignment) != 0) throw std::bad_alloc();
    data_ = static_cast<uint8_t*>(p);
  }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { std::free(data_); }

  uint8_t* data() noexcept { return data_; }
  const uint8_t* data() const noexcept { return data_; }
  size_t size() const noexcept { return size_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace blocksmith
