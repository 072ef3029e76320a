#include "core/operations/image_scan.h"

namespace blocksmith {

namespace {
// Extents per batch when streaming: ~96 KiB of them, few calls into JS.
constexpr size_t kStreamBatch = 4096;

ExtentMapSink make_sink(const ImageScanOptions& options, const ImageExtentStream& stream, uint64_t size) {
  if (!stream) return ExtentMapSink(options.keep_extents);
  return ExtentMapSink([&stream, size](std::vector<Extent>&& batch) { stream(size, std::move(batch)); }, kStreamBatch);
}
}  // namespace

ImageScanReport scan_image(const std::string& path, const ImageScanOptions& options, Control& control,
                           const ImageExtentStream& stream) {
  OpenedImage image = open_image(path, options.format, options.use_seek_hole, options.backing);
  ExtentMapSink sink = make_sink(options, stream, image.reader->size());
  run_scan(*image.reader, options.scan, sink, control);
  ImageScanReport r;
  r.image = image.description;
  r.source = image.file->info();
  r.source.size = image.reader->size();
  r.source.allocated = image.file->current_allocated();
  r.block_size = options.scan.block_size;
  r.totals = sink.totals();
  r.extent_count = sink.extent_count();
  r.extents = sink.take_extents();
  return r;
}

}  // namespace blocksmith
