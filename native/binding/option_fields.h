// Core option structs as JS options objects, in one place per struct.
//
// Each option struct that crosses the seam has one field table
// (option_tables.h): `fields(S&, f)` calls f("jsName", member) once per
// option. From that one table the binding
//   - reads a JS options object (read_options<S>): an option is read only when
//     JS passes it; otherwise the member keeps its default from the core
//     struct (the one place a default is written), and
//   - builds the `defaults` export (defaults_object<S>) from a
//     default-constructed struct, which the CLI's --help shows.
// A member of a type with no JS conversion here does not compile.
#pragma once

#include <napi.h>

#include <string>
#include <type_traits>

#include "args.h"
#include "format_arg.h"

namespace binding {

// --- one JS value into a member, by the member's type ---

inline void read_value(Napi::Env, Napi::Value v, const char*, bool& out) { out = v.ToBoolean().Value(); }

template <class T>
  requires(std::is_integral_v<T> && !std::is_same_v<T, bool>)
void read_value(Napi::Env env, Napi::Value v, const char* key, T& out) {
  out = static_cast<T>(uint_arg(env, v, key));
}

// null reads as the empty string ("not set").
inline void read_value(Napi::Env env, Napi::Value v, const char* key, std::string& out) {
  out = v.IsNull() ? std::string() : string_arg(env, v, key);
}

inline void read_value(Napi::Env env, Napi::Value v, const char*, blocksmith::ImageFormat& out) {
  out = format_value(env, v);
}

inline void read_value(Napi::Env env, Napi::Value v, const char*, blocksmith::BackingPolicy& out) {
  out = backing_value(env, v);
}

// --- a default as a JS value; empty: not exported (no single JS value) ---

inline Napi::Value default_value(Napi::Env env, bool v) { return Napi::Boolean::New(env, v); }

template <class T>
  requires(std::is_integral_v<T> && !std::is_same_v<T, bool>)
Napi::Value default_value(Napi::Env env, T v) {
  return Napi::Number::New(env, static_cast<double>(v));
}

inline Napi::Value default_value(Napi::Env env, const std::string& v) { return Napi::String::New(env, v); }
// "detected" and "the default policy": said in words where they are documented.
inline Napi::Value default_value(Napi::Env, blocksmith::ImageFormat) { return Napi::Value(); }
inline Napi::Value default_value(Napi::Env, const blocksmith::BackingPolicy&) { return Napi::Value(); }

// --- whole structs through their field table ---

// The options JS passed, over the core struct's defaults; fields are read in
// table order (so the first bad one is the one reported).
template <class S>
S read_options(Napi::Env env, Napi::Object opts, S s = S{}) {
  fields(s, [&](const char* key, auto& member) {
    Napi::Value v = opts.Get(key);
    if (!v.IsUndefined()) read_value(env, v, key, member);
  });
  return s;
}

template <class S>
Napi::Object defaults_object(Napi::Env env) {
  S s{};
  Napi::Object o = Napi::Object::New(env);
  fields(s, [&](const char* key, auto& member) {
    Napi::Value v = default_value(env, member);
    if (!v.IsEmpty()) o.Set(key, v);
  });
  return o;
}

}  // namespace binding
