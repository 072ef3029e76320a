// Creating and removing RBD images, and the facts about a cluster a client
// needs to describe it to others (libvirt's <source protocol='rbd'> hosts):
// shared by the import (rbd_copy) and `blocksmith migrate`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/rbd/session.h"

namespace blocksmith::rbd {

struct CreateOptions {
  uint64_t object_size = 0;  // 0 = librbd default (4 MiB)
  uint64_t features = 0;     // 0 = librbd default
  std::string data_pool;
  bool overwrite = false;    // remove an existing image of that name first
};

// A new format-2 image of exactly `size` bytes. An existing one is EEXIST
// (one line naming it) unless `overwrite`.
void create_image(IoCtx& io, const Target& t, uint64_t size, const CreateOptions& o);

// rbd_remove, retried while the cluster still holds the watch of a handle we
// closed (EBUSY after an OSD was away; dropped after osd_client_watch_timeout)
// for up to the target's timeout. Returns librbd's result.
int remove_image(IoCtx& io, const Target& t);

struct ClusterFacts {
  std::string mon_host;      // the config's mon_host, as written
  std::string monmap_json;   // `mon dump` as JSON: the monitors the cluster has now
  std::string keyring;       // the config's keyring search path, metavariables expanded
  std::string user;          // the id we connected as (without "client.")
  std::vector<std::string> existing;  // of the image names asked about, those that exist in the pool
};

// Connects as `t` says, opens its pool (a missing pool or a refused key is the
// one-line error of the connection) and answers the questions above.
ClusterFacts cluster_facts(const Target& t, const std::vector<std::string>& image_names);

// The stand-alone forms: connect, create (never overwriting) / remove.
void create_image(const Target& t, uint64_t size);
void remove_image(const Target& t);

}  // namespace blocksmith::rbd
