// scanExtents(path, options, onProgress, onExtents?) -> { promise, cancel }
// Scans a file or block device through the pipeline into an extent map.
// With onExtents, the extents go to onExtents(flat, virtualSize) in batches
// as they are found (flat: Float64Array [offset, length, kind, ...]) and the
// result's extents are empty; when it returns a promise, the next batch waits
// for it.
#include <napi.h>

#include <memory>

#include "args.h"
#include "consumer_gate.h"
#include "event_queue.h"
#include "core/operations/image_scan.h"
#include "exports.h"
#include "format_arg.h"
#include "job.h"
#include "option_fields.h"
#include "option_tables.h"
#include "report_fields.h"

namespace binding {
namespace {

// Extents as a flat Float64Array [offset, length, kind, ...]: compact, exact
// up to 2^53 bytes, and cheap to hand over for millions of extents.
Napi::Float64Array flat_extents(Napi::Env env, const std::vector<blocksmith::Extent>& ex) {
  auto flat = Napi::Float64Array::New(env, ex.size() * 3);
  for (size_t i = 0; i < ex.size(); ++i) {
    flat[i * 3] = static_cast<double>(ex[i].offset);
    flat[i * 3 + 1] = static_cast<double>(ex[i].length);
    flat[i * 3 + 2] = static_cast<double>(static_cast<int>(ex[i].kind));
  }
  return flat;
}

struct ExtentBatch {
  uint64_t size;
  std::vector<blocksmith::Extent> extents;
  std::shared_ptr<ConsumerGate> gate;
};

// onExtents may return a promise: the scan then waits for it (a full pipe).
void deliver_batch(Napi::Env env, Napi::Function cb, ExtentBatch& b) {
  Napi::Value r = cb.Call({flat_extents(env, b.extents), Napi::Number::New(env, static_cast<double>(b.size))});
  b.gate->hold_until_settled(env, r);
}

// Batches waiting for JS: a few, so a consumer slower than the scan holds
// the scan back instead of letting the batches pile up.
constexpr size_t kBatchesQueued = 4;

Napi::Value ScanExtents(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = string_arg(env, info[0], "path");
  auto opts = read_options<blocksmith::ImageScanOptions>(env, options_arg(env, info[1]));

  auto q = std::make_shared<EventQueue<ExtentBatch>>(deliver_batch);
  q->start(env, info[3], "blocksmith-extents", kBatchesQueued);
  return start_job(env, info[2], [path, opts, q](blocksmith::Control& control) -> ResultBuilder {
    blocksmith::ImageExtentStream stream;
    if (q->active()) {
      auto gate = std::make_shared<ConsumerGate>();
      stream = [&q, gate, &control](uint64_t size, std::vector<blocksmith::Extent>&& batch) {
        gate->wait(control);
        q->post(std::make_unique<ExtentBatch>(ExtentBatch{size, std::move(batch), gate}));
      };
    }
    // Shared, not copied: the extents may be millions.
    std::shared_ptr<blocksmith::ImageScanReport> rep;
    try {
      rep = std::make_shared<blocksmith::ImageScanReport>(blocksmith::scan_image(path, opts, control, stream));
    } catch (...) {
      q->finish();
      throw;
    }
    q->finish();
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
      r.Set("extents", flat_extents(env, rep->extents));
      return r;
    };
  });
}

}  // namespace

void register_scan(Napi::Env env, Napi::Object exports) {
  exports.Set("scanExtents", Napi::Function::New(env, ScanExtents, "scanExtents"));
}

}  // namespace binding
