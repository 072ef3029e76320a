// Fuzz harness: the container-format probe (native/core/readers/container_probe.cc:
// the magic table, the VMDK descriptor text, the VHD footer checksum at the
// end) and the qcow2 reader over an in-memory image (the input bytes).
// Opening either fails with blocksmith::Error or yields a reader whose data
// map is well formed (ranges in order, inside the virtual size) and whose
// holes read as zeros; reads return exactly what was asked. A backing file,
// if named, is the input itself read as raw bytes (no file is ever opened).
// Reads of up to 1 MiB take many clusters at once (compressed ones are then
// fetched in runs, qcow2_reader.cc read_compressed). Work per input is
// bounded: at most 256 ranges and 8 MiB read.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "core/readers/container_probe.h"
#include "core/base/error.h"
#include "core/readers/memory_reader.h"
#include "core/qcow2/qcow2_reader.h"

using namespace blocksmith;
using namespace blocksmith::qcow2;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  {
    // The probe reads only what it is given and names a format of its table.
    MemoryReader m(data, size, "<probe>");
    const ContainerFormat* c = probe_container(m);
    if (c && (!c->name || !c->title)) std::abort();
  }
  std::unique_ptr<Qcow2Reader> r;
  BackingOpener opener = [data, size](const std::string&, const std::string&) -> std::unique_ptr<Reader> {
    return std::make_unique<MemoryReader>(data, size, "<backing>");
  };
  try {
    r = std::make_unique<Qcow2Reader>(std::make_unique<MemoryReader>(data, size, "<fuzz>"), opener);
  } catch (const Error&) {
    return 0;
  }
  const uint64_t vsize = r->size();
  std::vector<uint8_t> buf(1 << 20);
  uint64_t budget = 8 << 20;
  uint64_t off = 0;
  try {
    for (int steps = 0; steps < 256 && off < vsize && budget > 0; ++steps) {
      DataRange d = r->next_data(off);
      if (d.begin < off || d.end < d.begin || d.end > vsize) std::abort();
      // A hole reads as zeros.
      if (d.begin > off) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(d.begin - off, 4096));
        if (r->read_at(buf.data(), n, off) != n) std::abort();
        for (size_t i = 0; i < n; ++i)
          if (buf[i]) std::abort();
      }
      if (d.begin >= vsize) break;
      if (d.end == d.begin) std::abort();
      // Read the range's start, and its end (crossing cluster boundaries).
      size_t n = static_cast<size_t>(std::min<uint64_t>({d.end - d.begin, buf.size(), budget}));
      if (r->read_at(buf.data(), n, d.begin) != n) std::abort();
      if (d.end - d.begin > n) {
        uint64_t tail = d.end - n;
        if (r->read_at(buf.data(), n, tail) != n) std::abort();
      }
      budget -= std::min<uint64_t>(budget, n);
      off = d.end;
    }
    // A read across the end of the virtual disk is clipped.
    if (vsize > 0 && r->read_at(buf.data(), 16, vsize - 1) != 1) std::abort();
  } catch (const Error&) {
  }
  return 0;
}
