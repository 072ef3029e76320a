// scanExtents(path, options, onProgress) -> { promise, cancel }
// Scans a file or block device through the pipeline into an extent map.
#include <napi.h>

#include <memory>

#include "args.h"
#include "core/operations/image_scan.h"
#include "exports.h"
#include "format_arg.h"
#include "job.h"
#include "option_fields.h"
#include "option_tables.h"
#include "report_fields.h"

namespace binding {
namespace {

Napi::Value ScanExtents(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = string_arg(env, info[0], "path");
  auto opts = read_options<blocksmith::ImageScanOptions>(env, options_arg(env, info[1]));

  return start_job(env, info[2], [path, opts](blocksmith::Control& control) -> ResultBuilder {
    // Shared, not copied: the extents may be millions.
    auto rep = std::make_shared<blocksmith::ImageScanReport>(blocksmith::scan_image(path, opts, control));
    return [rep](Napi::Env env) -> Napi::Value {
      const blocksmith::SourceInfo& si = rep->source;
      Napi::Object r = Napi::Object::New(env);
      r.Set("image", describe_image(env, rep->image));
      r.Set("kind", si.kind == blocksmith::SourceKind::block_device ? "block-device" : "file");
      r.Set("size", static_cast<double>(si.size));
      r.Set("allocated", static_cast<double>(si.allocated));
      r.Set("blockSize", static_cast<double>(rep->block_size));
      if (si.kind == blocksmith::SourceKind::block_device) {
        r.Set("logicalSectorSize", si.logical_sector_size);
        r.Set("physicalSectorSize", si.physical_sector_size);
      }
      set_totals(r, rep->totals);
      r.Set("extentCount", static_cast<double>(rep->extent_count));
      // Extents as a flat Float64Array [offset, length, kind, ...]: compact,
      // exact up to 2^53 bytes, and cheap to hand over for millions of extents.
      const auto& ex = rep->extents;
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
