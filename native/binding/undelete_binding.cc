// undelete(source, options, onProgress) -> { promise, cancel }: the deleted
// files of the source's FAT/exFAT/ext2/3/4 volumes, listed or recovered by name
// (core/operations/undelete.h). Each file is streamed to onFile as it is
// done (the TS side keeps report.json current with them); the final report
// holds every file again.
#include <napi.h>

#include <memory>
#include <mutex>

#include "args.h"
#include "event_queue.h"
#include "core/operations/undelete.h"
#include "core/readers/file_reader.h"
#include "errors.h"
#include "exports.h"
#include "job.h"
#include "option_fields.h"
#include "option_tables.h"

namespace binding {
namespace {

using namespace blocksmith::undelete;
namespace fs = blocksmith::fs;

Napi::Object volume_object(Napi::Env env, const fs::FoundVolume& v) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("partition", v.partition);
  if (!v.type.empty()) o.Set("partitionType", v.type);
  o.Set("offset", static_cast<double>(v.offset));
  o.Set("length", static_cast<double>(v.length));
  o.Set("read", v.read);
  if (!v.read) {
    o.Set("problem", v.problem);
    if (!v.error_code.empty()) o.Set("errorCode", v.error_code);
    return o;
  }
  const fs::VolumeFiles& f = v.files;
  o.Set("filesystem", f.filesystem);
  o.Set("label", f.label);
  o.Set("clusterSize", f.cluster_size);
  o.Set("clusterCount", static_cast<double>(f.cluster_count));
  o.Set("dataOffset", static_cast<double>(f.data_offset));
  o.Set("allocatedBytes", static_cast<double>(f.allocated.total()));
  o.Set("freeBytes", static_cast<double>(f.free.total()));
  o.Set("liveFiles", static_cast<double>(f.live_files));
  o.Set("liveDirectories", static_cast<double>(f.live_directories));
  o.Set("deleted", static_cast<double>(f.deleted.size()));
  Napi::Array problems = Napi::Array::New(env, f.problems.size());
  for (size_t i = 0; i < f.problems.size(); i++) problems.Set(static_cast<uint32_t>(i), f.problems[i]);
  o.Set("problems", problems);
  return o;
}

Napi::Object file_object(Napi::Env env, const fs::DeletedFile& d, const UndeletedFile& f) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("volume", f.volume);
  o.Set("path", d.path);
  if (!f.written_as.empty()) o.Set("writtenAs", f.written_as);
  o.Set("directory", d.directory);
  o.Set("parentDeleted", d.parent_deleted);
  // FAT 8.3 names: the first character (lost on delete) taken from the live names around it.
  if (d.name_guessed) o.Set("nameGuessed", true);
  o.Set("size", static_cast<double>(d.size));
  Napi::Object times = Napi::Object::New(env);
  bool local = false;
  auto put = [&](const char* key, const fs::Timestamp& t) {
    if (!t.known) return;
    times.Set(key, iso_time(t));
    local = local || t.local_time;
  };
  put("modified", d.times.modified);
  put("accessed", d.times.accessed);
  put("created", d.times.created);
  o.Set("times", times);
  o.Set("localTime", local);
  o.Set("method", "metadata");
  o.Set("rule", rule_name(d.rule));
  o.Set("firstCluster", static_cast<double>(d.first_cluster));
  // ext: the inode, and where the metadata that located its bytes came from.
  if (d.inode != 0) o.Set("inode", static_cast<double>(d.inode));
  if (!d.found_in.empty()) o.Set("foundIn", d.found_in);
  o.Set("status", f.status);
  if (d.valid_size < d.size) o.Set("validSize", static_cast<double>(d.valid_size));
  if (d.overwritten_bytes > 0) o.Set("overwrittenBytes", static_cast<double>(d.overwritten_bytes));
  if (!f.sha256.empty()) o.Set("sha256", f.sha256);
  if (!f.jpeg.empty()) o.Set("jpeg", f.jpeg);
  if (!f.reason.empty()) o.Set("reason", f.reason);
  if (!f.fragments.empty()) {
    // reassembled: where the bytes written were found (the extents are the plan that did not decode).
    o.Set("recoveredBy", "reassembled");
    Napi::Array frags = Napi::Array::New(env, f.fragments.size());
    for (size_t i = 0; i < f.fragments.size(); i++) {
      Napi::Object e = Napi::Object::New(env);
      e.Set("offset", static_cast<double>(f.fragments[i].offset));
      e.Set("length", static_cast<double>(f.fragments[i].length));
      frags.Set(static_cast<uint32_t>(i), e);
    }
    o.Set("fragments", frags);
  }
  Napi::Array ext = Napi::Array::New(env, d.extents.size());
  for (size_t i = 0; i < d.extents.size(); i++) {
    Napi::Object e = Napi::Object::New(env);
    e.Set("offset", static_cast<double>(d.extents[i].begin));
    e.Set("length", static_cast<double>(d.extents[i].end - d.extents[i].begin));
    ext.Set(static_cast<uint32_t>(i), e);
  }
  o.Set("extents", ext);
  return o;
}

