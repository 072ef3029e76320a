// The small part of the librados/librbd C API blocksmith uses, declared here
// so the addon builds without Ceph's headers and loads librbd at run time
// (dlopen). Signatures follow <rados/librados.h> and <rbd/librbd.h> of Ceph
// 16; native/tests/test_librbd_api.cc checks them against the installed
// headers whenever librbd-dev is present.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace blocksmith::rbd {

using rados_t = void*;
using rados_ioctx_t = void*;
using rbd_image_t = void*;
using rbd_image_options_t = void*;
using rbd_completion_t = void*;
using rbd_callback_t = void (*)(rbd_completion_t cb, void* arg);
using rbd_diff_cb_t = int (*)(uint64_t offset, size_t length, int exists, void* arg);
using librbd_progress_fn_t = int (*)(uint64_t offset, uint64_t total, void* ptr);

// rbd_image_watcher_t from librbd.h
struct rbd_image_watcher_t {
  char* addr;
  int64_t id;
  uint64_t cookie;
};

// rbd_lock_mode_t from librbd.h
enum rbd_lock_mode_t { RBD_LOCK_MODE_EXCLUSIVE = 0, RBD_LOCK_MODE_SHARED = 1 };

// RBD_FEATURE_EXCLUSIVE_LOCK from features.h
constexpr uint64_t kFeatureExclusiveLock = 1ULL << 2;

// enum rbd_image_option from librbd.h
constexpr int kOptFormat = 0;
constexpr int kOptFeatures = 1;
constexpr int kOptOrder = 2;
constexpr int kOptDataPool = 10;

// LIBRADOS_OP_FLAG_* from librados.h
constexpr int kFadviseSequential = 0x8;
constexpr int kFadviseNocache = 0x40;

struct Api {
  // librados
  int (*rados_create)(rados_t* cluster, const char* const id);
  int (*rados_conf_read_file)(rados_t cluster, const char* path);
  int (*rados_conf_parse_env)(rados_t cluster, const char* var);
  int (*rados_conf_set)(rados_t cluster, const char* option, const char* value);
  int (*rados_conf_get)(rados_t cluster, const char* option, char* buf, size_t len);
  int (*rados_connect)(rados_t cluster);
  void (*rados_shutdown)(rados_t cluster);
  int (*rados_ioctx_create)(rados_t cluster, const char* pool_name, rados_ioctx_t* ioctx);
  void (*rados_ioctx_destroy)(rados_ioctx_t io);
  void (*rados_ioctx_set_namespace)(rados_ioctx_t io, const char* nspace);
  int (*rados_mon_command)(rados_t cluster, const char** cmd, size_t cmdlen, const char* inbuf, size_t inbuflen,
                           char** outbuf, size_t* outbuflen, char** outs, size_t* outslen);
  void (*rados_buffer_free)(char* buf);
  uint64_t (*rados_get_instance_id)(rados_t cluster);
  // librbd
  void (*rbd_image_options_create)(rbd_image_options_t* opts);
  void (*rbd_image_options_destroy)(rbd_image_options_t opts);
  int (*rbd_image_options_set_string)(rbd_image_options_t opts, int optname, const char* optval);
  int (*rbd_image_options_set_uint64)(rbd_image_options_t opts, int optname, uint64_t optval);
  int (*rbd_create4)(rados_ioctx_t io, const char* name, uint64_t size, rbd_image_options_t opts);
  int (*rbd_remove)(rados_ioctx_t io, const char* name);
  int (*rbd_open)(rados_ioctx_t io, const char* name, rbd_image_t* image, const char* snap_name);
  int (*rbd_close)(rbd_image_t image);
  int (*rbd_get_size)(rbd_image_t image, uint64_t* size);
  int (*rbd_get_stripe_unit)(rbd_image_t image, uint64_t* stripe_unit);
  int (*rbd_aio_create_completion)(void* cb_arg, rbd_callback_t complete_cb, rbd_completion_t* c);
  int (*rbd_aio_wait_for_complete)(rbd_completion_t c);
  ssize_t (*rbd_aio_get_return_value)(rbd_completion_t c);
  void (*rbd_aio_release)(rbd_completion_t c);
  int (*rbd_aio_write2)(rbd_image_t image, uint64_t off, size_t len, const char* buf, rbd_completion_t c,
                        int op_flags);
  int (*rbd_aio_read2)(rbd_image_t image, uint64_t off, size_t len, char* buf, rbd_completion_t c, int op_flags);
  ssize_t (*rbd_read)(rbd_image_t image, uint64_t ofs, size_t len, char* buf);
  int (*rbd_flush)(rbd_image_t image);
  int (*rbd_diff_iterate2)(rbd_image_t image, const char* fromsnapname, uint64_t ofs, uint64_t len,
                           uint8_t include_parent, uint8_t whole_object, rbd_diff_cb_t cb, void* arg);
  int (*rbd_get_overlap)(rbd_image_t image, uint64_t* overlap);
  // in-place sparsify (operations/rbd_sparsify.cc)
  int (*rbd_get_features)(rbd_image_t image, uint64_t* features);
  int (*rbd_watchers_list)(rbd_image_t image, rbd_image_watcher_t* watchers, size_t* max_watchers);
  void (*rbd_watchers_list_cleanup)(rbd_image_watcher_t* watchers, size_t num_watchers);
  int (*rbd_lock_acquire)(rbd_image_t image, rbd_lock_mode_t lock_mode);
  int (*rbd_lock_release)(rbd_image_t image);
  int (*rbd_aio_discard)(rbd_image_t image, uint64_t off, uint64_t len, rbd_completion_t c);
  int (*rbd_sparsify_with_progress)(rbd_image_t image, size_t sparse_size, librbd_progress_fn_t cb, void* cbdata);
};

// Loads librados.so.2 and librbd.so.1 once (thread-safe). Throws
// blocksmith::Error with code ERR_LIBRBD_MISSING naming the missing library
// and the Debian package that provides it.
const Api& api();

}  // namespace blocksmith::rbd
