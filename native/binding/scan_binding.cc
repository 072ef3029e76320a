// scanExtents(path, options, onProgress) -> { promise, cancel }
// Scans a file or block device through the pipeline into an extent map.
#include <napi.h>

#include "args.h"
#include "core/sinks/extent_map_sink.h"
#include "core/readers/file_reader.h"
#include "core/readers/image_open.h"
#include "format_arg.h"
#include "core/pipeline/scan_pipeline.h"
#include "exports.h"
#include "job.h"

namespace binding {
namespace {

struct ScanRequest {
  std::string path;
  blocksmith::ScanOptions scan;
  bool use_seek_hole = true;
  bool keep_extents = true;
  blocksmith::ImageFormat format = blocksmith::ImageFormat::automatic;
  blocksmith::BackingPolicy backing;
};

Napi::Value ScanExtents(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ScanRequest req;
  req.path = string_arg(env, info[0], "path");
  Napi::Object opts = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  req.scan.block_size = uint_option(env, opts, "blockSize", blocksmith::kDefaultBlockSize);
  req.scan.chunk_size = uint_option(env, opts, "chunkSize", req.scan.chunk_size);
  req.use_seek_hole = bool_option(opts, "seekHole", true);
  req.keep_extents = bool_option(opts, "extents", true);
  req.format = format_option(env, opts);
  req.backing = backing_option(env, opts);

  return start_job(env, info[2], [req](blocksmith::Control& control) -> ResultBuilder {
    auto image = blocksmith::open_image(req.path, req.format, req.use_seek_hole, req.backing);
    auto sink = std::make_shared<blocksmith::ExtentMapSink>(req.keep_extents);
    blocksmith::run_scan(*image.reader, req.scan, *sink, control);
    blocksmith::SourceInfo si = image.file->info();
    si.size = image.reader->size();  // the virtual size (qcow2: not the file's)
    si.allocated = image.file->current_allocated();
    uint64_t block_size = req.scan.block_size;
    auto desc = image.description;
    return [sink, si, block_size, desc](Napi::Env env) -> Napi::Value {
      Napi::Object r = Napi::Object::New(env);
      r.Set("image", describe_image(env, desc));
      r.Set("kind", si.kind == blocksmith::SourceKind::block_device ? "block-device" : "file");
      r.Set("size", static_cast<double>(si.size));
      r.Set("allocated", static_cast<double>(si.allocated));
      r.Set("blockSize", static_cast<double>(block_size));
      if (si.kind == blocksmith::SourceKind::block_device) {
        r.Set("logicalSectorSize", si.logical_sector_size);
        r.Set("physicalSectorSize", si.physical_sector_size);
      }
      r.Set("holeBytes", static_cast<double>(sink->totals().hole));
      r.Set("zeroBytes", static_cast<double>(sink->totals().zero));
      r.Set("dataBytes", static_cast<double>(sink->totals().data));
      r.Set("extentCount", static_cast<double>(sink->extent_count()));
      // Extents as a flat Float64Array [offset, length, kind, ...]: compact,
      // exact up to 2^53 bytes, and cheap to hand over for millions of extents.
      const auto& ex = sink->extents();
      auto flat = Napi::Float64Array::New(env, ex.size() * 3);
      for (size_t i = 0; i < ex.size(); ++i) {
        flat[i * 3] = static_cast<double>(ex[i].offset);
        flat[i * 3 + 1] = static_cast<double>(ex[i].length);
        flat[i * 3 + 2] = static_cast<double>(static_cast<int>(ex[i].kind));
      }
      r.Set("extents", flat);
      return r;
    };
  });
}

}  // namespace

void register_scan(Napi::Env env, Napi::Object exports) {
  exports.Set("scanExtents", Napi::Function::New(env, ScanExtents, "scanExtents"));
}

}  // namespace binding
