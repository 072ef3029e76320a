// Runs one long core operation on a dedicated thread (not libuv's pool, which
// a few slow disks could exhaust) and exposes it to JS as
//   { promise, cancel() }.
// Progress is coalesced by the core (Control::tick) and posted through a
// thread-safe function; the worker thread never touches N-API.
#pragma once

#include <napi.h>

#include <functional>

#include "core/pipeline/control.h"

namespace binding {

// The work runs off-thread and returns a builder that makes the JS result on
// the JS thread. Anything it throws becomes the promise's rejection.
using ResultBuilder = std::function<Napi::Value(Napi::Env)>;
using Work = std::function<ResultBuilder(blocksmith::Control&)>;

// on_progress may be undefined; otherwise it is called with (done, total).
Napi::Object start_job(Napi::Env env, Napi::Value on_progress, Work work);

}  // namespace binding
