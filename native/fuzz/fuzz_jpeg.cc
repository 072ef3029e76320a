// Fuzz harness: the JPEG checker and the carve driver on hostile bytes.
// check_jpeg never reads outside the span, never reports a length beyond it,
// a complete file ends with EOI (or its MPF images), and with `eof` false it
// never decides differently than with more data (only need-more). The driver
// over a memory source with a tiny chunk size writes nothing (write=false)
// and reports files inside the source.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "core/carve/carver.h"
#include "core/carve/jpeg_check.h"
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
  Control control;
  carve::carve(reader, opt, control, [&](const CarvedFile& f) {
    if (f.offset + f.length > size) std::abort();
  });
  return 0;
}
