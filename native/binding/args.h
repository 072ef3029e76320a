// Small helpers to read arguments once, on the JS thread, into plain C++.
#pragma once

#include <napi.h>

#include <string>

#include "errors.h"

namespace binding {

// Bytes of a Buffer, TypedArray, DataView or ArrayBuffer.
struct ByteView {
  const uint8_t* data;
  size_t size;
};

inline ByteView byte_view(Napi::Env env, Napi::Value v, const char* name) {
  if (v.IsTypedArray()) {
    auto ta = v.As<Napi::TypedArray>();
    auto ab = ta.ArrayBuffer();
    return {static_cast<const uint8_t*>(ab.Data()) + ta.ByteOffset(), ta.ByteLength()};
  }
  if (v.IsDataView()) {
    auto dv = v.As<Napi::DataView>();
    return {static_cast<const uint8_t*>(dv.ArrayBuffer().Data()) + dv.ByteOffset(), dv.ByteLength()};
  }
  if (v.IsArrayBuffer()) {
    auto ab = v.As<Napi::ArrayBuffer>();
    return {static_cast<const uint8_t*>(ab.Data()), ab.ByteLength()};
  }
  throw invalid_arg(env, std::string(name) + " must be a Buffer, TypedArray, DataView or ArrayBuffer");
}

inline std::string string_arg(Napi::Env env, Napi::Value v, const char* name) {
  if (!v.IsString()) throw invalid_arg(env, std::string(name) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

// A non-negative integer option (the value given for `key`).
inline uint64_t uint_arg(Napi::Env env, Napi::Value v, const char* key) {
  if (!v.IsNumber()) throw invalid_arg(env, std::string(key) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d != static_cast<double>(static_cast<uint64_t>(d)))
    throw invalid_arg(env, std::string(key) + " must be a non-negative integer");
  return static_cast<uint64_t>(d);
}

// An options argument: its object, or an empty one (options are optional).
inline Napi::Object options_arg(Napi::Env env, Napi::Value v) {
  return v.IsObject() ? v.As<Napi::Object>() : Napi::Object::New(env);
}

}  // namespace binding
