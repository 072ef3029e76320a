// Opening an image for reading: the one place where the format is decided
// (by magic, or forced with --format), and where qcow2 backing chains are
// resolved (relative to the image's directory, depth limit, loop check by
// st_dev/st_ino). Every command that reads an image (info, map, sparse
// copies, RBD import) opens it here and gets a Reader of the virtual disk.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "file_reader.h"
#include "reader.h"

namespace blocksmith {

enum class ImageFormat { automatic, raw, qcow2 };

// "raw", "qcow2" ("auto" -> automatic); throws EINVAL for anything else.
ImageFormat parse_image_format(const std::string& s);
const char* image_format_name(ImageFormat f);

struct ImageDescription {
  ImageFormat format = ImageFormat::raw;   // as detected or forced
  uint64_t file_size = 0;                  // the top file's size (qcow2: not the virtual size)
  // qcow2 only:
  uint32_t version = 0;
  uint64_t cluster_size = 0;
  std::string compression;                 // "zlib" / "zstd"
  bool extended_l2 = false;
  std::vector<std::string> backing_chain;  // resolved paths, nearest first
  std::vector<std::string> backing_formats;
};

struct OpenedImage {
  std::unique_ptr<Reader> reader;  // the virtual disk
  FileReader* file = nullptr;      // the top file (owned by `reader`'s chain)
  ImageDescription description;
};

constexpr int kMaxBackingDepth = 32;

// Throws blocksmith::Error (ENOENT, ERR_QCOW2_*, ELOOP for backing loops, ...).
OpenedImage open_image(const std::string& path, ImageFormat format, bool use_seek_hole = true);

// True when `r` starts with the qcow2 magic.
ImageFormat detect_format(Reader& r);

}  // namespace blocksmith
