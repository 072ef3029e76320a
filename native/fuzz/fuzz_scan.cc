// Fuzz harness: the scan pipeline over an in-memory source with holes
// delivers [0, size) exactly once, in order, and never calls a block with a
// non-zero byte "zero" or a range that was read "hole".
//
// Input layout: byte 0 block size (512 << (b % 4)) and, bit 7, blocks not
// classified (all data); byte 1 chunk size in blocks (1..16) and, high
// nibble, the start offset (in 97-byte steps); byte 2 the number of holes
// (0..7), then 2-byte hole (start, length) pairs in 64-byte units; the rest
// is the image. Bytes in hole ranges are zeroed (a filesystem hole reads as
// zeros). The sink must see [start, size) exactly once, in order.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/pipeline/control.h"
#include "core/readers/memory_reader.h"
#include "core/pipeline/scan_pipeline.h"

using namespace blocksmith;

namespace {
struct CheckingSink final : Sink {
  const uint8_t* image;
  uint64_t pos = 0;
  void expect_at(uint64_t off) {
    if (off != pos) std::abort();
  }
  void on_hole(uint64_t off, uint64_t len) override {
    expect_at(off);
    for (uint64_t i = 0; i < len; ++i)
      if (image[off + i]) std::abort();
    pos += len;
  }
  void on_zero(uint64_t off, uint64_t len) override {
    expect_at(off);
    for (uint64_t i = 0; i < len; ++i)
      if (image[off + i]) std::abort();
    pos += len;
  }
  void on_data(uint64_t off, const uint8_t* bytes, size_t len) override {
    expect_at(off);
    if (std::memcmp(bytes, image + off, len) != 0) std::abort();
    pos += len;
  }
  void on_end(uint64_t size) override {
    if (pos != size) std::abort();
  }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const size_t block = size_t{512} << (data[0] % 4);
  const size_t chunk_blocks = 1 + data[1] % 16;
  const bool classify = !(data[0] & 0x80);
  const uint64_t start = static_cast<uint64_t>(data[1] >> 4) * 97;
  const size_t nholes = data[2] % 8;
  size_t pos = 3;
  std::vector<std::pair<size_t, size_t>> raw_holes;
  for (size_t i = 0; i < nholes && pos + 2 <= size; ++i, pos += 2)
    raw_holes.push_back({size_t{data[pos]} * 64, size_t{data[pos + 1]} * 64});
  std::vector<uint8_t> image(data + pos, data + size);
  MemoryReader reader(image.data(), image.size(), "<fuzz>");
  for (auto [b, l] : raw_holes) {
    if (b >= image.size()) continue;
    size_t e = b + l < image.size() ? b + l : image.size();
    std::memset(image.data() + b, 0, e - b);
    if (e > b) reader.holes.push_back({b, e});
  }
  ScanOptions opt;
  opt.block_size = block;
  opt.chunk_size = chunk_blocks * block;
  opt.buffers = 2;
  opt.classify = classify;
  opt.start = start;
  CheckingSink sink;
  sink.image = image.data();
  sink.pos = std::min<uint64_t>(start, image.size());
  Control control;
  run_scan(reader, opt, sink, control);
  if (sink.pos != image.size()) std::abort();
  return 0;
}
