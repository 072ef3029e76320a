#include "core/operations/image_scan.h"

namespace blocksmith {

ImageScanReport scan_image(const std::string& path, const ImageScanOptions& options, Control& control) {
  OpenedImage image = open_image(path, options.format, options.use_seek_hole, options.backing);
  ExtentMapSink sink(options.keep_extents);
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