Napi::Object report_object(Napi::Env env, const UndeleteReport& rep) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("source", rep.source);
  o.Set("size", static_cast<double>(rep.size));
  o.Set("scheme", rep.found.scheme);
  if (!rep.found.table_problem.empty()) o.Set("tableProblem", rep.found.table_problem);
  Napi::Array vols = Napi::Array::New(env, rep.found.volumes.size());
  for (size_t i = 0; i < rep.found.volumes.size(); i++) vols.Set(static_cast<uint32_t>(i), volume_object(env, rep.found.volumes[i]));
  o.Set("volumes", vols);
  Napi::Array files = Napi::Array::New(env, rep.files.size());
  for (size_t i = 0; i < rep.files.size(); i++) files.Set(static_cast<uint32_t>(i), file_object(env, entry(rep, rep.files[i]), rep.files[i]));
  o.Set("files", files);
  o.Set("recovered", static_cast<double>(rep.recovered));
  o.Set("reassembled", static_cast<double>(rep.reassembled));
  o.Set("partial", static_cast<double>(rep.partial));
  o.Set("overwritten", static_cast<double>(rep.overwritten));
  o.Set("empty", static_cast<double>(rep.empty));
  o.Set("unreadable", static_cast<double>(rep.unreadable));
  o.Set("directories", static_cast<double>(rep.directories));
  o.Set("bytesWritten", static_cast<double>(rep.bytes_written));
  o.Set("seconds", rep.seconds);
  o.Set("cancelled", rep.cancelled);
  return o;
}

// A file done (written or listed): copies, as the worker goes on. The first
// one also carries the volumes, so a report written mid-run can say them.
struct Event {
  fs::DeletedFile deleted;
  UndeletedFile file;
  std::unique_ptr<fs::SourceVolumes> volumes;
};

void deliver_event(Napi::Env env, Napi::Function cb, Event& ev) {
  Napi::Value vols = env.Undefined();
  if (ev.volumes) {
    Napi::Array a = Napi::Array::New(env, ev.volumes->volumes.size());
    for (size_t i = 0; i < ev.volumes->volumes.size(); i++) a.Set(static_cast<uint32_t>(i), volume_object(env, ev.volumes->volumes[i]));
    vols = a;
  }
  cb.Call({file_object(env, ev.deleted, ev.file), vols});
}

// undelete(source, options, onProgress, onFile?): onFile(file, volumes?) for
// each file as it is done (volumes with the first one).
Napi::Value Undelete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string source = string_arg(env, info[0], "source");
  UndeleteOptions opts = read_options<UndeleteOptions>(env, options_arg(env, info[1]), UndeleteOptions{});
  if (!opts.list && opts.out_dir.empty()) throw invalid_arg(env, "outDir is required unless list is set");
  auto q = std::make_shared<EventQueue<Event>>(deliver_event);
  q->start(env, info[3], "blocksmith-undelete-files");
  return start_job(env, info[2], [source, opts, q](blocksmith::Control& control) -> ResultBuilder {
    bool first = true;
    UndeleteSink sink = [q, &first](const UndeleteReport& rep, const UndeletedFile& f) {
      auto ev = std::make_unique<Event>();
      ev->deleted = entry(rep, f);
      ev->file = f;
      if (first) ev->volumes = std::make_unique<fs::SourceVolumes>(rep.found);
      first = false;
      q->post(std::move(ev));
    };
    std::shared_ptr<UndeleteReport> rep;
    try {
      auto reader = blocksmith::FileReader::open(source, true);
      refuse_mounted_read_write(reader.fd(), source);
      // Shared: the builder runs later, on the JS thread.
      rep = std::make_shared<UndeleteReport>(undelete(reader, opts, control, sink));
    } catch (...) {
      q->finish();
      throw;
    }
    q->finish();
    return [rep](Napi::Env env) -> Napi::Value { return report_object(env, *rep); };
  });
}

// checkUndeleteSource(source): throws (EBUSY, one line) when a filesystem
// of the source is mounted read-write, so that undelete and carve --undelete
// refuse before they create anything. Synchronous: an open and sysfs reads.
Napi::Value CheckUndeleteSource(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string source = string_arg(env, info[0], "source");
  try {
    auto reader = blocksmith::FileReader::open(source, true);
    refuse_mounted_read_write(reader.fd(), source);
  } catch (...) {
    throw to_js_error(env, std::current_exception());
  }
  return env.Undefined();
}

}  // namespace

void register_undelete(Napi::Env env, Napi::Object exports) {
  exports.Set("undelete", Napi::Function::New(env, Undelete, "undelete"));
  exports.Set("checkUndeleteSource", Napi::Function::New(env, CheckUndeleteSource, "checkUndeleteSource"));
}

}  // namespace binding
