// carve(source, options, onProgress, onEvent) -> { promise, cancel }.
// onEvent(file) for each file written, onEvent(null, checkpoint) about once a
// second with a state a resumed run can continue from. Events are queued
// losslessly and in order (an unbounded thread-safe function, BlockingCall):
// a checkpoint arrives after every file it covers. The job settles only after
// every queued event has been delivered, so onEvent sees each written file
// before the promise resolves.
#include <napi.h>

#include <memory>
#include <mutex>

#include "args.h"
#include "event_queue.h"
#include "core/operations/carve.h"
#include "core/readers/file_reader.h"
#include "exports.h"
#include "job.h"
#include "option_fields.h"
#include "option_tables.h"

namespace binding {
namespace {

using blocksmith::carve::CarvedFile;
using blocksmith::carve::CarveOptions;
using blocksmith::carve::CarveReport;
using blocksmith::carve::Fragment;

// Offsets and ranges of a resumed run, from its report.json (which may have
// been edited): numbers that are non-negative integers, or a TypeError.
uint64_t uint_value(Napi::Env env, Napi::Value v, const char* what) {
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= 0 && d <= 9007199254740991.0) || d != static_cast<double>(static_cast<uint64_t>(d)))
    throw invalid_arg(env, std::string(what) + " must hold non-negative integers");
  return static_cast<uint64_t>(d);
}

Napi::Array array_option(Napi::Env env, Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return Napi::Array::New(env, 0);
  if (!v.IsArray()) throw invalid_arg(env, std::string(key) + " must be an array");
  return v.As<Napi::Array>();
}

CarveOptions read_carve_options(Napi::Env env, Napi::Value v) {
  Napi::Object o = options_arg(env, v);
  CarveOptions c;
  Napi::Value out = o.Get("outDir");
  c.out_dir = string_arg(env, out, "outDir");
  c = read_options<CarveOptions>(env, o, c);
  c.length_set = !o.Get("length").IsUndefined();
  Napi::Array held = array_option(env, o, "held");
  for (uint32_t i = 0; i < held.Length(); i++) c.held.push_back(uint_value(env, held.Get(i), "held"));
  Napi::Array recovered = array_option(env, o, "recovered");
  for (uint32_t i = 0; i < recovered.Length(); i++) {
    Napi::Value r = recovered.Get(i);
    if (!r.IsObject()) throw invalid_arg(env, "recovered must hold {offset, length} objects");
    Napi::Object ro = r.As<Napi::Object>();
    c.recovered.push_back(Fragment{uint_value(env, ro.Get("offset"), "recovered"), uint_value(env, ro.Get("length"), "recovered")});
  }
  // Scope free: ranges not to scan (what an undelete recovered).
  Napi::Array exclude = array_option(env, o, "exclude");
  for (uint32_t i = 0; i < exclude.Length(); i++) {
    Napi::Value r = exclude.Get(i);
    if (!r.IsObject()) throw invalid_arg(env, "exclude must hold {offset, length} objects");
    Napi::Object ro = r.As<Napi::Object>();
    const uint64_t off = uint_value(env, ro.Get("offset"), "exclude"), len = uint_value(env, ro.Get("length"), "exclude");
    c.exclude.push_back({off, off + len});
  }
  if (!o.Get("rangeStart").IsUndefined()) c.range_start = uint_value(env, o.Get("rangeStart"), "rangeStart");
  if (!blocksmith::fs::valid_scope(c.scope)) throw invalid_arg(env, "scope must be auto, free, all or allocated, not '" + c.scope + "'");
  Napi::Array known = array_option(env, o, "known");
  for (uint32_t i = 0; i < known.Length(); i++) {
    Napi::Value k = known.Get(i);
    if (!k.IsObject() || !k.As<Napi::Object>().Get("sha256").IsString()) throw invalid_arg(env, "known must hold {sha256, offset} objects");
    Napi::Object ko = k.As<Napi::Object>();
    c.known.emplace_back(ko.Get("sha256").As<Napi::String>().Utf8Value(), uint_value(env, ko.Get("offset"), "known"));
  }
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
      if (f.fragments[i].zeros) fr.Set("zeros", true);
      frags.Set(static_cast<uint32_t>(i), fr);
    }
    o.Set("fragments", frags);
  }
  if (!f.info.exif.make.empty()) o.Set("make", f.info.exif.make);
  if (!f.info.exif.model.empty()) o.Set("model", f.info.exif.model);
  if (!f.info.exif.date.empty()) o.Set("date", f.info.exif.date);
  return o;
}

