// Is a filesystem inside this image in use? Looks for the block devices that
// expose it (the device itself, the loop devices backed by the image file,
// and their partitions) in /proc/self/mountinfo and in sysfs holders
// (device-mapper, md). Used by sparsify --fs, which --force never overrides,
// and by the in-use checks of block devices (image_use.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace blocksmith::host {

struct FsUse {
  uint32_t partition = 0;  // the partition number of the device used; 0: the whole device
  std::string text;        // "/dev/loop3p1 is mounted on /mnt/x", "/dev/loop3 is held by dm-0"
  bool read_only = false;  // a read-only mount (nothing writes through it)
  bool mounted = false;    // a mount (else a holder: device-mapper, md)
};

// Every use found (mounts and holders), with the partition it concerns.
std::vector<FsUse> filesystem_uses(int fd);

// One line per use found, e.g. "/dev/loop3p1 is mounted on /mnt/x".
std::vector<std::string> filesystem_users(int fd);

// The read-write mounts among them, one line each: what a command that reads
// the filesystems as they are on disk (undelete, carve --undelete) refuses,
// since the kernel writes them behind its back and its cache is not on disk.
std::vector<std::string> read_write_mounts(int fd);

}  // namespace blocksmith::host
