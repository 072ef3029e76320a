#include "core/rbd/librbd_api.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <string>

#include "core/base/error.h"

namespace blocksmith::rbd {
namespace {

struct Loaded {
  Api api{};
  std::string error;  // empty on success
};

// `override_env` names an environment variable that replaces the library's
// path: a test hook (BLOCKSMITH_LIBRADOS_PATH, BLOCKSMITH_LIBRBD_PATH) that
// lets the suite see what a machine without Ceph sees.
void* open_lib(const char* name, const char* package, const char* override_env, std::string& error) {
  const char* path = std::getenv(override_env);
  if (!path || !*path) path = name;
  void* h = ::dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* why = ::dlerror();
    error = std::string("RBD support needs ") + name + " (Debian package " + package + "): " +
            (why ? why : "cannot load it");
  }
  return h;
}

template <typename F>
bool bind(void* lib, const char* symbol, F& fn, std::string& error) {
  fn = reinterpret_cast<F>(::dlsym(lib, symbol));
  if (!fn) error = std::string("the installed librbd/librados lacks ") + symbol + " (need Ceph 14 or later)";
  return fn != nullptr;
}

Loaded load() {
  Loaded l;
  void* rados = open_lib("librados.so.2", "librados2", "BLOCKSMITH_LIBRADOS_PATH", l.error);
  if (!rados) return l;
  void* rbd = open_lib("librbd.so.1", "librbd1", "BLOCKSMITH_LIBRBD_PATH", l.error);
  if (!rbd) return l;
  Api& a = l.api;
  std::string& e = l.error;
#define BIND(lib, name) \
  if (!bind(lib, #name, a.name, e)) return l;
  BIND(rados, rados_create)
  BIND(rados, rados_conf_read_file)
  BIND(rados, rados_conf_parse_env)
  BIND(rados, rados_conf_set)
  BIND(rados, rados_conf_get)
  BIND(rados, rados_connect)
  BIND(rados, rados_shutdown)
  BIND(rados, rados_ioctx_create)
  BIND(rados, rados_ioctx_destroy)
  BIND(rados, rados_ioctx_set_namespace)
  BIND(rados, rados_mon_command)
  BIND(rados, rados_buffer_free)
  BIND(rados, rados_get_instance_id)
  BIND(rbd, rbd_image_options_create)
  BIND(rbd, rbd_image_options_destroy)
  BIND(rbd, rbd_image_options_set_string)
  BIND(rbd, rbd_image_options_set_uint64)
  BIND(rbd, rbd_create4)
  BIND(rbd, rbd_remove)
  BIND(rbd, rbd_open)
  BIND(rbd, rbd_close)
  BIND(rbd, rbd_get_size)
  BIND(rbd, rbd_get_stripe_unit)
  BIND(rbd, rbd_aio_create_completion)
  BIND(rbd, rbd_aio_wait_for_complete)
  BIND(rbd, rbd_aio_get_return_value)
  BIND(rbd, rbd_aio_release)
  BIND(rbd, rbd_aio_write2)
  BIND(rbd, rbd_aio_read2)
  BIND(rbd, rbd_read)
  BIND(rbd, rbd_flush)
  BIND(rbd, rbd_diff_iterate2)
  BIND(rbd, rbd_get_overlap)
  BIND(rbd, rbd_get_features)
  BIND(rbd, rbd_watchers_list)
  BIND(rbd, rbd_watchers_list_cleanup)
  BIND(rbd, rbd_lock_acquire)
  BIND(rbd, rbd_lock_release)
  BIND(rbd, rbd_aio_discard)
  BIND(rbd, rbd_sparsify_with_progress)
#undef BIND
  // The libraries stay loaded for the life of the process (librbd's threads
  // must never find their code unmapped).
  return l;
}

}  // namespace

const Api& api() {
  static const Loaded loaded = load();
  if (!loaded.error.empty()) throw Error(0, "ERR_LIBRBD_MISSING", "dlopen", "", loaded.error);
  return loaded.api;
}

}  // namespace blocksmith::rbd
