// Fuzz harness: partition tables and ext superblocks/descriptors/bitmaps
// from arbitrary bytes (issue 7's parsers). Either a blocksmith::Error, or a
// result whose free ranges all lie inside the image and inside the volume of
// a recognised filesystem: a hostile image must never yield a free range
// (a punch) outside the filesystem that claims it.
#include <cstdint>
#include <cstdlib>

#include "core/error.h"
#include "core/fs/inspect.h"
#include "core/memory_reader.h"

using namespace blocksmith;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  MemoryReader reader(data, size);
  try {
    fs::Inspection in = fs::inspect_filesystems(reader, 512);
    for (const auto& r : in.free.ranges()) {
      if (r.begin >= r.end || r.end > size) std::abort();
      // Covered by recognised volumes (adjacent volumes' ranges may merge).
      uint64_t pos = r.begin;
      while (pos < r.end) {
        uint64_t next = pos;
        for (const auto& v : in.volumes) {
          if (!v.filesystem.empty() && pos >= v.offset && pos < v.offset + v.length) next = v.offset + v.length;
        }
        if (next == pos) std::abort();
        pos = next;
      }
    }
  } catch (const Error&) {
  }
  return 0;
}
