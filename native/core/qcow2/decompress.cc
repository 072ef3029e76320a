#include "core/qcow2/decompress.h"

#include <dlfcn.h>

#include <cerrno>
#include <cstdlib>
#include <mutex>

#include "core/base/error.h"

namespace blocksmith::qcow2 {
namespace {

// ---- zlib: the subset of <zlib.h> (1.2.x, stable ABI) used here. ----------
// z_stream as laid out by zlib on every platform (uInt = unsigned int,
// uLong = unsigned long). inflateInit2_ checks sizeof(ZStream) against its own
// struct, so a mismatch fails cleanly instead of corrupting memory.
struct ZStream {
  const uint8_t* next_in;
  unsigned int avail_in;
  unsigned long total_in;
  uint8_t* next_out;
  unsigned int avail_out;
  unsigned long total_out;
  const char* msg;
  void* state;
  void* zalloc;
  void* zfree;
  void* opaque;
  int data_type;
  unsigned long adler;
  unsigned long reserved;
};
constexpr int kZOk = 0, kZStreamEnd = 1, kZBufError = -5, kZFinish = 4;

struct Zlib {
  const char* (*zlibVersion)();
  int (*inflateInit2_)(ZStream*, int, const char*, int);
  int (*inflate)(ZStream*, int);
  int (*inflateEnd)(ZStream*);
};

// ---- libdeflate (optional, 1.0+, stable ABI): whole-buffer raw deflate. ----
// About twice zlib's inflate speed on whole clusters. Only a fast path: any
// result but a complete cluster goes to zlib, whose answer (and error) stands.
struct Libdeflate {
  void* (*alloc_decompressor)();
  void (*free_decompressor)(void*);
  int (*deflate_decompress_ex)(void*, const void*, size_t, void*, size_t, size_t*, size_t*);
};
constexpr int kLibdeflateSuccess = 0;

// ---- zstd: the subset of <zstd.h> (1.4+, stable API) used here. -----------
struct ZstdIn {
  const void* src;
  size_t size;
  size_t pos;
};
struct ZstdOut {
  void* dst;
  size_t size;
  size_t pos;
};
struct Zstd {
  void* (*ZSTD_createDCtx)();
  size_t (*ZSTD_freeDCtx)(void*);
  size_t (*ZSTD_decompressStream)(void*, ZstdOut*, ZstdIn*);
  unsigned (*ZSTD_isError)(size_t);
  const char* (*ZSTD_getErrorName)(size_t);
  size_t (*ZSTD_DCtx_reset)(void*, int);
};
constexpr int kZstdResetSessionOnly = 1;

// Loads a library into its own link-map namespace. With a plain dlopen the
// library's calls to its own exported functions (inflateInit2_ ->
// inflateReset2) can bind to same-named symbols already in the process:
// Node's executable exports its bundled zlib, whose internal state differs,
// and inflating then crashes. A separate namespace keeps every internal
// call inside the system library. (RTLD_DEEPBIND would too, but sanitizer
// runtimes refuse it, and the fuzz/ASan builds need this path.)
void* load_isolated(const char* name) {
  void* lib = ::dlmopen(LM_ID_NEWLM, name, RTLD_NOW | RTLD_LOCAL);
  if (!lib) lib = ::dlopen(name, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  return lib;
}

template <typename Fn>
bool bind(void* lib, Fn& fn, const char* name) {
  fn = reinterpret_cast<Fn>(::dlsym(lib, name));
  return fn != nullptr;
}

struct Loaded {
  bool ok = false;
  std::string error;
};

const Zlib* zlib(std::string& error) {
  static Zlib z{};
  static Loaded state;
  static std::once_flag once;
  std::call_once(once, [] {
    void* lib = load_isolated("libz.so.1");
    if (!lib) {
      state.error = "libz.so.1 cannot be loaded (" + std::string(::dlerror()) + "); install the Debian package zlib1g";
      return;
    }
    if (!bind(lib, z.zlibVersion, "zlibVersion") || !bind(lib, z.inflateInit2_, "inflateInit2_") ||
        !bind(lib, z.inflate, "inflate") || !bind(lib, z.inflateEnd, "inflateEnd")) {
      state.error = "libz.so.1 lacks the inflate functions";
      return;
    }
    state.ok = true;
  });
  error = state.error;
  return state.ok ? &z : nullptr;
}

// Null when libdeflate.so.0 is missing, or BLOCKSMITH_NO_LIBDEFLATE is set
// (zlib alone: to compare, and to test that path).
const Libdeflate* libdeflate() {
  static Libdeflate d{};
  static bool ok = false;
  static std::once_flag once;
  std::call_once(once, [] {
    const char* off = std::getenv("BLOCKSMITH_NO_LIBDEFLATE");
    if (off && *off && *off != '0') return;
    void* lib = load_isolated("libdeflate.so.0");
    ok = lib && bind(lib, d.alloc_decompressor, "libdeflate_alloc_decompressor") &&
         bind(lib, d.free_decompressor, "libdeflate_free_decompressor") &&
         bind(lib, d.deflate_decompress_ex, "libdeflate_deflate_decompress_ex");
  });
  return ok ? &d : nullptr;
}

// One decompressor per thread, freed when the thread ends.
void* libdeflate_decompressor(const Libdeflate& d) {
  struct Holder {
    const Libdeflate* lib = nullptr;
    void* p = nullptr;
    ~Holder() {
      if (p) lib->free_decompressor(p);
    }
  };
  thread_local Holder h;
  if (!h.p) {
    h.p = d.alloc_decompressor();
    h.lib = &d;
  }
  return h.p;
}

// True when libdeflate inflated a whole cluster (trailing bytes of the
// stored size ignored, as by zlib below).
bool fast_inflate(const uint8_t* in, size_t in_len, uint8_t* out, size_t out_len) {
  const Libdeflate* d = libdeflate();
  if (!d) return false;
  void* dec = libdeflate_decompressor(*d);
  if (!dec) return false;
  size_t used = 0, produced = 0;
  return d->deflate_decompress_ex(dec, in, in_len, out, out_len, &used, &produced) == kLibdeflateSuccess &&
         produced == out_len;
}

const Zstd* zstd(std::string& error) {
  static Zstd z{};
  static Loaded state;
  static std::once_flag once;
  std::call_once(once, [] {
    void* lib = load_isolated("libzstd.so.1");
    if (!lib) {
      state.error = "libzstd.so.1 cannot be loaded (" + std::string(::dlerror()) + "); install the Debian package libzstd1";
      return;
    }
    if (!bind(lib, z.ZSTD_createDCtx, "ZSTD_createDCtx") || !bind(lib, z.ZSTD_freeDCtx, "ZSTD_freeDCtx") ||
        !bind(lib, z.ZSTD_decompressStream, "ZSTD_decompressStream") || !bind(lib, z.ZSTD_isError, "ZSTD_isError") ||
        !bind(lib, z.ZSTD_getErrorName, "ZSTD_getErrorName") || !bind(lib, z.ZSTD_DCtx_reset, "ZSTD_DCtx_reset")) {
      state.error = "libzstd.so.1 lacks the streaming decompression functions";
      return;
    }
    state.ok = true;
  });
  error = state.error;
  return state.ok ? &z : nullptr;
}

[[noreturn]] void missing(const std::string& path, const std::string& why) {
  throw Error(ENOSYS, "ERR_QCOW2_LIBRARY", "dlopen", path, "'" + path + "' has compressed clusters but " + why);
}

[[noreturn]] void corrupt(const std::string& path, const std::string& what, const std::string& why) {
  throw Error(EIO, "ERR_QCOW2_CORRUPT", "read", path, "'" + path + "': " + what + " does not decompress: " + why);
}

// Like QEMU's qcow2_zlib_decompress: a raw deflate stream; the cluster is
// complete when the output is full (trailing padding is ignored).
void inflate_cluster(const uint8_t* in, size_t in_len, uint8_t* out, size_t out_len, const std::string& path,
                     const std::string& what) {
  if (fast_inflate(in, in_len, out, out_len)) return;
  std::string err;
  const Zlib* z = zlib(err);
  if (!z) missing(path, err);
  ZStream s{};
  // -15: raw deflate with the largest window (QEMU writes -12; larger accepts it).
  if (z->inflateInit2_(&s, -15, z->zlibVersion(), static_cast<int>(sizeof(ZStream))) != kZOk)
    throw Error(ENOMEM, "ENOMEM", "inflateInit2", path, "cannot initialise zlib");
  s.next_in = in;
  s.avail_in = static_cast<unsigned int>(in_len);
  s.next_out = out;
  s.avail_out = static_cast<unsigned int>(out_len);
  int rc = z->inflate(&s, kZFinish);
  bool full = s.avail_out == 0;
  z->inflateEnd(&s);
  if (!((rc == kZStreamEnd || rc == kZBufError) && full)) {
    corrupt(path, what, rc == kZStreamEnd || rc == kZBufError ? "it is shorter than a cluster"
                                                              : "zlib error " + std::to_string(rc));
  }
}

// One decompression context per thread, reset before each cluster: creating
// one per cluster was 14% of the CPU of reading a zstd image.
void* zstd_context(const Zstd& z, const std::string& path) {
  struct Holder {
    const Zstd* lib = nullptr;
    void* ctx = nullptr;
    ~Holder() {
      if (ctx) lib->ZSTD_freeDCtx(ctx);
    }
  };
  thread_local Holder h;
  if (!h.ctx) {
    h.ctx = z.ZSTD_createDCtx();
    if (!h.ctx) throw Error(ENOMEM, "ENOMEM", "ZSTD_createDCtx", path, "cannot initialise zstd");
    h.lib = &z;
  }
  return h.ctx;
}

// Like QEMU's qcow2_zstd_decompress: one or more frames until the output is
// full; every step must make progress; the last frame must end exactly.
void zstd_cluster(const uint8_t* in, size_t in_len, uint8_t* out, size_t out_len, const std::string& path,
                  const std::string& what) {
  std::string err;
  const Zstd* z = zstd(err);
  if (!z) missing(path, err);
  void* ctx = zstd_context(*z, path);
  z->ZSTD_DCtx_reset(ctx, kZstdResetSessionOnly);  // whatever the last cluster left (an error mid-frame)
  ZstdOut o{out, out_len, 0};
  ZstdIn i{in, in_len, 0};
  size_t ret = 0;
  std::string why;
  while (o.pos < o.size) {
    size_t last_in = i.pos, last_out = o.pos;
    ret = z->ZSTD_decompressStream(ctx, &o, &i);
    if (z->ZSTD_isError(ret)) {
      why = z->ZSTD_getErrorName(ret);
      break;
    }
    if (last_in >= i.pos && last_out >= o.pos) {
      why = "it is shorter than a cluster";
      break;
    }
  }
  if (why.empty() && ret > 0) why = "it is longer than a cluster";
  if (!why.empty()) corrupt(path, what, why);
}

}  // namespace

const char* compression_name(Compression c) { return c == Compression::zstd ? "zstd" : "zlib"; }

void require_decompressor(Compression c, const std::string& path) {
  std::string err;
  if (c == Compression::zstd ? zstd(err) == nullptr : zlib(err) == nullptr) missing(path, err);
}

void decompress_cluster(Compression c, const uint8_t* in, size_t in_len, uint8_t* out, size_t out_len,
                        const std::string& path, const std::string& what) {
  if (c == Compression::zstd) {
    zstd_cluster(in, in_len, out, out_len, path, what);
  } else {
    inflate_cluster(in, in_len, out, out_len, path, what);
  }
}

}  // namespace blocksmith::qcow2
