// QEMU's image locking, read and honoured.
//
// QEMU (block/file-posix.c) takes shared OFD byte-range locks on every image
// it opens: byte 100+i while it holds permission bit i, byte 200+i while it
// refuses to share it (bit 0 consistent read, 1 write, 2 write-unchanged,
// 3 resize). A running VM therefore holds locks in [100, 300). Any lock there
// means "a QEMU process (or another blocksmith) uses this image".
#pragma once

#include <string>
#include <vector>

namespace blocksmith {

struct LockHolder {
  int pid = 0;               // 0 when unknown
  std::string command;       // /proc/PID/comm, when known
};

struct LockProbe {
  bool locked = false;        // some other open file description holds a lock in [100, 300)
  long first_byte = -1;       // the first locked byte found
  bool write_locked = false;  // byte 101 is locked: a QEMU holds the image with write permission
  std::vector<LockHolder> holders;  // processes that have the image open (best effort)
};

// Tests with F_OFD_GETLK whether another open file description locks bytes
// in QEMU's range on `fd`'s file.
LockProbe probe_qemu_locks(int fd, const std::string& path);

// Takes the locks a writing QEMU would take (we use and do not share write
// and resize), so QEMU and a second blocksmith refuse the image while we
// work. Released when `fd` is closed. Throws Error (EBUSY) when they conflict.
void take_image_lock(int fd, const std::string& path);

// Serialises blocksmith instances that change the same image: an exclusive
// OFD write lock on one byte outside QEMU's range (QEMU's own locks are all
// shared, so two writers that each probe and then take them would both go
// ahead). Taken before the QEMU probe. Throws Error (EBUSY) when another
// blocksmith holds it; released when `fd` is closed. Needs `fd` open for write.
void take_blocksmith_lock(int fd, const std::string& path);

// Drops every lock take_image_lock and take_blocksmith_lock took on `fd`'s
// open file description (when an in-place run gives way to a new opener, so
// QEMU opening the image does not find our locks).
void release_image_locks(int fd);

// Describes holders for an error message: "qemu-system-x86 (pid 123)".
std::string describe_holders(const std::vector<LockHolder>& holders);

}  // namespace blocksmith

namespace blocksmith {

// Loop devices (/dev/loopN) whose backing file is the file open on `fd`.
std::vector<std::string> loop_devices_backed_by(int fd);

}  // namespace blocksmith
