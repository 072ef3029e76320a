// The one place where core errors become JS errors. JS sees plain Error
// objects with Node's fields (code, errno, syscall, path); src/api/errors.ts
// turns them into BlocksmithError / AbortError.
#pragma once

#include <napi.h>

#include <exception>

namespace binding {

// Converts the exception currently being handled (call inside catch).
Napi::Error to_js_error(Napi::Env env, std::exception_ptr error);

// Validation failure of an argument: code ERR_INVALID_ARG_VALUE.
Napi::Error invalid_arg(Napi::Env env, const std::string& message);

}  // namespace binding
