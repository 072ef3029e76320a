// rbdImport / rbdExport / rbdInfo / rbdSparsify / rbdCluster / rbdCreate / rbdRemove -> { promise, cancel }.
// librbd is loaded on
// first use, so every other export works on machines without Ceph.
#include <napi.h>

#include "args.h"
#include "core/operations/rbd_copy.h"
#include "core/rbd/image_admin.h"
#include "core/operations/rbd_sparsify.h"
#include "exports.h"
#include "format_arg.h"
#include "job.h"
#include "option_fields.h"
#include "option_tables.h"
#include "report_fields.h"

namespace binding {
namespace {

namespace rbd = blocksmith::rbd;

// `image_required` false: a pool and how to reach it (rbdCluster).
rbd::Target read_target(Napi::Env env, Napi::Value v, bool image_required = true) {
  if (!v.IsObject()) throw invalid_arg(env, "target must be an object {pool, image, ...}");
  rbd::Target t = read_options<rbd::Target>(env, v.As<Napi::Object>());
  if (t.pool.empty() || (image_required && t.image.empty())) throw invalid_arg(env, "an RBD target needs a pool and an image name");
  return t;
}

Napi::Value RbdImport(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string src = string_arg(env, info[0], "source");
  rbd::Target t = read_target(env, info[1]);
  auto opt = read_options<rbd::ImportOptions>(env, options_arg(env, info[2]));
  return start_job(env, info[3], [src, t, opt](blocksmith::Control& control) -> ResultBuilder {
    rbd::ImportReport r = rbd::copy_to_rbd(src, t, opt, control);
    return [r](Napi::Env env) -> Napi::Value {
      Napi::Object o = Napi::Object::New(env);
      o.Set("source", r.source);
      o.Set("format", r.format);
      o.Set("backingChain", backing_chain_to_js(env, r.backing_chain));
      o.Set("image", r.image);
      o.Set("size", static_cast<double>(r.size));
      set_totals(o, r.totals);
      o.Set("writes", static_cast<double>(r.writes));
      o.Set("objectSize", static_cast<double>(r.object_size));
      o.Set("verified", r.verified);
      o.Set("seconds", r.seconds);
      o.Set("verifySeconds", r.verify_seconds);
      o.Set("monHost", r.mon_host);
      o.Set("user", r.user);
      Napi::Array w = Napi::Array::New(env, r.warnings.size());
      for (size_t i = 0; i < r.warnings.size(); ++i) w.Set(static_cast<uint32_t>(i), r.warnings[i]);
      o.Set("warnings", w);
      return o;
    };
  });
}

Napi::Value RbdExport(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  rbd::Target t = read_target(env, info[0]);
  std::string dst = string_arg(env, info[1], "target");
  auto opt = read_options<rbd::ExportOptions>(env, options_arg(env, info[2]));
  return start_job(env, info[3], [t, dst, opt](blocksmith::Control& control) -> ResultBuilder {
    rbd::ExportReport r = rbd::copy_from_rbd(t, dst, opt, control);
    return [r](Napi::Env env) -> Napi::Value {
      Napi::Object o = Napi::Object::New(env);
      o.Set("image", r.image);
      o.Set("target", r.target);
      o.Set("size", static_cast<double>(r.size));
      o.Set("allocatedInImage", static_cast<double>(r.allocated_in_image));
      set_totals(o, r.totals);
      o.Set("allocatedAfter", static_cast<double>(r.allocated_after));
      o.Set("seconds", r.seconds);
      return o;
    };
  });
}

Napi::Value RbdInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  rbd::Target t = read_target(env, info[0]);
  return start_job(env, info[1], [t](blocksmith::Control&) -> ResultBuilder {
    rbd::RbdInfo r = rbd::rbd_info(t);
    return [r](Napi::Env env) -> Napi::Value {
      Napi::Object o = Napi::Object::New(env);
      o.Set("image", r.image);
      o.Set("size", static_cast<double>(r.size));
      o.Set("used", static_cast<double>(r.used));
      o.Set("objectSize", static_cast<double>(r.object_size));
      return o;
    };
  });
}

Napi::Array strings_to_js(Napi::Env env, const std::vector<std::string>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) a.Set(static_cast<uint32_t>(i), v[i]);
  return a;
}

