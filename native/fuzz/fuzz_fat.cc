// Fuzz harness: the FAT12/16/32 undelete reader (guest_fs/fat*.cc) on
// arbitrary bytes. The input is the start of a 40 MiB volume whose rest reads
// as zeros, so small inputs (a boot sector, FATs and a few directory
// clusters: the seeds are real mkfs.fat + mtools volumes with their zero
// tails cut off) describe FAT16 and FAT32 volumes. Either a
// blocksmith::Error, or a result whose plans and maps stay inside the
// volume: every extent inside the data region, a recoverable file's extents
// adding up to its size, allocated and free disjoint.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/base/error.h"
#include "core/guest_fs/volume_files.h"
#include "core/pipeline/reader.h"

using namespace blocksmith;

namespace {

constexpr uint64_t kVolume = 40u << 20;

class ZeroTailReader final : public Reader {
 public:
  ZeroTailReader(const uint8_t* d, size_t n) : d_(d), n_(n) {}
  uint64_t size() const override { return kVolume; }
  const std::string& path() const override { return name_; }
  size_t read_at(void* buf, size_t len, uint64_t off) override {
    if (off >= kVolume) return 0;
    len = static_cast<size_t>(std::min<uint64_t>(len, kVolume - off));
    auto* out = static_cast<uint8_t*>(buf);
    std::memset(out, 0, len);
    if (off < n_) std::memcpy(out, d_ + off, std::min<uint64_t>(len, n_ - off));
    return len;
  }

 private:
  const uint8_t* d_;
  size_t n_;
  std::string name_ = "fuzz";
};

void check_map(const fs::FreeMap& m, uint64_t begin, uint64_t end) {
  uint64_t prev = 0;
  for (const auto& r : m.ranges()) {
    if (r.begin >= r.end || r.begin < begin || r.end > end || r.begin < prev) std::abort();
    prev = r.end;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > kVolume) return 0;
  ZeroTailReader reader(data, size);
  const bool probed = fs::probe_fat(reader, 0, kVolume);
  try {
    fs::VolumeFiles v = fs::read_fat(reader, 0, kVolume);
    if (!probed) std::abort();  // read accepts only what probe accepts
    const uint64_t end = v.offset + v.length;
    if (end > kVolume || v.data_offset >= end) std::abort();
    check_map(v.allocated, v.offset, end);
    check_map(v.free, v.data_offset, end);
    // Free and allocated never share a byte.
    for (const auto& f : v.free.ranges()) {
      const auto* a = v.allocated.next(f.begin);
      if (a && a->begin < f.end) std::abort();
    }
    for (const auto& f : v.deleted) {
      uint64_t total = 0;
      for (const auto& e : f.extents) {
        if (e.begin >= e.end || e.begin < v.data_offset || e.end > end) std::abort();
        total += e.end - e.begin;
      }
      if (f.status == fs::DeletedStatus::recoverable && !f.directory && total != f.size) std::abort();
      if (f.overwritten_bytes > f.size) std::abort();
      if (f.status == fs::DeletedStatus::recoverable) {
        // A recoverable plan lies in free clusters only.
        for (const auto& e : f.extents) {
          const auto* a = v.allocated.next(e.begin);
          if (a && a->begin < e.end) std::abort();
        }
      }
    }
  } catch (const Error&) {
  }
  return 0;
}
