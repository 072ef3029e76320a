// sameStorage, blockDeviceSize, mountPointOf: facts about this machine's storage, from the
// core's host module (the TypeScript side does not derive them again).
// Synchronous: a few stat calls and sysfs reads.
#include <napi.h>
#include <sys/stat.h>

#include <cerrno>

#include "args.h"
#include "core/base/error.h"
#include "core/host/block_devices.h"
#include "core/host/mountinfo.h"
#include "core/host/same_storage.h"
#include "errors.h"
#include "exports.h"

namespace binding {
namespace {

// sameStorage(source, outDir) -> string (why they share storage) | null
Napi::Value SameStorage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string source = string_arg(env, info[0], "source");
  const std::string out_dir = string_arg(env, info[1], "outDir");
  try {
    auto why = blocksmith::host::same_storage(source, out_dir);
    return why ? Napi::Value(Napi::String::New(env, *why)) : env.Null();
  } catch (...) {
    throw to_js_error(env, std::current_exception());
  }
}

// blockDeviceSize(path) -> bytes | undefined (not a block device, or sysfs
// does not say). Errors of stat are thrown.
Napi::Value BlockDeviceSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string path = string_arg(env, info[0], "path");
  try {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) blocksmith::throw_sys(errno, "stat", path);
    if (!S_ISBLK(st.st_mode)) return env.Undefined();
    auto size = blocksmith::host::block_device_size(st.st_rdev);
    return size ? Napi::Value(Napi::Number::New(env, static_cast<double>(*size))) : env.Undefined();
  } catch (...) {
    throw to_js_error(env, std::current_exception());
  }
}

// mountPointOf(path) -> the mount point of the filesystem holding path | undefined
Napi::Value MountPointOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto mp = blocksmith::host::mount_point_of(string_arg(env, info[0], "path"));
  return mp ? Napi::Value(Napi::String::New(env, *mp)) : env.Undefined();
}

}  // namespace

void register_host(Napi::Env env, Napi::Object exports) {
  exports.Set("sameStorage", Napi::Function::New(env, SameStorage, "sameStorage"));
  exports.Set("blockDeviceSize", Napi::Function::New(env, BlockDeviceSize, "blockDeviceSize"));
  exports.Set("mountPointOf", Napi::Function::New(env, MountPointOf, "mountPointOf"));
}

}  // namespace binding
