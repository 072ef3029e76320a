// Raw file/device -> RBD image and RBD image -> sparse file, both through the
// one pipeline (the RBD image is a sink, or a reader), with create/overwrite,
// cleanup of half-written images, and verification.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/pipeline/control.h"
#include "core/readers/image_open.h"
#include "core/pipeline/scan_pipeline.h"
#include "core/rbd/session.h"
#include "core/sinks/extent_totals.h"

namespace blocksmith::rbd {

struct ImportOptions {
  ScanOptions scan;
  bool use_seek_hole = true;
  unsigned parallel = 16;
  // Largest write, a power of two; capped at the object size. Object-sized
  // (4 MiB) writes ran at half the rate of 1-2 MiB ones on the test OSD
  // (bench/results/rbd.json), as qemu-img's 2 MiB ones do.
  uint64_t write_size = 2 << 20;
  uint64_t object_size = 0;   // 0 = librbd default (4 MiB)
  uint64_t features = 0;      // 0 = librbd default
  std::string data_pool;
  bool overwrite = false;
  bool keep_partial = false;
  bool verify = false;
  // Copy a source that is in use (a VM's write lock, another writer) anyway;
  // see image_use.h. The report's warnings say what was overridden.
  bool force = false;
  ImageFormat format = ImageFormat::automatic;  // of the source
  BackingPolicy backing;                        // qcow2 sources: which backing files to follow
};

struct ImportReport {
  std::string source;
  std::string format;       // of the source: raw or qcow2
  std::vector<BackingLink> backing_chain;  // the source's backing files, nearest first
  std::string image;        // rbd:pool/image
  uint64_t size = 0;
  ExtentTotals totals;      // data: written
  uint64_t writes = 0;
  uint64_t object_size = 0;
  bool verified = false;    // --verify ran and matched
  double seconds = 0;
  double verify_seconds = 0;
  std::string mon_host;     // from the cluster config, for libvirt XML
  std::string user;
  std::vector<std::string> warnings;  // what --force overrode
};

ImportReport copy_to_rbd(const std::string& source, const Target& target, const ImportOptions& options,
                         Control& control);

struct ExportReport {
  std::string image;
  std::string target;
  uint64_t size = 0;
  uint64_t allocated_in_image = 0;  // bytes of existing objects
  ExtentTotals totals;
  uint64_t allocated_after = 0;     // of the written file
  double seconds = 0;
};

struct ExportOptions {
  ScanOptions scan;
  bool overwrite = false;  // replace an existing file
};

ExportReport copy_from_rbd(const Target& source, const std::string& target, const ExportOptions& options,
                           Control& control);

struct RbdInfo {
  std::string image;
  uint64_t size = 0;
  uint64_t used = 0;          // bytes of existing objects
  uint64_t object_size = 0;
};

RbdInfo rbd_info(const Target& target);

}  // namespace blocksmith::rbd
