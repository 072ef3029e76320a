// RAII handles for a cluster connection, a pool context and an open image,
// with librados/librbd return codes turned into blocksmith::Error once.
#pragma once

#include <cstdint>
#include <string>

#include "core/rbd/librbd_api.h"

namespace blocksmith::rbd {

// Where an image lives and how to reach it: the pieces of qemu's
// rbd:pool[/namespace]/image[:id=USER][:conf=PATH][:keyring=PATH].
struct Target {
  std::string pool;
  std::string ns;
  std::string image;
  std::string user;     // client id without "client."; empty = admin / $CEPH_ARGS
  std::string conf;     // empty = $CEPH_CONF or /etc/ceph/ceph.conf
  std::string keyring;  // empty = from the config
  unsigned timeout_seconds = 30;  // mon/osd op and mount timeouts: nothing hangs forever

  std::string spec() const;  // "rbd:pool/ns/image" for messages
};

// Throws blocksmith::Error for a negative librados/librbd return value.
[[noreturn]] void throw_rbd(int ret, const char* call, const Target& t, const std::string& what,
                            bool after_access = false);

class Cluster {
 public:
  explicit Cluster(const Target& t);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;
  rados_t get() const { return h_; }
  std::string conf_get(const char* option) const;

 private:
  void configure_and_connect(const Target& t);
  rados_t h_ = nullptr;
};

class IoCtx {
 public:
  IoCtx(Cluster& c, const Target& t);
  ~IoCtx();
  IoCtx(const IoCtx&) = delete;
  IoCtx& operator=(const IoCtx&) = delete;
  rados_ioctx_t get() const { return h_; }

 private:
  rados_ioctx_t h_ = nullptr;
};

class Image {
 public:
  Image(IoCtx& io, const Target& t);
  ~Image() { close(); }
  Image(const Image&) = delete;
  Image& operator=(const Image&) = delete;
  rbd_image_t get() const { return h_; }
  uint64_t size() const;
  uint64_t object_size() const;
  int close();  // returns librbd's result (a failed flush shows here)

 private:
  const Target& t_;
  rbd_image_t h_ = nullptr;
};

}  // namespace blocksmith::rbd
