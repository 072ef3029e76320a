// carve(source, options, onProgress, onFile) -> { promise, cancel }.
// Per-file events are queued losslessly (an unbounded thread-safe function,
// BlockingCall) and the job settles only after every queued event has been
// delivered, so onFile sees each written file before the promise resolves.
#include <napi.h>

#include <condition_variable>
#include <memory>
#include <mutex>

#include "args.h"
#include "core/carve/carver.h"
#include "core/file_reader.h"
#include "exports.h"
#include "job.h"

namespace binding {
namespace {

using blocksmith::carve::CarvedFile;
using blocksmith::carve::CarveOptions;
using blocksmith::carve::CarveReport;

CarveOptions read_options(Napi::Env env, Napi::Value v) {
  Napi::Object o = v.IsObject() ? v.As<Napi::Object>() : Napi::Object::New(env);
  CarveOptions c;
  Napi::Value out = o.Get("outDir");
  c.out_dir = string_arg(env, out, "outDir");
  c.offset = uint_option(env, o, "offset", 0);
  c.length = uint_option(env, o, "length", 0);
  c.sector_size = static_cast<uint32_t>(uint_option(env, o, "sectorSize", 1));
  c.min_size = uint_option(env, o, "minSize", 0);
  c.min_width = static_cast<int>(uint_option(env, o, "minWidth", 0));
  c.min_height = static_cast<int>(uint_option(env, o, "minHeight", 0));
  c.max_size = uint_option(env, o, "maxSize", c.max_size);
  c.chunk_size = uint_option(env, o, "chunkSize", c.chunk_size);
  c.dedupe = bool_option(o, "dedupe", false);
  c.thumbnails = bool_option(o, "thumbnails", false);
  c.partials = bool_option(o, "partials", true);
  c.use_seek_hole = bool_option(o, "seekHole", true);
  c.write = bool_option(o, "write", true);
  c.reassemble = bool_option(o, "reassemble", true);
  c.block_size = static_cast<uint32_t>(uint_option(env, o, "blockSize", 0));
  c.max_gap = uint_option(env, o, "maxGap", c.max_gap);
  c.max_attempts = uint_option(env, o, "maxAttempts", c.max_attempts);
  if (c.sector_size == 0 || c.max_size < 1024) throw invalid_arg(env, "sectorSize and maxSize must be positive");
  return c;
}

Napi::Object file_object(Napi::Env env, const CarvedFile& f) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("offset", static_cast<double>(f.offset));
  o.Set("length", static_cast<double>(f.length));
  o.Set("status", f.kind);
  if (!f.path.empty()) o.Set("path", f.path);
  o.Set("sha256", f.sha256);
  if (!f.duplicate_of.empty()) o.Set("duplicateOf", f.duplicate_of);
  o.Set("width", f.info.width);
  o.Set("height", f.info.height);
  o.Set("components", f.info.components);
  o.Set("progressive", f.info.progressive);
  o.Set("validated", f.info.decoded ? "decoded" : "structure");
  if (f.kind == "partial") {
    o.Set("brokeAt", static_cast<double>(f.broke_at));
    o.Set("reason", f.reason);
  }
  if (f.kind == "thumbnail") o.Set("parent", static_cast<double>(f.parent));
  if (f.kind == "reassembled") {
    Napi::Array frags = Napi::Array::New(env, f.fragments.size());
    for (size_t i = 0; i < f.fragments.size(); i++) {
      Napi::Object fr = Napi::Object::New(env);
      fr.Set("offset", static_cast<double>(f.fragments[i].offset));
      fr.Set("length", static_cast<double>(f.fragments[i].length));
      frags.Set(static_cast<uint32_t>(i), fr);
    }
    o.Set("fragments", frags);
  }
  if (!f.info.exif.make.empty()) o.Set("make", f.info.exif.make);
  if (!f.info.exif.model.empty()) o.Set("model", f.info.exif.model);
  if (!f.info.exif.date.empty()) o.Set("date", f.info.exif.date);
  return o;
}

struct EventQueue {
  std::mutex mu;
  std::condition_variable cv;
  uint64_t pending = 0;
  Napi::ThreadSafeFunction tsfn;
  bool active = false;
};

Napi::Value Carve(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string source = string_arg(env, info[0], "source");
  CarveOptions opts = read_options(env, info[1]);
  bool seek_hole = opts.use_seek_hole;
  auto q = std::make_shared<EventQueue>();
  if (info[3].IsFunction()) {
    q->tsfn = Napi::ThreadSafeFunction::New(env, info[3].As<Napi::Function>(), "blocksmith-carve-files", 0, 1);
    q->active = true;
  }
  return start_job(env, info[2], [source, opts, seek_hole, q](blocksmith::Control& control) -> ResultBuilder {
    auto sink = [q](const CarvedFile& f) {
      if (!q->active) return;
      {
        std::lock_guard<std::mutex> lock(q->mu);
        q->pending++;
      }
      auto* copy = new CarvedFile(f);
      napi_status st = q->tsfn.BlockingCall(copy, [q](Napi::Env env, Napi::Function cb, CarvedFile* file) {
        std::unique_ptr<CarvedFile> owned(file);
        if (env != nullptr && cb != nullptr) {
          try {
            cb.Call({file_object(env, *owned)});
          } catch (...) {
          }
        }
        std::lock_guard<std::mutex> lock(q->mu);
        q->pending--;
        q->cv.notify_all();
      });
      if (st != napi_ok) {
        delete copy;
        std::lock_guard<std::mutex> lock(q->mu);
        q->pending--;
      }
    };
    auto finish_events = [q]() {
      if (!q->active) return;
      std::unique_lock<std::mutex> lock(q->mu);
      q->cv.wait(lock, [&] { return q->pending == 0; });
      lock.unlock();
      q->tsfn.Release();
      q->active = false;
    };
    CarveReport rep;
    try {
      auto reader = blocksmith::FileReader::open(source, seek_hole);
      rep = blocksmith::carve::carve(reader, opts, control, sink);
    } catch (...) {
      finish_events();
      throw;
    }
    finish_events();
    return [rep](Napi::Env env) -> Napi::Value {
      Napi::Object o = Napi::Object::New(env);
      o.Set("source", rep.source);
      o.Set("size", static_cast<double>(rep.size));
      o.Set("start", static_cast<double>(rep.start));
      o.Set("end", static_cast<double>(rep.end));
      o.Set("nextOffset", static_cast<double>(rep.next_offset));
      o.Set("bytesScanned", static_cast<double>(rep.bytes_scanned));
      o.Set("candidates", static_cast<double>(rep.candidates));
      o.Set("complete", static_cast<double>(rep.complete));
      o.Set("partial", static_cast<double>(rep.partial));
      o.Set("reassembled", static_cast<double>(rep.reassembled));
      o.Set("rejected", static_cast<double>(rep.rejected));
      o.Set("filtered", static_cast<double>(rep.filtered));
      o.Set("duplicates", static_cast<double>(rep.duplicates));
      o.Set("thumbnails", static_cast<double>(rep.thumbnails));
      o.Set("bytesWritten", static_cast<double>(rep.bytes_written));
      Napi::Array un = Napi::Array::New(env, rep.unreadable.size());
      for (size_t i = 0; i < rep.unreadable.size(); i++) {
        Napi::Object r = Napi::Object::New(env);
        r.Set("offset", static_cast<double>(rep.unreadable[i].begin));
        r.Set("length", static_cast<double>(rep.unreadable[i].end - rep.unreadable[i].begin));
        un.Set(static_cast<uint32_t>(i), r);
      }
      o.Set("unreadable", un);
      o.Set("seconds", rep.seconds);
      o.Set("cancelled", rep.cancelled);
      return o;
    };
  });
}

}  // namespace

void register_carve(Napi::Env env, Napi::Object exports) {
  exports.Set("carve", Napi::Function::New(env, Carve, "carve"));
}

}  // namespace binding
