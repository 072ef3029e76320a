// Fuzz harness: the exFAT reader (guest_fs/exfat*.cc, issue 16) from
// arbitrary bytes. Either a blocksmith::Error, or a VolumeFiles whose every
// range lies inside the volume: allocated and free disjoint, normalised,
// free only inside the cluster heap; every recoverable deleted file's
// extents add up to its size and lie inside the heap. A hostile volume must
// never plan a read (or a carve scope) outside the filesystem that claims it.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/base/error.h"
#include "core/guest_fs/exfat_boot.h"
#include "core/guest_fs/volume_files.h"
#include "core/readers/memory_reader.h"

using namespace blocksmith;

namespace {

void check_map(const fs::FreeMap& m, uint64_t begin, uint64_t end) {
  uint64_t prev = 0;
  for (const auto& r : m.ranges()) {
    if (r.begin >= r.end || r.begin < begin || r.end > end || r.begin < prev) std::abort();
    prev = r.end + 1;  // normalised: touching ranges are merged
  }
}

void run(const uint8_t* data, size_t size) {
  MemoryReader reader(data, size);
  // The volume at 0, and at an offset (the same bytes seen as a partition).
  for (uint64_t offset : {uint64_t(0), uint64_t(512)}) {
    if (offset > size) continue;
    const uint64_t length = size - offset;
    fs::probe_exfat(reader, offset, length);
    try {
      const fs::VolumeFiles v = fs::read_exfat(reader, offset, length);
      const uint64_t heap_end = v.data_offset + v.cluster_count * v.cluster_size;
      if (v.data_offset < offset || heap_end > offset + length) std::abort();
      check_map(v.allocated, offset, offset + length);
      check_map(v.free, v.data_offset, heap_end);
      for (const auto& f : v.free.ranges()) {
        const fs::ByteRange* a = v.allocated.next(f.begin);
        if (a && a->begin < f.end) std::abort();
      }
      for (const auto& f : v.deleted) {
        uint64_t total = 0;
        for (const auto& e : f.extents) {
          if (e.begin >= e.end || e.begin < v.data_offset || e.end > heap_end) std::abort();
          total += e.end - e.begin;
        }
        if (f.status == fs::DeletedStatus::recoverable && total != f.size) std::abort();
        if (f.status == fs::DeletedStatus::overwritten && (f.overwritten_bytes == 0 || f.overwritten_bytes > total)) std::abort();
        if (f.path.empty() || f.path.front() == '/') std::abort();
      }
    } catch (const Error&) {
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  run(data, size);
  // Again with the boot checksum made right: a mutation of the boot sector
  // then reaches the field checks and the walk instead of stopping at the
  // checksum every time.
  if (size >= 12 * 512 && data[108] >= 9 && data[108] <= 12 && size >= 12u << data[108]) {
    std::vector<uint8_t> copy(data, data + size);
    const uint32_t ss = 1u << copy[108];
    const uint32_t sum = fs::exfat_boot_checksum(copy.data(), ss);
    for (uint32_t i = 0; i < ss; i += 4) std::memcpy(&copy[11 * ss + i], &sum, 4);
    if (std::memcmp(copy.data(), data, size) != 0) run(copy.data(), copy.size());
  }
  return 0;
}
