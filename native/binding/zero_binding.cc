// isZero, classifyBlocks, cpuFeatures: synchronous, they work on memory.
#include <napi.h>

#include "args.h"
#include "core/zero/classify.h"
#include "core/zero/cpu_features.h"
#include "core/zero/zero_detect.h"
#include "core/zero/zero_kernels.h"
#include "exports.h"

namespace binding {
namespace {

// isZero(bytes, kernel?) ; kernel names a specific SIMD path, or one of the
// benchmark references 'memchr' / 'byteloop'.
Napi::Value IsZero(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ByteView bytes = byte_view(env, info[0], "buffer");
  if (info.Length() < 2 || info[1].IsUndefined()) return Napi::Boolean::New(env, blocksmith::is_zero(bytes.data, bytes.size));
  std::string name = string_arg(env, info[1], "kernel");
  if (name == "memchr") return Napi::Boolean::New(env, blocksmith::kernels::is_zero_memchr_reference(bytes.data, bytes.size));
  if (name == "byteloop") return Napi::Boolean::New(env, blocksmith::kernels::is_zero_byte_loop_reference(bytes.data, bytes.size));
  auto k = blocksmith::parse_zero_kernel(name);
  if (!k) throw invalid_arg(env, "unknown zero kernel '" + name + "'");
  auto fn = blocksmith::zero_kernel_fn(*k);
  if (!fn) {
    Napi::Error e = Napi::Error::New(env, "this CPU cannot run the '" + name + "' zero kernel");
    e.Set("code", "ERR_UNSUPPORTED_KERNEL");
    throw e;
  }
  return Napi::Boolean::New(env, fn(bytes.data, bytes.size));
}

// classifyBlocks(bytes, blockSize) -> Uint8Array (0 zero, 1 data) per block.
Napi::Value ClassifyBlocks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ByteView bytes = byte_view(env, info[0], "buffer");
  if (!info[1].IsNumber()) throw invalid_arg(env, "blockSize must be a number");
  double bs = info[1].As<Napi::Number>().DoubleValue();
  if (!(bs >= 1 && bs <= (1 << 30)) || !blocksmith::valid_block_size(static_cast<size_t>(bs)) ||
      bs != static_cast<double>(static_cast<size_t>(bs))) {
    Napi::RangeError e = Napi::RangeError::New(env, "block size must be a power of two from 512 B to 1 MiB");
    e.Set("code", "ERR_OUT_OF_RANGE");
    throw e;
  }
  size_t block_size = static_cast<size_t>(bs);
  size_t n = blocksmith::block_count(bytes.size, block_size);
  auto out = Napi::Uint8Array::New(env, n);
  blocksmith::classify_blocks(bytes.data, bytes.size, block_size, out.Data());
  return out;
}

Napi::Value CpuFeatures(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto& f = blocksmith::cpu_features();
  Napi::Object o = Napi::Object::New(env);
  o.Set("zeroKernel", std::string(blocksmith::zero_kernel_name(blocksmith::active_zero_kernel())));
  auto avail = blocksmith::available_zero_kernels();
  Napi::Array list = Napi::Array::New(env, avail.size());
  for (size_t i = 0; i < avail.size(); ++i) list.Set(i, std::string(blocksmith::zero_kernel_name(avail[i])));
  o.Set("availableZeroKernels", list);
  o.Set("sse2", f.sse2);
  o.Set("avx2", f.avx2);
  o.Set("avx512f", f.avx512f);
  o.Set("avx512bw", f.avx512bw);
#if defined(__x86_64__)
  o.Set("arch", "x86_64");
#elif defined(__aarch64__)
  o.Set("arch", "aarch64");
#else
  o.Set("arch", "other");
#endif
  return o;
}

}  // namespace

void register_zero(Napi::Env env, Napi::Object exports) {
  exports.Set("isZero", Napi::Function::New(env, IsZero, "isZero"));
  exports.Set("classifyBlocks", Napi::Function::New(env, ClassifyBlocks, "classifyBlocks"));
  exports.Set("cpuFeatures", Napi::Function::New(env, CpuFeatures, "cpuFeatures"));
}

}  // namespace binding
