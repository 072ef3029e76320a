// Fuzz harness: the JPEG checker and the carve driver on hostile bytes.
// check_jpeg never reads outside the span, never reports a length beyond it,
// a complete file ends with EOI (or its MPF images), and with `eof` false it
// never decides differently than with more data (only need-more), also when
// it goes on from where a check of fewer bytes stopped. The driver
// over a memory source with a tiny chunk size writes nothing (write=false)
// and reports files inside the source. The fragment search, on a partial
// candidate at the start with a tiny block size, returns fragments inside
// the source, in order, not overlapping, whose bytes check complete. The
// seam check over a whole file's last sequential scan, at joins taken from
// the input, reads inside the span and returns a verdict per join in it; the
// walk over a damaged file's tail ends inside the source. The EXIF layout
// score reads inside its payload. Holes a sparse search puts back
// (Fragment::zeros) count in the length and read nothing. The portable
// scan decoder decides exactly what the BMI2 one does.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "core/operations/carve.h"
#include "core/carve/entropy_variants.h"
#include "core/carve/exif.h"
#include "core/carve/jpeg_check.h"
#include "core/carve/reassemble.h"
#include "core/carve/seam.h"
#include "core/pipeline/control.h"
#include "core/readers/memory_reader.h"

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
  {
    use_scan_decoder(ScanDecoder::portable);
    CheckResult portable = check_jpeg(buf.data(), buf.size(), true);
    use_scan_decoder(ScanDecoder::automatic);
    if (portable.status != all.status || portable.length != all.length || portable.broke_at != all.broke_at ||
        portable.reason != all.reason)
      std::abort();
  }
  if (size > 0) {
    // With data possibly following, a prefix either asks for more or decides
    // what the whole decides (a decision never depends on unseen bytes).
    size_t cut = size - 1 - (data[0] % size);
    std::vector<uint8_t> pre(data, data + cut);
    CheckResult p = check_jpeg(pre.data(), pre.size(), false);
    if (p.status != Status::need_more) {
      if (p.status != all.status || p.length != all.length) std::abort();
    } else {
      // Going on from where the prefix stopped (CheckResume), over a longer
      // prefix and then the whole, decides exactly what a check from the start does.
      CheckResume resume;
      CheckOptions go_on;
      go_on.resume = &resume;
      CheckResult first = check_jpeg(pre.data(), pre.size(), false, go_on);
      if (first.status != Status::need_more) std::abort();
      size_t cut2 = cut + (size - cut) / 2;
      std::vector<uint8_t> mid(data, data + cut2);
      CheckResult second = check_jpeg(mid.data(), mid.size(), false, go_on);
      CheckResult fresh_mid = check_jpeg(mid.data(), mid.size(), false);
      if (second.status != fresh_mid.status || second.length != fresh_mid.length) std::abort();
      if (second.status == Status::need_more) {
        CheckResult whole = check_jpeg(buf.data(), buf.size(), true, go_on);
        if (whole.status != all.status || whole.length != all.length || whole.broke_at != all.broke_at ||
            whole.header_end != all.header_end || whole.reason != all.reason || whole.info.scans != all.info.scans)
          std::abort();
      }
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
      total += fr.length;
      if (fr.zeros) continue;
      if (fr.offset < prev_end || fr.offset + fr.length > size) std::abort();
      prev_end = fr.offset + fr.length;
    }
    if (!f.fragments.empty() && total != f.length) std::abort();
  });
  {
    auto probe = std::make_unique<ScanProbe>();
    CheckOptions whole;
    whole.probe = probe.get();
    whole.probe_whole = true;
    check_jpeg(buf.data(), buf.size(), true, whole);
    if (probe->valid && size >= 4) {
      std::vector<size_t> joins;
      for (size_t i = 0; i < 3; i++) joins.push_back((size_t(data[i]) << 8 | data[i + 1]) * 7 % size);
      SeamVerdict v = check_seams(buf.data(), buf.size(), *probe, joins);
      if (v.seams.size() > joins.size()) std::abort();
      for (const SeamStats& st : v.seams)
        if (st.join <= probe->data_start || st.join >= size) std::abort();
      if (!v.ok && v.reason.empty()) std::abort();
    }
  }
  if (size > 0) {
    MemoryReader tail(buf.data(), buf.size());
    uint64_t end = damaged_tail_end(tail, data[0] % size, size, data[size - 1]);
    if (end != 0 && (end > size || end < 2 || buf[end - 2] != 0xFF || buf[end - 1] != 0xD9)) std::abort();
  }
  CheckOptions small;
  small.min_partial_entropy = 0;
  CheckResult head = check_jpeg(buf.data(), buf.size(), true, small);
  if (head.status == Status::partial && size > 0) {
    ReassembleOptions ro;
    ro.block_size = 1u << (2 + data[size - 1] % 6);  // 4..128
    ro.sparse = data[size - 1] & 0x80;
    ro.max_attempts = 2000;
    std::vector<uint8_t> joined;
    Reassembly ra = reassemble(reader, 0, head.broke_at, Claims{}, ro, &joined);
    if (ra.ok) {
      uint64_t prev_end = 0, total = 0;
      for (const Fragment& fr : ra.fragments) {
        if (fr.length == 0 || (fr.zeros && !ro.sparse)) std::abort();
        total += fr.length;
        if (fr.zeros) continue;
        if (fr.offset < prev_end || fr.offset + fr.length > size) std::abort();
        prev_end = fr.offset + fr.length;
      }
      if (ra.fragments.size() < 2 || total != joined.size()) std::abort();
      CheckResult whole = check_jpeg(joined.data(), joined.size(), true);
      if (whole.status != Status::complete || whole.length != joined.size()) std::abort();
    }
  }
  {
    // The input as an EXIF payload (after "Exif\0\0"), in a buffer of exactly its size.
    std::vector<uint8_t> exif(6 + size);
    std::memcpy(exif.data(), "Exif\0\0", 6);
    if (size) std::memcpy(exif.data() + 6, data, size);
    int a = exif_layout_score(exif.data(), exif.size());
    int b = exif_layout_score(buf.data(), buf.size());
    // At most 16 IFDs of 512 entries, each worth 2 at most, and 1 per IFD.
    if (a > 16 * (512 * 2 + 1) || b > 16 * (512 * 2 + 1)) std::abort();
  }
  return 0;
}
