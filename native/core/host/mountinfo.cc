#include "core/host/mountinfo.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace blocksmith::host {
namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo (octal).
std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && s.size() - i > 3 && s[i + 1] >= '0' && s[i + 1] <= '7' && s[i + 2] >= '0' &&
        s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool is_within(const std::string& path, const std::string& mp) {
  if (path == mp) return true;
  if (mp == "/") return path.rfind('/', 0) == 0;
  return path.size() > mp.size() && path.compare(0, mp.size(), mp) == 0 && path[mp.size()] == '/';
}

}  // namespace

std::vector<MountEntry> read_mountinfo() {
  std::vector<MountEntry> out;
  std::ifstream mi("/proc/self/mountinfo");
  std::string line;
  while (std::getline(mi, line)) {
    std::istringstream ls(line);
    std::string id, parent, num, root, mountpoint;
    if (!(ls >> id >> parent >> num >> root >> mountpoint)) continue;
    MountEntry e;
    e.device = num;
    e.mount_point = unescape(mountpoint);
    // The superblock's options follow " - FSTYPE SOURCE ": "ro,..." when the
    // filesystem itself is read-only (a bind mount's own "ro" is not enough).
    auto dash = line.find(" - ");
    if (dash != std::string::npos) {
      std::istringstream tail(line.substr(dash + 3));
      std::string type, source, opts;
      tail >> type >> source >> opts;
      e.read_only = opts == "ro" || opts.rfind("ro,", 0) == 0;
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::optional<std::string> mount_point_of(const std::string& path) {
  char* real = ::realpath(path.c_str(), nullptr);
  if (!real) return std::nullopt;
  const std::string r(real);
  std::free(real);
  std::optional<std::string> best;
  // The last of equally long ones wins: a later mount over the same point hides the earlier.
  for (const auto& m : read_mountinfo()) {
    if (is_within(r, m.mount_point) && (!best || m.mount_point.size() >= best->size())) best = m.mount_point;
  }
  return best;
}

}  // namespace blocksmith::host
