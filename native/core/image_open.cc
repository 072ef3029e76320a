#include "image_open.h"

#include <cerrno>
#include <set>
#include <utility>

#include "error.h"
#include "qcow2/qcow2_reader.h"

namespace blocksmith {
namespace {

using FileId = std::pair<dev_t, ino_t>;

struct ChainState {
  bool use_seek_hole;
  std::set<FileId> seen;
  ImageDescription* desc;
};

std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Backing file names as QEMU stores them: a path relative to the image's
// directory, an absolute path, or "file:PATH". Other protocols are refused.
std::string resolve_backing(const std::string& image, const std::string& name) {
  std::string n = name;
  if (n.rfind("file:", 0) == 0) n = n.substr(5);
  auto colon = n.find(':');
  auto slash = n.find('/');
  if (n.rfind("json:", 0) == 0 || (colon != std::string::npos && (slash == std::string::npos || colon < slash) &&
                                   n.find("://") == colon)) {
    throw Error(ENOTSUP, "ERR_QCOW2_UNSUPPORTED", "open", image,
                "'" + image + "' has backing file '" + name + "', which is not a local file");
  }
  if (n.empty()) throw Error(EINVAL, "ERR_QCOW2_CORRUPT", "open", image, "'" + image + "' names an empty backing file");
  if (n[0] == '/' || image.find('/') == std::string::npos) return n;
  return dir_of(image) + "/" + n;
}

std::unique_ptr<Reader> open_layer(const std::string& path, ImageFormat format, int depth, ChainState& st,
                                   FileReader** top);

qcow2::BackingOpener backing_opener(const std::string& image, int depth, ChainState& st) {
  return [image, depth, &st](const std::string& name, const std::string& fmt) -> std::unique_ptr<Reader> {
    if (depth + 1 > kMaxBackingDepth) {
      throw Error(ELOOP, "ELOOP", "open", image,
                  "'" + image + "': the backing chain is deeper than " + std::to_string(kMaxBackingDepth) + " images");
    }
    std::string path = resolve_backing(image, name);
    ImageFormat f = ImageFormat::automatic;
    if (fmt == "raw") f = ImageFormat::raw;
    else if (fmt == "qcow2") f = ImageFormat::qcow2;
    else if (!fmt.empty())
      throw Error(ENOTSUP, "ERR_QCOW2_UNSUPPORTED", "open", path,
                  "backing file '" + path + "' of '" + image + "' has format '" + fmt + "', which is not supported (raw, qcow2)");
    st.desc->backing_chain.push_back(path);
    return open_layer(path, f, depth + 1, st, nullptr);
  };
}

std::unique_ptr<Reader> open_layer(const std::string& path, ImageFormat format, int depth, ChainState& st,
                                   FileReader** top) {
  auto file = std::make_unique<FileReader>(FileReader::open(path, st.use_seek_hole));
  FileId id{file->info().st_dev, file->info().st_ino};
  if (!st.seen.insert(id).second) {
    throw Error(ELOOP, "ELOOP", "open", path, "backing file loop: '" + path + "' is already in the chain of this image");
  }
  if (top) *top = file.get();
  if (format == ImageFormat::automatic) format = detect_format(*file);
  if (depth > 0) st.desc->backing_formats.push_back(image_format_name(format));
  if (format == ImageFormat::raw) return file;
  auto q = std::make_unique<qcow2::Qcow2Reader>(std::move(file), backing_opener(path, depth, st));
  if (depth == 0) {
    const auto& h = q->header();
    st.desc->version = h.version;
    st.desc->cluster_size = h.cluster_size;
    st.desc->compression = qcow2::compression_name(h.compression);
    st.desc->extended_l2 = h.extended_l2;
  }
  return q;
}

}  // namespace

ImageFormat parse_image_format(const std::string& s) {
  if (s == "raw") return ImageFormat::raw;
  if (s == "qcow2") return ImageFormat::qcow2;
  if (s.empty() || s == "auto") return ImageFormat::automatic;
  throw Error(EINVAL, "EINVAL", "", "", "unknown image format '" + s + "' (known: raw, qcow2)");
}

const char* image_format_name(ImageFormat f) {
  switch (f) {
    case ImageFormat::raw: return "raw";
    case ImageFormat::qcow2: return "qcow2";
    default: return "auto";
  }
}

ImageFormat detect_format(Reader& r) { return qcow2::has_qcow2_magic(r) ? ImageFormat::qcow2 : ImageFormat::raw; }

OpenedImage open_image(const std::string& path, ImageFormat format, bool use_seek_hole) {
  OpenedImage img;
  ChainState st{use_seek_hole, {}, &img.description};
  FileReader* top = nullptr;
  // Detect on the top file first so the description has the right format.
  img.reader = open_layer(path, format, 0, st, &top);
  img.file = top;
  img.description.format = img.reader.get() == top ? ImageFormat::raw : ImageFormat::qcow2;
  img.description.file_size = top->size();
  return img;
}

}  // namespace blocksmith
