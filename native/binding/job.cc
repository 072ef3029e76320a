#include "job.h"

#include <memory>
#include <thread>

#include "errors.h"

namespace binding {
namespace {

struct JobState {
  blocksmith::Control control;
  Napi::Promise::Deferred deferred;
  Napi::ThreadSafeFunction tsfn;
  bool has_progress = false;
  explicit JobState(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
};

struct Progress {
  uint64_t done, total;
};

}  // namespace

Napi::Object start_job(Napi::Env env, Napi::Value on_progress, Work work) {
  auto state = std::make_shared<JobState>(env);
  state->has_progress = on_progress.IsFunction();
  Napi::Function callback = state->has_progress ? on_progress.As<Napi::Function>()
                                                : Napi::Function::New(env, [](const Napi::CallbackInfo&) {});
  // The tsfn keeps the event loop alive until the job has settled.
  state->tsfn = Napi::ThreadSafeFunction::New(env, callback, "blocksmith-job", 0, 1);

  if (state->has_progress) {
    state->control.on_progress = [state](uint64_t done, uint64_t total) {
      auto* p = new Progress{done, total};
      napi_status st = state->tsfn.NonBlockingCall(p, [](Napi::Env env, Napi::Function cb, Progress* p) {
        std::unique_ptr<Progress> owned(p);
        if (env != nullptr && cb != nullptr) {
          cb.Call({Napi::Number::New(env, static_cast<double>(owned->done)),
                   Napi::Number::New(env, static_cast<double>(owned->total))});
        }
      });
      if (st != napi_ok) delete p;
    };
  }

  std::thread([state, work = std::move(work)]() {
    ResultBuilder builder;
    std::exception_ptr error;
    try {
      builder = work(state->control);
    } catch (...) {
      error = std::current_exception();
    }
    state->control.on_progress = nullptr;
    auto settle = [state, builder = std::move(builder), error](Napi::Env env, Napi::Function) {
      if (env == nullptr) return;  // environment shutting down
      Napi::HandleScope scope(env);
      if (error) {
        state->deferred.Reject(to_js_error(env, error).Value());
        return;
      }
      try {
        state->deferred.Resolve(builder(env));
      } catch (const Napi::Error& e) {
        state->deferred.Reject(e.Value());
      } catch (...) {
        state->deferred.Reject(to_js_error(env, std::current_exception()).Value());
      }
    };
    state->tsfn.BlockingCall(settle);
    state->tsfn.Release();
  }).detach();

  Napi::Object handle = Napi::Object::New(env);
  handle.Set("promise", state->deferred.Promise());
  handle.Set("cancel", Napi::Function::New(env, [state](const Napi::CallbackInfo&) { state->control.cancel(); }));
  return handle;
}

}  // namespace binding
