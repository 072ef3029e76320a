#include "core/readers/image_open.h"

#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <set>
#include <utility>

#include "core/readers/container_probe.h"
#include "core/base/error.h"
#include "core/qcow2/qcow2_reader.h"

namespace blocksmith {
namespace {

using FileId = std::pair<dev_t, ino_t>;

struct ChainState {
  bool use_seek_hole = true;
  const BackingPolicy* policy = nullptr;
  std::string top;  // the top image's path, as given
  std::set<FileId> seen;
  ImageDescription* desc = nullptr;
  // Real paths of the top image's directory and of the allowed directories,
  // resolved when the first backing file is met.
  bool roots_ready = false;
  std::string root;
  std::vector<std::string> allowed;
};

std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string real_dir(const std::string& dir, const std::string& what) {
  char* r = ::realpath(dir.c_str(), nullptr);
  if (!r) throw_sys(errno, "realpath", dir, what + " '" + dir + "'");
  std::string s(r);
  std::free(r);
  return s;
}

// True when `p` (absolute, resolved) lies inside the directory `root`.
bool is_under(const std::string& p, const std::string& root) {
  if (root == "/") return p.size() > 1 && p[0] == '/';
  return p.size() > root.size() && p.compare(0, root.size(), root) == 0 && p[root.size()] == '/';
}

// Where the open file `fd` really is: the kernel's name for it, so that
// symlinks, '..' and renames between a check and the open do not matter.
std::string fd_path(int fd, const std::string& path, const std::string& image) {
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  char buf[PATH_MAX + 1];
  ssize_t n = ::readlink(link.c_str(), buf, sizeof buf);
  if (n < 0 || static_cast<size_t>(n) >= sizeof buf || buf[0] != '/') {
    int e = n < 0 ? errno : ENAMETOOLONG;
    throw Error(e, "ERR_BACKING_REFUSED", "readlink", image,
                "cannot tell where backing file '" + path + "' of '" + image + "' is (readlink " + link + ": " +
                    errno_name(e) + "; is /proc mounted?): refused");
  }
  return std::string(buf, static_cast<size_t>(n));
}

const char* kind_of(mode_t m) {
  if (S_ISBLK(m)) return "a block device";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

// Kernel pseudo-filesystems: their "regular files" are kernel state (e.g.
// /proc/kcore, /proc/self/environ), never a disk image.
bool pseudo_fs(int fd) {
  struct statfs sf {};
  if (::fstatfs(fd, &sf) != 0) return false;
  switch (static_cast<unsigned long>(sf.f_type)) {
    case PROC_SUPER_MAGIC:
    case SYSFS_MAGIC:
    case DEBUGFS_MAGIC:
    case TRACEFS_MAGIC:
    case SECURITYFS_MAGIC:
    case EFIVARFS_MAGIC:
    case CGROUP_SUPER_MAGIC:
    case CGROUP2_SUPER_MAGIC:
      return true;
    default:
      return false;
  }
}

[[noreturn]] void refuse(const std::string& image, const std::string& name, const std::string& why,
                         const std::string& how) {
  throw Error(EPERM, "ERR_BACKING_REFUSED", "open", image,
              "'" + image + "' has backing file '" + name + "'" + why + ": refused (" + how + ")");
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

// Opens the backing file `name` of `image` (at `path`) under the policy; on
// return `real` is where the opened file is.
std::unique_ptr<FileReader> open_backing_file(const std::string& image, const std::string& name, const std::string& path,
                                              ChainState& st, std::string& real) {
  const BackingPolicy& pol = *st.policy;
  const std::string all = "--allow-backing follows it anyway";
  if (!pol.allow_all) {
    // Not even opened when it is a device or FIFO: opening some devices acts
    // (a tape rewinds on close). Checked again on the opened file below.
    struct stat sb {};
    if (::stat(path.c_str(), &sb) == 0 && !S_ISREG(sb.st_mode))
      refuse(image, name, std::string(", ") + kind_of(sb.st_mode) + (path != name ? " (" + path + ")" : ""),
             "a backing file must be a regular file; " + all);
    if (!st.roots_ready) {
      st.root = real_dir(dir_of(st.top), "the directory of image");
      for (const auto& d : pol.allowed_dirs) st.allowed.push_back(real_dir(d, "the allowed backing directory"));
      st.roots_ready = true;
    }
  }
  auto file = std::make_unique<FileReader>(FileReader::open(path, st.use_seek_hole));
  if (pol.allow_all) {
    try {
      real = fd_path(file->fd(), path, image);
    } catch (const Error&) {
      real = path;  // everything is allowed: the name is only for the report
    }
    return file;
  }
  real = fd_path(file->fd(), path, image);
  struct stat sb {};
  if (::fstat(file->fd(), &sb) != 0) throw_sys(errno, "fstat", path);
  if (!S_ISREG(sb.st_mode))
    refuse(image, name, std::string(", ") + kind_of(sb.st_mode) + " (" + real + ")",
           "a backing file must be a regular file; " + all);
  if (pseudo_fs(file->fd()))
    refuse(image, name, ", which resolves to " + real + " on a kernel pseudo-filesystem", "a backing file must be a disk image; " + all);
  bool inside = is_under(real, st.root);
  for (const auto& d : st.allowed) inside = inside || is_under(real, d);
  if (!inside) {
    std::string where = ", which resolves to " + real + ", outside " + st.root + " (the directory of '" + st.top + "')";
    for (const auto& d : st.allowed) where += " and " + d;
    refuse(image, name, where, "--allow-backing-dir DIR allows another directory; " + all);
  }
  return file;
}

[[noreturn]] void refuse_container(const ContainerFormat& c, const std::string& path, const std::string& named_by) {
  if (!named_by.empty()) {
    throw Error(ENOTSUP, "ERR_UNSUPPORTED_FORMAT", "open", path,
                "backing file '" + path + "' of '" + named_by + "' is a " + c.title +
                    " image, which blocksmith does not read (convert the chain with qemu-img convert -O raw)");
  }
  throw Error(ENOTSUP, "ERR_UNSUPPORTED_FORMAT", "open", path,
              "'" + path + "' is a " + c.title + " image, which blocksmith does not read: convert it first (qemu-img convert -f " +
                  c.name + " -O raw '" + path + "' OUT.raw), or pass --format raw to treat its bytes as raw");
}

ImageFormat detect(Reader& r, const std::string& named_by) {
  if (const ContainerFormat* c = probe_container(r)) refuse_container(*c, r.path(), named_by);
  return qcow2::has_qcow2_magic(r) ? ImageFormat::qcow2 : ImageFormat::raw;
}

std::unique_ptr<Reader> open_layer(std::unique_ptr<FileReader> file, ImageFormat format, int depth, ChainState& st,
                                   FileReader** top, const std::string& named_by);

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
    std::string real;
    auto file = open_backing_file(image, name, path, st, real);
    st.desc->backing_chain.push_back({name, real, ""});
    return open_layer(std::move(file), f, depth + 1, st, nullptr, image);
  };
}

std::unique_ptr<Reader> open_layer(std::unique_ptr<FileReader> file, ImageFormat format, int depth, ChainState& st,
                                   FileReader** top, const std::string& named_by) {
  const std::string path = file->path();
  FileId id{file->info().st_dev, file->info().st_ino};
  if (!st.seen.insert(id).second) {
    throw Error(ELOOP, "ELOOP", "open", path, "backing file loop: '" + path + "' is already in the chain of this image");
  }
  if (top) *top = file.get();
  if (format == ImageFormat::automatic) format = detect(*file, named_by);
  if (depth > 0) st.desc->backing_chain[static_cast<size_t>(depth - 1)].format = image_format_name(format);
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

ImageFormat detect_format(Reader& r) { return detect(r, ""); }

OpenedImage open_image(const std::string& path, ImageFormat format, bool use_seek_hole, const BackingPolicy& backing) {
  OpenedImage img;
  ChainState st;
  st.use_seek_hole = use_seek_hole;
  st.policy = &backing;
  st.top = path;
  st.desc = &img.description;
  FileReader* top = nullptr;
  // Detect on the top file first so the description has the right format.
  img.reader = open_layer(std::make_unique<FileReader>(FileReader::open(path, use_seek_hole)), format, 0, st, &top, "");
  img.file = top;
  img.description.format = img.reader.get() == top ? ImageFormat::raw : ImageFormat::qcow2;
  img.description.file_size = top->size();
  return img;
}

}  // namespace blocksmith
