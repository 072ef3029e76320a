// The `format` option ("raw" | "qcow2" | undefined = detect) and the image
// description (detected format, qcow2 details) as JS values.
#pragma once

#include <napi.h>

#include "args.h"
#include "core/image_open.h"

namespace binding {

inline blocksmith::ImageFormat format_option(Napi::Env env, Napi::Object opts) {
  Napi::Value v = opts.Get("format");
  if (v.IsUndefined() || v.IsNull()) return blocksmith::ImageFormat::automatic;
  std::string s = string_arg(env, v, "format");
  if (s != "raw" && s != "qcow2" && s != "auto") throw invalid_arg(env, "format must be 'raw' or 'qcow2', got '" + s + "'");
  return blocksmith::parse_image_format(s);
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
    Napi::Array chain = Napi::Array::New(env, d.backing_chain.size());
    for (size_t i = 0; i < d.backing_chain.size(); ++i) {
      Napi::Object b = Napi::Object::New(env);
      b.Set("path", d.backing_chain[i]);
      if (i < d.backing_formats.size()) b.Set("format", d.backing_formats[i]);
      chain.Set(static_cast<uint32_t>(i), b);
    }
    o.Set("backingChain", chain);
  }
  return o;
}

}  // namespace binding
