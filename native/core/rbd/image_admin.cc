#include "core/rbd/image_admin.h"

#include <cerrno>
#include <chrono>
#include <thread>

#include "core/base/error.h"

namespace blocksmith::rbd {

void create_image(IoCtx& io, const Target& t, uint64_t size, const CreateOptions& o) {
  const Api& a = api();
  rbd_image_options_t opts = nullptr;
  a.rbd_image_options_create(&opts);  // never pass NULL to rbd_create4: it crashes
  struct Guard {
    rbd_image_options_t o;
    ~Guard() { api().rbd_image_options_destroy(o); }
  } guard{opts};
  a.rbd_image_options_set_uint64(opts, kOptFormat, 2);
  if (o.features) a.rbd_image_options_set_uint64(opts, kOptFeatures, o.features);
  if (o.object_size) {
    uint64_t order = 0;
    while ((uint64_t(1) << order) < o.object_size) ++order;
    a.rbd_image_options_set_uint64(opts, kOptOrder, order);
  }
  if (!o.data_pool.empty()) a.rbd_image_options_set_string(opts, kOptDataPool, o.data_pool.c_str());
  int r = a.rbd_create4(io.get(), t.image.c_str(), size, opts);
  if (r == -EEXIST && o.overwrite) {
    r = a.rbd_remove(io.get(), t.image.c_str());
    if (r < 0) throw_rbd(r, "rbd_remove", t, "cannot remove the existing image to overwrite it");
    r = a.rbd_create4(io.get(), t.image.c_str(), size, opts);
  }
  if (r == -EEXIST) {
    throw Error(EEXIST, "EEXIST", "rbd_create4", t.spec(), "image " + t.spec() + " exists (use --overwrite to replace it)");
  }
  if (r < 0) throw_rbd(r, "rbd_create4", t, "cannot create image " + t.spec());
}

int remove_image(IoCtx& io, const Target& t) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(t.timeout_seconds);
  for (;;) {
    int r = api().rbd_remove(io.get(), t.image.c_str());
    if (r != -EBUSY || std::chrono::steady_clock::now() >= deadline) return r;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

namespace {

// `mon dump` through the monitor command interface; clients with the rbd
// profile may run it. Empty when the cluster refuses.
std::string mon_dump_json(Cluster& cluster) {
  const char* cmd[] = {R"({"prefix": "mon dump", "format": "json"})"};
  char* out = nullptr;
  size_t out_len = 0;
  char* status = nullptr;
  size_t status_len = 0;
  int r = api().rados_mon_command(cluster.get(), cmd, 1, "", 0, &out, &out_len, &status, &status_len);
  std::string json = r >= 0 && out ? std::string(out, out_len) : std::string();
  if (out) api().rados_buffer_free(out);
  if (status) api().rados_buffer_free(status);
  return json;
}

bool image_exists(IoCtx& io, const Target& pool_target, const std::string& name) {
  rbd_image_t h = nullptr;
  int r = api().rbd_open(io.get(), name.c_str(), &h, nullptr);
  if (r == -ENOENT) return false;
  Target t = pool_target;
  t.image = name;
  if (r < 0) throw_rbd(r, "rbd_open", t, "cannot tell whether image " + t.spec() + " exists");
  api().rbd_close(h);
  return true;
}

}  // namespace

ClusterFacts cluster_facts(const Target& t, const std::vector<std::string>& image_names) {
  Cluster cluster(t);
  IoCtx io(cluster, t);
  ClusterFacts f;
  f.mon_host = cluster.conf_get("mon_host");
  f.keyring = cluster.conf_get("keyring");
  // librados does not expose the entity name through conf_get: the id we
  // connected as is the one given, or client.admin's.
  f.user = t.user.empty() ? "admin" : t.user;
  f.monmap_json = mon_dump_json(cluster);
  for (const std::string& name : image_names) {
    if (image_exists(io, t, name)) f.existing.push_back(name);
  }
  return f;
}

void create_image(const Target& t, uint64_t size) {
  Cluster cluster(t);
  IoCtx io(cluster, t);
  create_image(io, t, size, CreateOptions{});
}

void remove_image(const Target& t) {
  Cluster cluster(t);
  IoCtx io(cluster, t);
  int r = remove_image(io, t);
  if (r < 0) throw_rbd(r, "rbd_remove", t, r == -ENOENT ? "image " + t.spec() + " does not exist" : "cannot remove image " + t.spec());
}

}  // namespace blocksmith::rbd
