#include "core/rbd/session.h"

#include <cctype>
#include <cerrno>
#include <cstring>

#include "core/base/error.h"

namespace blocksmith::rbd {

std::string Target::spec() const {
  return "rbd:" + pool + "/" + (ns.empty() ? "" : ns + "/") + image;
}

void throw_rbd(int ret, const char* call, const Target& t, const std::string& what, bool after_access) {
  int err = ret < 0 ? -ret : EIO;
  std::string reason = std::strerror(err);
  if (!reason.empty()) reason[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(reason[0])));
  std::string hint;
  switch (err) {
    case EACCES:
    case EPERM:
    case ENOENT:
      // Refused after the cluster had accepted this client's earlier writes:
      // not a bad key but a pool or image that went away (or changed caps).
      if (after_access) {
        hint = " (the cluster refused a write after accepting earlier ones: was the pool or the image deleted?)";
      } else if (err != ENOENT) {
        hint = " (check the client id and keyring: the cluster refused the key)";
      }
      break;
    case ETIMEDOUT:
      hint = " (the cluster did not answer within " + std::to_string(t.timeout_seconds) + " s)";
      break;
    default:
      break;
  }
  throw Error(err, errno_name(err), call, t.spec(), what + ": " + reason + hint);
}

Cluster::Cluster(const Target& t) {
  const Api& a = api();
  int r = a.rados_create(&h_, t.user.empty() ? nullptr : t.user.c_str());
  if (r < 0) {
    h_ = nullptr;
    throw_rbd(r, "rados_create", t, "cannot create a cluster handle");
  }
  try {
    configure_and_connect(t);
  } catch (...) {
    // The destructor does not run for a constructor that throws.
    a.rados_shutdown(h_);
    h_ = nullptr;
    throw;
  }
}

void Cluster::configure_and_connect(const Target& t) {
  const Api& a = api();
  int r = a.rados_conf_read_file(h_, t.conf.empty() ? nullptr : t.conf.c_str());
  if (r < 0) {
    throw_rbd(r, "rados_conf_read_file", t,
              t.conf.empty() ? "cannot read a Ceph config ($CEPH_CONF or /etc/ceph/ceph.conf)"
                             : "cannot read the Ceph config '" + t.conf + "'");
  }
  // No librbd cache for a bulk copy: with it, writes go through the
  // write-around dispatcher, in writethrough mode until the first flush (one
  // write at a time). $CEPH_ARGS may still turn it on.
  a.rados_conf_set(h_, "rbd_cache", "false");
  // librbd's copy of each aio write stays (rbd_disable_zero_copy_writes):
  // without it a write's completion waits until librbd lets go of our
  // buffer, and with an OSD killed mid-copy that never came (the copy hung
  // instead of ending with ETIMEDOUT, test/rbd-faults.test.ts).
  a.rados_conf_parse_env(h_, nullptr);  // CEPH_ARGS
  if (!t.keyring.empty()) a.rados_conf_set(h_, "keyring", t.keyring.c_str());
  std::string timeout = std::to_string(t.timeout_seconds);
  for (const char* opt : {"rados_mon_op_timeout", "rados_osd_op_timeout", "client_mount_timeout"}) {
    a.rados_conf_set(h_, opt, timeout.c_str());
  }
  r = a.rados_connect(h_);
  if (r < 0) throw_rbd(r, "rados_connect", t, "cannot connect to the Ceph cluster");
}

Cluster::~Cluster() {
  if (h_) api().rados_shutdown(h_);
}

std::string Cluster::conf_get(const char* option) const {
  char buf[4096] = {};
  if (api().rados_conf_get(h_, option, buf, sizeof buf - 1) < 0) return "";
  return buf;
}

IoCtx::IoCtx(Cluster& c, const Target& t) {
  int r = api().rados_ioctx_create(c.get(), t.pool.c_str(), &h_);
  if (r < 0) {
    h_ = nullptr;
    throw_rbd(r, "rados_ioctx_create", t, r == -ENOENT ? "pool '" + t.pool + "' does not exist" : "cannot open pool '" + t.pool + "'");
  }
  if (!t.ns.empty()) api().rados_ioctx_set_namespace(h_, t.ns.c_str());
}

IoCtx::~IoCtx() {
  if (h_) api().rados_ioctx_destroy(h_);
}

Image::Image(IoCtx& io, const Target& t) : t_(t) {
  int r = api().rbd_open(io.get(), t.image.c_str(), &h_, nullptr);
  if (r < 0) {
    h_ = nullptr;
    throw_rbd(r, "rbd_open", t, r == -ENOENT ? "image '" + t.spec() + "' does not exist" : "cannot open image");
  }
}

uint64_t Image::size() const {
  uint64_t s = 0;
  int r = api().rbd_get_size(h_, &s);
  if (r < 0) throw_rbd(r, "rbd_get_size", t_, "cannot read the image size");
  return s;
}

uint64_t Image::object_size() const {
  uint64_t su = 0;
  int r = api().rbd_get_stripe_unit(h_, &su);
  if (r < 0 || su == 0) return 4 << 20;
  return su;
}

int Image::close() {
  if (!h_) return 0;
  int r = api().rbd_close(h_);
  h_ = nullptr;
  return r;
}

}  // namespace blocksmith::rbd