// The scope used, why, and the bytes in and out of it (guest_fs/scan_scope.h).
Napi::Object scope_object(Napi::Env env, const blocksmith::fs::ScopeReport& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("requested", s.requested);
  o.Set("used", s.used);
  if (!s.reason.empty()) o.Set("reason", s.reason);
  o.Set("bytesInScope", static_cast<double>(s.bytes_in_scope));
  o.Set("bytesSkipped", static_cast<double>(s.bytes_skipped));
  Napi::Array vols = Napi::Array::New(env, s.volumes.size());
  for (size_t i = 0; i < s.volumes.size(); i++) {
    const auto& v = s.volumes[i];
    Napi::Object vo = Napi::Object::New(env);
    if (v.partition) vo.Set("partition", v.partition);
    vo.Set("filesystem", v.filesystem.empty() ? env.Null() : Napi::String::New(env, v.filesystem));
    vo.Set("offset", static_cast<double>(v.offset));
    vo.Set("length", static_cast<double>(v.length));
    if (!v.filesystem.empty() && v.problem.empty()) {
      vo.Set("freeBytes", static_cast<double>(v.free_bytes));
      vo.Set("allocatedBytes", static_cast<double>(v.allocated_bytes));
    }
    if (!v.problem.empty()) vo.Set("problem", v.problem);
    vols.Set(static_cast<uint32_t>(i), vo);
  }
  o.Set("volumes", vols);
  return o;
}

Napi::Object report_object(Napi::Env env, const CarveReport& rep) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("source", rep.source);
  o.Set("size", static_cast<double>(rep.size));
  o.Set("start", static_cast<double>(rep.start));
  o.Set("end", static_cast<double>(rep.end));
  o.Set("nextOffset", static_cast<double>(rep.next_offset));
  o.Set("bytesScanned", static_cast<double>(rep.bytes_scanned));
  if (!rep.scope.used.empty()) o.Set("scope", scope_object(env, rep.scope));
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
  Napi::Array held = Napi::Array::New(env, rep.held.size());
  for (size_t i = 0; i < rep.held.size(); i++) held.Set(static_cast<uint32_t>(i), static_cast<double>(rep.held[i]));
  o.Set("held", held);
  Napi::Array rec = Napi::Array::New(env, rep.recovered.size());
  for (size_t i = 0; i < rep.recovered.size(); i++) {
    Napi::Object r = Napi::Object::New(env);
    r.Set("offset", static_cast<double>(rep.recovered[i].offset));
    r.Set("length", static_cast<double>(rep.recovered[i].length));
    rec.Set(static_cast<uint32_t>(i), r);
  }
  o.Set("recovered", rec);
  return o;
}

// A file written, or a checkpoint.
struct Event {
  bool checkpoint = false;
  CarvedFile file;
  CarveReport state;
};

void deliver_event(Napi::Env env, Napi::Function cb, Event& ev) {
  if (ev.checkpoint)
    cb.Call({env.Null(), report_object(env, ev.state)});
  else
    cb.Call({file_object(env, ev.file)});
}

Napi::Value Carve(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string source = string_arg(env, info[0], "source");
  CarveOptions opts = read_carve_options(env, info[1]);
  bool seek_hole = opts.use_seek_hole;
  auto q = std::make_shared<EventQueue<Event>>(deliver_event);
  q->start(env, info[3], "blocksmith-carve-files");
  return start_job(env, info[2], [source, opts, seek_hole, q](blocksmith::Control& control) -> ResultBuilder {
    auto sink = [q](const CarvedFile& f) {
      auto ev = std::make_unique<Event>();
      ev->file = f;
      q->post(std::move(ev));
    };
    CarveOptions o = opts;
    if (q->active())
      o.checkpoint = [q](const CarveReport& state) {
        auto ev = std::make_unique<Event>();
        ev->checkpoint = true;
        ev->state = state;
        q->post(std::move(ev));
      };
    CarveReport rep;
    try {
      auto reader = blocksmith::FileReader::open(source, seek_hole);
      rep = blocksmith::carve::carve(reader, o, control, sink);
    } catch (...) {
      q->finish();
      throw;
    }
    q->finish();
    return [rep](Napi::Env env) -> Napi::Value { return report_object(env, rep); };
  });
}

}  // namespace

void register_carve(Napi::Env env, Napi::Object exports) {
  exports.Set("carve", Napi::Function::New(env, Carve, "carve"));
}

}  // namespace binding
