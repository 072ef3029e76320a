#include "errors.h"

#include "core/base/error.h"

namespace binding {

Napi::Error to_js_error(Napi::Env env, std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const blocksmith::Error& e) {
    Napi::Error js = Napi::Error::New(env, e.what());
    js.Set("code", e.code());
    if (e.errnum() != 0) js.Set("errno", Napi::Number::New(env, -e.errnum()));  // Node reports negative errno
    if (!e.syscall().empty()) js.Set("syscall", e.syscall());
    if (!e.path().empty()) js.Set("path", e.path());
    return js;
  } catch (const blocksmith::Cancelled& e) {
    Napi::Error js = Napi::Error::New(env, e.what());
    js.Set("code", "ABORT_ERR");
    js.Set("name", "AbortError");
    if (!e.note().empty()) js.Set("note", e.note());
    return js;
  } catch (const std::bad_alloc&) {
    Napi::Error js = Napi::Error::New(env, "out of memory");
    js.Set("code", "ENOMEM");
    return js;
  } catch (const std::exception& e) {
    Napi::Error js = Napi::Error::New(env, std::string("internal error: ") + e.what());
    js.Set("code", "ERR_INTERNAL");
    return js;
  }
}

Napi::Error invalid_arg(Napi::Env env, const std::string& message) {
  Napi::Error js = Napi::TypeError::New(env, message);
  js.Set("code", "ERR_INVALID_ARG_VALUE");
  return js;
}

}  // namespace binding
