// Opening an image for reading: the one place where the format is decided
// (by magic, or forced with --format; containers we do not read are refused
// here, see container_probe.h), and where qcow2 backing chains are resolved
// and checked against the backing policy (relative to the image's directory,
// depth limit, loop check by st_dev/st_ino). Every command that reads an
// image (info, map, sparse copies, RBD import) opens it here and gets a
// Reader of the virtual disk.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/readers/file_reader.h"
#include "core/pipeline/reader.h"

namespace blocksmith {

enum class ImageFormat { automatic, raw, qcow2 };

// "raw", "qcow2" ("auto" -> automatic); throws EINVAL for anything else.
ImageFormat parse_image_format(const std::string& s);
const char* image_format_name(ImageFormat f);

// Which backing files a qcow2 image may make us read. A backing file name is
// data from the image, which may be untrusted (a tenant's upload): by default
// only regular files inside the top image's directory tree are followed,
// checked on the file actually opened (its /proc/self/fd path, so symlinks
// and '..' cannot lead out between the check and the read); block and
// character devices, FIFOs, files of /proc or /sys and anything outside that
// tree are refused (code ERR_BACKING_REFUSED).
struct BackingPolicy {
  bool allow_all = false;                 // follow any backing file (--allow-backing, allowBacking: true)
  std::vector<std::string> allowed_dirs;  // also regular files under these (--allow-backing-dir, allowBacking: [dirs])
};

// One link of a backing chain, nearest first.
struct BackingLink {
  std::string name;    // as written in the image that names it
  std::string path;    // the file opened: absolute, symlinks and '..' resolved
  std::string format;  // "raw" or "qcow2" (from the header extension, or detected)
};

struct ImageDescription {
  ImageFormat format = ImageFormat::raw;   // as detected or forced
  uint64_t file_size = 0;                  // the top file's size (qcow2: not the virtual size)
  // qcow2 only:
  uint32_t version = 0;
  uint64_t cluster_size = 0;
  std::string compression;                 // "zlib" / "zstd"
  bool extended_l2 = false;
  std::vector<BackingLink> backing_chain;
};

struct OpenedImage {
  std::unique_ptr<Reader> reader;  // the virtual disk
  FileReader* file = nullptr;      // the top file (owned by `reader`'s chain)
  ImageDescription description;
};

constexpr int kMaxBackingDepth = 32;

// Throws blocksmith::Error (ENOENT, ERR_QCOW2_*, ERR_UNSUPPORTED_FORMAT,
// ERR_BACKING_REFUSED, ELOOP for backing loops and chains deeper than 32).
OpenedImage open_image(const std::string& path, ImageFormat format, bool use_seek_hole = true,
                       const BackingPolicy& backing = {});

// qcow2 or raw, by magic. A container format we do not read (VMDK, VHD, ...)
// throws ERR_UNSUPPORTED_FORMAT naming it and how to proceed.
ImageFormat detect_format(Reader& r);

}  // namespace blocksmith
