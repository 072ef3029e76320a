// sparsify(path, options, onProgress) and sparseCopy(src, dst, options,
// onProgress) -> { promise, cancel }.
#include <napi.h>

#include "args.h"
#include "core/readers/file_reader.h"
#include "core/host/mount_check.h"
#include "core/operations/sparsify.h"
#include "exports.h"
#include "format_arg.h"
#include "job.h"
#include "option_fields.h"
#include "option_tables.h"
#include "report_fields.h"

namespace binding {
namespace {

Napi::Array volumes_to_js(Napi::Env env, const blocksmith::fs::Inspection& in) {
  Napi::Array a = Napi::Array::New(env, in.volumes.size());
  for (size_t i = 0; i < in.volumes.size(); ++i) {
    const auto& v = in.volumes[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("number", v.number);
    o.Set("type", v.type);
    o.Set("name", v.name);
    o.Set("offset", static_cast<double>(v.offset));
    o.Set("length", static_cast<double>(v.length));
    o.Set("filesystem", v.filesystem);
    o.Set("label", v.label);
    o.Set("action", v.action);
    o.Set("blockSize", v.block_size);
    o.Set("clusterSize", v.cluster_size);
    o.Set("blocksCount", static_cast<double>(v.blocks_count));
    o.Set("freeBlocks", static_cast<double>(v.free_blocks));
    o.Set("freeBytes", static_cast<double>(v.free_bytes));
    o.Set("usedBytes", static_cast<double>(v.used_bytes));
    o.Set("groups", v.groups);
    o.Set("uninitGroups", v.uninit_groups);
    Napi::Array f = Napi::Array::New(env, v.features.size());
    for (size_t k = 0; k < v.features.size(); ++k) f.Set(static_cast<uint32_t>(k), v.features[k]);
    o.Set("features", f);
    if (v.action == "refused") {
      Napi::Object e = Napi::Object::New(env);
      e.Set("code", v.error_code);
      e.Set("message", v.reason);
      o.Set("error", e);
    }
    if (v.action == "free-blocks") {
      Napi::Object c = Napi::Object::New(env);
      c.Set("inodes", static_cast<double>(v.verified.inodes));
      c.Set("blocks", static_cast<double>(v.verified.blocks));
      c.Set("treeBlocks", static_cast<double>(v.verified.tree_blocks));
      c.Set("seconds", v.verified.seconds);
      o.Set("verified", c);
    }
    a.Set(static_cast<uint32_t>(i), o);
  }
  return a;
}

ResultBuilder report_builder(const blocksmith::SparsifyReport& r) {
  return [r](Napi::Env env) -> Napi::Value {
    Napi::Object o = Napi::Object::New(env);
    o.Set("source", r.source);
    if (!r.target.empty()) o.Set("target", r.target);
    o.Set("kind", r.kind == blocksmith::SourceKind::block_device ? "block-device" : "file");
    o.Set("size", static_cast<double>(r.size));
    o.Set("allocatedBefore", static_cast<double>(r.allocated_before));
    o.Set("allocatedAfter", static_cast<double>(r.allocated_after));
    set_totals(o, r.totals);
    o.Set("punchCalls", static_cast<double>(r.punch_calls));
    o.Set("punchedBytes", static_cast<double>(r.punched_bytes));
    if (r.target.empty()) o.Set("reclaimableBytes", static_cast<double>(r.reclaimable_bytes));
    o.Set("seconds", r.seconds);
    o.Set("dryRun", r.dry_run);
    if (!r.target.empty()) {
      o.Set("format", r.format);
      o.Set("backingChain", backing_chain_to_js(env, r.backing_chain));
    }
    Napi::Array w = Napi::Array::New(env, r.warnings.size());
    for (size_t i = 0; i < r.warnings.size(); ++i) w.Set(static_cast<uint32_t>(i), r.warnings[i]);
    o.Set("warnings", w);
    if (r.fs) {
      o.Set("freeBytes", static_cast<double>(r.free_bytes));
      o.Set("partitionScheme", r.inspection.scheme);
      o.Set("gptBackupUsed", r.inspection.gpt_backup_used);
      o.Set("volumes", volumes_to_js(env, r.inspection));
    }
    return o;
  };
}

Napi::Value Sparsify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = string_arg(env, info[0], "path");
  auto opts = read_options<blocksmith::SparsifyOptions>(env, options_arg(env, info[1]));
  return start_job(env, info[2], [path, opts](blocksmith::Control& control) {
    return report_builder(blocksmith::sparsify_in_place(path, opts, control));
  });
}

Napi::Value SparseCopy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string src = string_arg(env, info[0], "source");
  std::string dst = string_arg(env, info[1], "target");
  auto opts = read_options<blocksmith::SparsifyOptions>(env, options_arg(env, info[2]));
  return start_job(env, info[3], [src, dst, opts](blocksmith::Control& control) {
    return report_builder(blocksmith::sparse_copy(src, dst, opts, control));
  });
}

// inspectFilesystems(path, onProgress): the partitions and ext filesystems
// `sparsify --fs` would use, read only.
Napi::Value InspectFilesystems(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = string_arg(env, info[0], "path");
  return start_job(env, info[1], [path](blocksmith::Control&) -> ResultBuilder {
    blocksmith::FileReader reader = blocksmith::FileReader::open(path, true);
    uint32_t ss = reader.info().kind == blocksmith::SourceKind::block_device && reader.info().logical_sector_size
                      ? reader.info().logical_sector_size
                      : 512;
    // Uses first: a mounted filesystem is reported as in use, not by what
    // its (stale) state on disk says.
    auto uses = blocksmith::host::filesystem_uses(reader.fd());
    auto in = blocksmith::fs::inspect_filesystems(reader, ss, &uses);
    uint64_t size = reader.size();
    return [in, path, size](Napi::Env env) -> Napi::Value {
      Napi::Object o = Napi::Object::New(env);
      o.Set("path", path);
      o.Set("size", static_cast<double>(size));
      o.Set("partitionScheme", in.scheme);
      o.Set("gptBackupUsed", in.gpt_backup_used);
      o.Set("freeBytes", static_cast<double>(in.free.total()));
      o.Set("volumes", volumes_to_js(env, in));
      if (!in.error_code.empty()) {
        Napi::Object e = Napi::Object::New(env);
        e.Set("code", in.error_code);
        e.Set("message", in.reason);
        o.Set("error", e);
      }
      return o;
    };
  });
}

}  // namespace

void register_sparsify(Napi::Env env, Napi::Object exports) {
  exports.Set("inspectFilesystems", Napi::Function::New(env, InspectFilesystems, "inspectFilesystems"));
  exports.Set("sparsify", Napi::Function::New(env, Sparsify, "sparsify"));
  exports.Set("sparseCopy", Napi::Function::New(env, SparseCopy, "sparseCopy"));
}

}  // namespace binding
