// The addon's export table. Each area registers itself from its own file.
#include <napi.h>

#include "exports.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  binding::register_zero(env, exports);
  binding::register_scan(env, exports);
  binding::register_sparsify(env, exports);
  binding::register_rbd(env, exports);
  binding::register_carve(env, exports);
  binding::register_host(env, exports);
  binding::register_defaults(env, exports);
  binding::register_undelete(env, exports);
  return exports;
}

NODE_API_MODULE(blocksmith, Init)
