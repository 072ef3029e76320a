// The `format` option ("raw" | "qcow2" | undefined = detect), the
// `allowBacking` option (true | [dirs] | undefined) and the image
// description (detected format, qcow2 details, backing chain) as JS values.
#pragma once

#include <napi.h>

#include "args.h"
#include "core/readers/image_open.h"

namespace binding {

inline blocksmith::ImageFormat format_value(Napi::Env env, Napi::Value v) {
  if (v.IsUndefined() || v.IsNull()) return blocksmith::ImageFormat::automatic;
  std::string s = string_arg(env, v, "format");
  if (s != "raw" && s != "qcow2" && s != "auto") throw invalid_arg(env, "format must be 'raw' or 'qcow2', got '" + s + "'");
  return blocksmith::parse_image_format(s);
}

// allowBacking: true follows every backing file; an array of directories
// also allows regular files under them; false/undefined: the default policy.
inline blocksmith::BackingPolicy backing_value(Napi::Env env, Napi::Value v) {
  blocksmith::BackingPolicy p;
  if (v.IsUndefined() || v.IsNull()) return p;
  if (v.IsBoolean()) {
    p.allow_all = v.As<Napi::Boolean>().Value();
    return p;
  }
  if (!v.IsArray()) throw invalid_arg(env, "allowBacking must be true, false or an array of directories");
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) {
    std::string d = string_arg(env, a.Get(i), "allowBacking[]");
    if (d.empty()) throw invalid_arg(env, "allowBacking: a directory must not be empty");
    p.allowed_dirs.push_back(d);
  }
  return p;
}

inline Napi::Array backing_chain_to_js(Napi::Env env, const std::vector<blocksmith::BackingLink>& links) {
  Napi::Array chain = Napi::Array::New(env, links.size());
  for (size_t i = 0; i < links.size(); ++i) {
    Napi::Object b = Napi::Object::New(env);
    b.Set("name", links[i].name);
    b.Set("path", links[i].path);
    b.Set("format", links[i].format);
    chain.Set(static_cast<uint32_t>(i), b);
  }
  return chain;
}

inline Napi::Object describe_image(Napi::Env env, const blocksmith::ImageDescription& d) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("format", blocksmith::image_format_name(d.format));
  o.Set("fileSize", static_cast<double>(d.file_size));
  if (d.format == blocksmith::ImageFormat::qcow2) {
    o.Set("version", d.version);
    o.Set("clusterSize", static_cast<double>(d.cluster_size));
    o.Set("compression", d.compression);
    o.Set("extendedL2", d.extended_l2);
    o.Set("backingChain", backing_chain_to_js(env, d.backing_chain));
  }
  return o;
}

}  // namespace binding
