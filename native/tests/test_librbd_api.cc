// Our own librbd/librados declarations must match the installed headers.
// Compiled only when librbd-dev is installed (binding.gyp checks); the test
// also loads the libraries when present.
#include <rados/librados.h>
#include <rbd/librbd.h>

#include <cstddef>
#include <type_traits>

#include "core/rbd/librbd_api.h"
#include "test.h"

namespace api = blocksmith::rbd;

#define SAME_SIGNATURE(name) \
  static_assert(std::is_same_v<decltype(api::Api::name), decltype(&::name)>, #name " differs from the Ceph header")

SAME_SIGNATURE(rados_create);
SAME_SIGNATURE(rados_conf_read_file);
SAME_SIGNATURE(rados_conf_parse_env);
SAME_SIGNATURE(rados_conf_set);
SAME_SIGNATURE(rados_conf_get);
SAME_SIGNATURE(rados_connect);
SAME_SIGNATURE(rados_shutdown);
SAME_SIGNATURE(rados_ioctx_create);
SAME_SIGNATURE(rados_ioctx_destroy);
SAME_SIGNATURE(rados_ioctx_set_namespace);
SAME_SIGNATURE(rados_mon_command);
SAME_SIGNATURE(rados_buffer_free);
SAME_SIGNATURE(rbd_image_options_create);
SAME_SIGNATURE(rbd_image_options_destroy);
SAME_SIGNATURE(rbd_image_options_set_string);
SAME_SIGNATURE(rbd_image_options_set_uint64);
SAME_SIGNATURE(rbd_create4);
SAME_SIGNATURE(rbd_remove);
SAME_SIGNATURE(rbd_open);
SAME_SIGNATURE(rbd_close);
SAME_SIGNATURE(rbd_get_size);
SAME_SIGNATURE(rbd_get_stripe_unit);
SAME_SIGNATURE(rbd_aio_create_completion);
SAME_SIGNATURE(rbd_aio_wait_for_complete);
SAME_SIGNATURE(rbd_aio_get_return_value);
SAME_SIGNATURE(rbd_aio_release);
SAME_SIGNATURE(rbd_aio_write2);
SAME_SIGNATURE(rbd_aio_read2);
SAME_SIGNATURE(rbd_read);
SAME_SIGNATURE(rbd_flush);
SAME_SIGNATURE(rbd_diff_iterate2);
SAME_SIGNATURE(rbd_get_overlap);
SAME_SIGNATURE(rados_get_instance_id);
SAME_SIGNATURE(rbd_get_features);
SAME_SIGNATURE(rbd_lock_release);
SAME_SIGNATURE(rbd_aio_discard);
SAME_SIGNATURE(rbd_sparsify_with_progress);
// Declared with our own struct and enum types: same layout and values.
static_assert(std::is_same_v<decltype(api::Api::rbd_watchers_list),
                             int (*)(rbd_image_t, api::rbd_image_watcher_t*, size_t*)>);
static_assert(sizeof(api::rbd_image_watcher_t) == sizeof(::rbd_image_watcher_t));
static_assert(offsetof(api::rbd_image_watcher_t, addr) == offsetof(::rbd_image_watcher_t, addr));
static_assert(offsetof(api::rbd_image_watcher_t, id) == offsetof(::rbd_image_watcher_t, id));
static_assert(offsetof(api::rbd_image_watcher_t, cookie) == offsetof(::rbd_image_watcher_t, cookie));
static_assert(api::RBD_LOCK_MODE_EXCLUSIVE == static_cast<int>(::RBD_LOCK_MODE_EXCLUSIVE));
static_assert(api::kFeatureExclusiveLock == RBD_FEATURE_EXCLUSIVE_LOCK);
static_assert(std::is_same_v<decltype(&::rbd_watchers_list), int (*)(rbd_image_t, ::rbd_image_watcher_t*, size_t*)>);
static_assert(std::is_same_v<decltype(&::rbd_lock_acquire), int (*)(rbd_image_t, ::rbd_lock_mode_t)>);

static_assert(api::kOptFormat == RBD_IMAGE_OPTION_FORMAT);
static_assert(api::kOptFeatures == RBD_IMAGE_OPTION_FEATURES);
static_assert(api::kOptOrder == RBD_IMAGE_OPTION_ORDER);
static_assert(api::kOptDataPool == RBD_IMAGE_OPTION_DATA_POOL);
static_assert(api::kFadviseSequential == LIBRADOS_OP_FLAG_FADVISE_SEQUENTIAL);
static_assert(api::kFadviseNocache == LIBRADOS_OP_FLAG_FADVISE_NOCACHE);

TEST("librbd declarations match the installed Ceph headers, and the libraries load") {
  const auto& a = api::api();  // throws ERR_LIBRBD_MISSING if the runtime libraries are absent
  CHECK(a.rbd_create4 != nullptr);
  CHECK(a.rados_connect != nullptr);
}
