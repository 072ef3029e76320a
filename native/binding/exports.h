// One register function per exported area; addon.cc calls them all.
#pragma once

#include <napi.h>

namespace binding {

void register_zero(Napi::Env env, Napi::Object exports);
void register_scan(Napi::Env env, Napi::Object exports);
void register_sparsify(Napi::Env env, Napi::Object exports);
void register_rbd(Napi::Env env, Napi::Object exports);
void register_carve(Napi::Env env, Napi::Object exports);
void register_host(Napi::Env env, Napi::Object exports);
void register_defaults(Napi::Env env, Napi::Object exports);
void register_undelete(Napi::Env env, Napi::Object exports);

}  // namespace binding