// rbdCluster(target, imageNames): what migrate needs to know before it
// changes anything (the pool opens, the key works, which names are taken)
// and to describe the cluster to libvirt (its monitors).
Napi::Value RbdCluster(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  rbd::Target t = read_target(env, info[0], false);
  std::vector<std::string> names;
  if (!info[1].IsArray()) throw invalid_arg(env, "imageNames must be an array of strings");
  Napi::Array a = info[1].As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) names.push_back(string_arg(env, a.Get(i), "an image name"));
  return start_job(env, info[2], [t, names](blocksmith::Control&) -> ResultBuilder {
    rbd::ClusterFacts f = rbd::cluster_facts(t, names);
    return [f](Napi::Env env) -> Napi::Value {
      Napi::Object o = Napi::Object::New(env);
      o.Set("monHost", f.mon_host);
      o.Set("monmapJson", f.monmap_json);
      o.Set("keyring", f.keyring);
      o.Set("user", f.user);
      o.Set("existing", strings_to_js(env, f.existing));
      return o;
    };
  });
}

Napi::Value RbdSparsify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  rbd::Target t = read_target(env, info[0]);
  auto opt = read_options<rbd::RbdSparsifyOptions>(env, options_arg(env, info[1]));
  return start_job(env, info[2], [t, opt](blocksmith::Control& control) -> ResultBuilder {
    rbd::RbdSparsifyReport r = rbd::sparsify_rbd_in_place(t, opt, control);
    return [r](Napi::Env env) -> Napi::Value {
      Napi::Object o = Napi::Object::New(env);
      o.Set("image", r.image);
      o.Set("size", static_cast<double>(r.size));
      o.Set("objectSize", static_cast<double>(r.object_size));
      o.Set("usedBefore", static_cast<double>(r.used_before));
      o.Set("usedAfter", static_cast<double>(r.used_after));
      set_totals(o, r.totals);
      o.Set("discards", static_cast<double>(r.discards));
      o.Set("discardedBytes", static_cast<double>(r.discarded_bytes));
      o.Set("method", r.method);
      o.Set("watchers", strings_to_js(env, r.watchers));
      o.Set("warnings", strings_to_js(env, r.warnings));
      o.Set("seconds", r.seconds);
      o.Set("dryRun", r.dry_run);
      return o;
    };
  });
}

// rbdCreate(target, size): an empty image of exactly that size, never over an existing one.
Napi::Value RbdCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  rbd::Target t = read_target(env, info[0]);
  if (!info[1].IsNumber()) throw invalid_arg(env, "size must be a number of bytes");
  const double size = info[1].As<Napi::Number>().DoubleValue();
  if (!(size >= 0) || size > 9007199254740991.0 || size != static_cast<double>(static_cast<uint64_t>(size)))
    throw invalid_arg(env, "size must be a whole number of bytes");
  return start_job(env, info[2], [t, size](blocksmith::Control&) -> ResultBuilder {
    rbd::create_image(t, static_cast<uint64_t>(size));
    return [](Napi::Env env) -> Napi::Value { return env.Undefined(); };
  });
}

// rbdRemove(target): removes an image (migrate's cleanup of images it created).
Napi::Value RbdRemove(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  rbd::Target t = read_target(env, info[0]);
  return start_job(env, info[1], [t](blocksmith::Control&) -> ResultBuilder {
    rbd::remove_image(t);
    return [](Napi::Env env) -> Napi::Value { return env.Undefined(); };
  });
}

}  // namespace

void register_rbd(Napi::Env env, Napi::Object exports) {
  exports.Set("rbdImport", Napi::Function::New(env, RbdImport, "rbdImport"));
  exports.Set("rbdExport", Napi::Function::New(env, RbdExport, "rbdExport"));
  exports.Set("rbdInfo", Napi::Function::New(env, RbdInfo, "rbdInfo"));
  exports.Set("rbdCluster", Napi::Function::New(env, RbdCluster, "rbdCluster"));
  exports.Set("rbdCreate", Napi::Function::New(env, RbdCreate, "rbdCreate"));
  exports.Set("rbdRemove", Napi::Function::New(env, RbdRemove, "rbdRemove"));
  exports.Set("rbdSparsify", Napi::Function::New(env, RbdSparsify, "rbdSparsify"));
}

}  // namespace binding
