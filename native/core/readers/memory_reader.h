// Reader over bytes in memory: for unit tests and fuzz harnesses, and for
// sources that have already been decoded. Optionally reports chosen ranges
// as holes, or fails reads on chosen ranges (fault injection).
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/pipeline/reader.h"

namespace blocksmith {

class MemoryReader final : public Reader {
 public:
  MemoryReader(const uint8_t* data, size_t size, std::string name = "<memory>")
      : data_(data), size_(size), name_(std::move(name)) {}

  // Ranges reported as holes by next_data (they must really be zero in data).
  std::vector<DataRange> holes;
  // Ranges whose reads fail with EIO.
  std::vector<DataRange> faults;

  uint64_t size() const override { return size_; }
  const std::string& path() const override { return name_; }

  size_t read_at(void* buf, size_t len, uint64_t off) override {
    if (off >= size_) return 0;
    size_t n = static_cast<size_t>(std::min<uint64_t>(len, size_ - off));
    for (const auto& f : faults) {
      if (off < f.end && off + n > f.begin) {
        throw_sys(EIO, "read", name_, "read of '" + name_ + "' at byte " + std::to_string(off) + " failed");
      }
    }
    std::memcpy(buf, data_ + off, n);
    return n;
  }

  bool concurrent_reads() const override { return true; }
  DataRange next_data(uint64_t off) override {
    while (off < size_) {
      bool moved = false;
      for (const auto& h : holes) {
        if (off >= h.begin && off < h.end) {
          off = h.end;
          moved = true;
        }
      }
      if (!moved) break;
    }
    if (off >= size_) return {size_, size_};
    uint64_t end = size_;
    for (const auto& h : holes) {
      if (h.begin > off && h.begin < end) end = h.begin;
    }
    return {off, end};
  }

 private:
  const uint8_t* data_;
  size_t size_;
  std::string name_;
};

}  // namespace blocksmith
