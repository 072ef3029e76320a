// The mounts of this process's namespace, from /proc/self/mountinfo, read in
// one place: the in-use checks (mount_check.h) and the messages that name the
// filesystem an output would go to (through the binding) both use it.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace blocksmith::host {

struct MountEntry {
  std::string device;       // "7:49": major:minor of the mounted filesystem's device
  std::string mount_point;  // unescaped ("\040" is a space in the file)
  bool read_only = false;   // the filesystem itself is read-only (not only this bind mount)
};

// Every mount, in the file's order; empty when /proc is not there.
std::vector<MountEntry> read_mountinfo();

// The mount point of the filesystem holding `path` (resolved through its
// symlinks): the longest mount point that is `path` or one of its parents.
// nullopt when the path cannot be resolved or /proc is not there.
std::optional<std::string> mount_point_of(const std::string& path);

}  // namespace blocksmith::host
