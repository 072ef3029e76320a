#include "core/host/mount_check.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/host/image_lock.h"
#include "core/host/mountinfo.h"

namespace blocksmith::host {
namespace {

struct Dev {
  std::string name;    // "loop3p1"
  std::string number;  // "7:49"
  uint32_t partition;  // 1 for loop3p1 (sysfs "partition"); 0 for the whole device
};

std::string read_line(const std::string& path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

// The device named by its sysfs directory, and its partitions.
void add_with_partitions(const std::string& sysdir, const std::string& name, std::vector<Dev>& out) {
  std::string num = read_line(sysdir + "/dev");
  if (num.empty()) return;
  out.push_back({name, num, 0});
  if (DIR* d = ::opendir(sysdir.c_str())) {
    while (struct dirent* de = ::readdir(d)) {
      std::string sub = de->d_name;
      if (sub.rfind(name, 0) != 0 || sub == name) continue;
      std::string p = read_line(sysdir + "/" + sub + "/dev");
      uint32_t part = static_cast<uint32_t>(std::strtoul(read_line(sysdir + "/" + sub + "/partition").c_str(), nullptr, 10));
      if (!p.empty()) out.push_back({sub, p, part});
    }
    ::closedir(d);
  }
}

}  // namespace

std::vector<FsUse> filesystem_uses(int fd) {
  std::vector<Dev> devs;
  struct stat st {};
  if (::fstat(fd, &st) != 0) return {};
  if (S_ISBLK(st.st_mode)) {
    std::string num = std::to_string(major(st.st_rdev)) + ":" + std::to_string(minor(st.st_rdev));
    std::string link = "/sys/dev/block/" + num;
    char buf[4096];
    ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
    std::string name = n > 0 ? std::string(buf, static_cast<size_t>(n)) : num;
    name = name.substr(name.rfind('/') + 1);
    add_with_partitions(link, name, devs);
    if (devs.empty()) devs.push_back({name, num, 0});
  } else {
    for (const auto& loop : loop_devices_backed_by(fd)) {
      std::string name = loop.substr(loop.rfind('/') + 1);
      add_with_partitions("/sys/block/" + name, name, devs);
    }
  }
  std::vector<FsUse> users;
  for (const auto& m : read_mountinfo()) {
    for (const auto& d : devs) {
      if (d.number == m.device) users.push_back({d.partition, "/dev/" + d.name + " is mounted on " + m.mount_point, m.read_only, true});
    }
  }
  for (const auto& d : devs) {
    std::string holders = "/sys/dev/block/" + d.number + "/holders";
    if (DIR* h = ::opendir(holders.c_str())) {
      while (struct dirent* de = ::readdir(h)) {
        if (de->d_name[0] == '.') continue;
        users.push_back({d.partition, "/dev/" + d.name + " is held by " + de->d_name, false});
      }
      ::closedir(h);
    }
  }
  return users;
}

std::vector<std::string> filesystem_users(int fd) {
  std::vector<std::string> out;
  for (auto& u : filesystem_uses(fd)) out.push_back(std::move(u.text));
  return out;
}

std::vector<std::string> read_write_mounts(int fd) {
  std::vector<std::string> out;
  for (auto& u : filesystem_uses(fd))
    if (u.mounted && !u.read_only) out.push_back(std::move(u.text));
  return out;
}

}  // namespace blocksmith::host
