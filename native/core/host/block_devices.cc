#include "core/host/block_devices.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cstdlib>
#include <fstream>

namespace blocksmith::host {
namespace {

std::string number(dev_t dev) { return std::to_string(major(dev)) + ":" + std::to_string(minor(dev)); }

std::string read_line(const std::string& path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

std::string last_component(const std::string& p) { return p.substr(p.rfind('/') + 1); }

}  // namespace

std::string whole_disk_name(dev_t dev) {
  char* real = ::realpath(("/sys/dev/block/" + number(dev)).c_str(), nullptr);
  if (!real) return number(dev);
  std::string dir(real);
  std::free(real);
  struct stat st {};
  // A partition's sysfs directory sits inside its disk's and has "partition".
  if (::stat((dir + "/partition").c_str(), &st) == 0) dir = dir.substr(0, dir.rfind('/'));
  return last_component(dir);
}

std::optional<uint64_t> block_device_size(dev_t dev) {
  const std::string s = read_line("/sys/dev/block/" + number(dev) + "/size");
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  const unsigned long long sectors = std::strtoull(s.c_str(), &end, 10);
  if (end == s.c_str() || sectors > (UINT64_MAX >> 9)) return std::nullopt;
  return uint64_t(sectors) << 9;
}

std::optional<std::string> loop_backing_file(const std::string& disk_name) {
  if (disk_name.find('/') != std::string::npos) return std::nullopt;
  std::string backing = read_line("/sys/block/" + disk_name + "/loop/backing_file");
  if (backing.empty()) return std::nullopt;
  return backing;
}

}  // namespace blocksmith::host
