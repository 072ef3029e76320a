// Fuzz harness: partition tables and ext superblocks/descriptors/bitmaps
// from arbitrary bytes (issue 7's parsers), and the cross-check of the
// bitmaps against the inode tables (issue 14). Either a blocksmith::Error,
// or a result whose free ranges all lie inside the image and inside the
// volume of a recognised filesystem: a hostile image must never yield a
// free range (a punch) outside the filesystem that claims it. And for every
// filesystem accepted, the walker's references (checked here by a plain
// linear search, not the reader's binary one) all lie inside the filesystem
// and none of them in a free range: an accepted image never has a punch
// over a block an inode uses.
#include <cstdint>
#include <cstdlib>

#include "core/base/error.h"
#include "core/guest_fs/ext.h"
#include "core/guest_fs/ext_refs.h"
#include "core/guest_fs/inspect.h"
#include "core/readers/memory_reader.h"

using namespace blocksmith;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  MemoryReader reader(data, size);
  try {
    fs::Inspection in = fs::inspect_filesystems(reader, 512);
    for (const auto& r : in.free.ranges()) {
      if (r.begin >= r.end || r.end > size) std::abort();
      // Covered by accepted volumes (adjacent volumes' ranges may merge).
      uint64_t pos = r.begin;
      while (pos < r.end) {
        uint64_t next = pos;
        for (const auto& v : in.volumes) {
          if (v.action == "free-blocks" && pos >= v.offset && pos < v.offset + v.length) next = v.offset + v.length;
        }
        if (next == pos) std::abort();
        pos = next;
      }
    }
    for (const auto& v : in.volumes) {
      if (v.action == "refused" && v.reason.empty()) std::abort();  // a refusal always says why
      if (v.action != "free-blocks") continue;
      fs::ExtInfo e = fs::read_ext(reader, v.offset, v.length);  // accepted once: accepted again
      const fs::ExtLayout& g = e.layout;
      fs::walk_references(
          reader, g,
          [&](uint64_t first, uint64_t count, const fs::BlockOwner&) {
            if (count == 0 || first < g.first_data_block || first + count > g.blocks_count) std::abort();
            const uint64_t b = g.offset + first * g.bs, end = g.offset + (first + count) * g.bs;
            for (const auto& f : e.free) {
              if (f.begin < end && b < f.end) std::abort();
            }
          },
          "fuzz");
    }
  } catch (const Error&) {
  }
  return 0;
}
