#include "core/host/same_storage.h"

#include <sys/stat.h>

#include <cerrno>
#include <filesystem>

#include "core/base/error.h"
#include "core/host/block_devices.h"

namespace blocksmith::host {
namespace {

// The stat of out_dir or of its nearest ancestor that exists.
struct stat stat_nearest(const std::string& out_dir) {
  std::filesystem::path p = std::filesystem::absolute(out_dir).lexically_normal();
  for (;;) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0) return st;
    const int err = errno;
    if ((err != ENOENT && err != ENOTDIR) || p == p.parent_path()) throw_sys(err, "stat", p.string());
    p = p.parent_path();
  }
}

}  // namespace

std::optional<std::string> same_storage(const std::string& source, const std::string& out_dir) {
  struct stat s {};
  if (::stat(source.c_str(), &s) != 0) throw_sys(errno, "stat", source);
  const struct stat o = stat_nearest(out_dir);
  if (!S_ISBLK(s.st_mode)) {
    if (s.st_dev == o.st_dev) return out_dir + " is on the filesystem that holds " + source;
    return std::nullopt;
  }
  const std::string disk = whole_disk_name(s.st_rdev);
  if (disk == whole_disk_name(o.st_dev)) return out_dir + " is on " + source + " (" + disk + ")";
  if (auto backing = loop_backing_file(disk)) {
    struct stat b {};
    if (::stat(backing->c_str(), &b) == 0 && b.st_dev == o.st_dev) {
      return out_dir + " is on the filesystem that holds " + *backing + ", the backing file of " + source;
    }
  }
  return std::nullopt;
}

}  // namespace blocksmith::host
