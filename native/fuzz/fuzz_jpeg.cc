// Fuzz harness: the JPEG checker and the carve driver on hostile bytes.
// check_jpeg never reads outside the span, never reports a length beyond it,
// a complete file ends with EOI (or its MPF images), and with `eof` false it
// never decides differently than with more data (only need-more). The driver
// over a memory source with a tiny chunk size writes nothing (write=false)
// and reports files inside the source. The fragment search, on a partial
// candidate at the start with a tiny block size, returns fragments inside
// the source, in order, not overlapping, whose bytes check complete.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "core/carve/carver.h"
#include "core/carve/jpeg_check.h"
#include "core/carve/reassemble.h"
#include "core/control.h"
#include "core/memory_reader.h"

using namespace blocksmith;
using namespace blocksmith::carve;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A copy of exactly `size` bytes so ASan catches any read past the end.
  std::vector<uint8_t> buf(data, data + size);
  CheckResult all = check_jpeg(buf.data(), buf.size(), true);
  if (all.length > size) std::abort();
  if (all.status == Status::need_more) std::abort();
  if (all.status == Status::complete && !all.info.mpf_included &&
      (all.length < 4 || buf[all.length - 2] != 0xFF || buf[all.length - 1] != 0xD9))
    std::abort();
  if (all.status == Status::partial && (all.length == 0 || all.length > size)) std::abort();
  if (size > 0) {
    // With data possibly following, a prefix either asks for more or decides
    // what the whole decides (a decision never depends on unseen bytes).
    size_t cut = size - 1 - (data[0] % size);
    std::vector<uint8_t> pre(data, data + cut);
    CheckResult p = check_jpeg(pre.data(), pre.size(), false);
    if (p.status != Status::need_more) {
      if (p.status != all.status || p.length != all.length) std::abort();
    }
  }
  MemoryReader reader(buf.data(), buf.size());
  CarveOptions opt;
  opt.write = false;
  opt.chunk_size = 1 << 16;
  opt.thumbnails = true;
  opt.block_size = 64;
  opt.max_attempts = 2000;
  Control control;
  carve::carve(reader, opt, control, [&](const CarvedFile& f) {
    if (f.offset + f.length > size) std::abort();
    uint64_t total = 0, prev_end = 0;
    for (const Fragment& fr : f.fragments) {
      if (fr.offset < prev_end || fr.offset + fr.length > size) std::abort();
      prev_end = fr.offset + fr.length;
      total += fr.length;
    }
    if (!f.fragments.empty() && total != f.length) std::abort();
  });
  CheckOptions small;
  small.min_partial_entropy = 0;
  CheckResult head = check_jpeg(buf.data(), buf.size(), true, small);
  if (head.status == Status::partial && size > 0) {
    ReassembleOptions ro;
    ro.block_size = 1u << (2 + data[size - 1] % 6);  // 4..128
    ro.max_attempts = 2000;
    std::vector<uint8_t> joined;
    Reassembly ra = reassemble(reader, 0, head.broke_at, Claims{}, ro, &joined);
    if (ra.ok) {
      uint64_t prev_end = 0, total = 0;
      for (const Fragment& fr : ra.fragments) {
        if (fr.offset < prev_end || fr.length == 0 || fr.offset + fr.length > size) std::abort();
        prev_end = fr.offset + fr.length;
        total += fr.length;
      }
      if (ra.fragments.size() < 2 || total != joined.size()) std::abort();
      CheckResult whole = check_jpeg(joined.data(), joined.size(), true);
      if (whole.status != Status::complete || whole.length != joined.size()) std::abort();
    }
  }
  return 0;
}
