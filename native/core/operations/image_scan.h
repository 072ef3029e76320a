// `info` and `map`: an image (raw or qcow2, file or block device) read
// through the pipeline into an extent map, with what the image is.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/pipeline/control.h"
#include "core/pipeline/scan_pipeline.h"
#include "core/readers/file_reader.h"
#include "core/readers/image_open.h"
#include "core/sinks/extent_map_sink.h"
#include "core/sinks/extent_totals.h"

namespace blocksmith {

struct ImageScanOptions {
  ScanOptions scan;
  bool use_seek_hole = true;
  bool keep_extents = true;  // false only counts (info on huge, fragmented sources)
  ImageFormat format = ImageFormat::automatic;
  BackingPolicy backing;
};

struct ImageScanReport {
  ImageDescription image;
  SourceInfo source;          // size: the virtual size (qcow2: not the file's); allocated: of the file
  uint64_t block_size = 0;    // the classification grid used
  ExtentTotals totals;
  uint64_t extent_count = 0;
  std::vector<Extent> extents;  // empty unless keep_extents
};

// The image's extents in batches as the scan finds them (the report's
// extents then stay empty, whatever keep_extents says): its virtual size,
// known before the first batch, and the batch.
using ImageExtentStream = std::function<void(uint64_t size, std::vector<Extent>&& batch)>;

ImageScanReport scan_image(const std::string& path, const ImageScanOptions& options, Control& control,
                           const ImageExtentStream& stream = {});

}  // namespace blocksmith
