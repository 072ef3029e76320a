// Is this image in use, and by whom? The one place that decides, for every
// command that opens an image it may change or must read consistently:
//
//   in_place  (sparsify IMAGE): refused while anybody else has the image
//             open or holds QEMU's lock bytes, a loop device is attached to
//             it, or (devices) it is mounted or held; a regular file is then
//             leased (F_WRLCK) for the whole run and the run gives way to
//             anyone who opens it later (see lease_guard.h). --force goes
//             past every refusal except another in-place run, and says what
//             it overrode.
//   dry_run   (--dry-run, in place or copy): only reads, never refused for
//             being in use; warns that the figures can change when somebody
//             could be writing.
//   copy      (sparsify SRC DST, rbd import): refused while a VM holds the
//             image with QEMU's write lock, another process has it open for
//             writing (kernel answer: an F_RDLCK lease is refused), a
//             read-write loop device is attached, or (devices) it is mounted
//             read-write or held; the lease is kept for the copy, so a writer
//             that opens it later stops the copy. --force copies anyway.
//
// In every mode, an image another process holds a lease on that our open
// would break (an in-place run, or a copy for our in-place run) is refused
// before we open it: opening it would stop that run.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/host/lease_guard.h"

namespace blocksmith {

enum class UseMode { in_place, dry_run, copy };

struct ImageUse {
  // One line each, for the report: what --force overrode, or why the
  // figures of a dry run can change.
  std::vector<std::string> warnings;
  // Held for the run (in place and copies of regular files), else null.
  std::unique_ptr<LeaseGuard> lease;
};

// Opens the image with `open` and decides. `open(exclusive)` opens `path`
// (O_RDWR in place, O_RDONLY otherwise; with O_EXCL when `exclusive`, which
// is asked only for block devices in place) and returns the fd, which stays
// the caller's; it throws blocksmith::Error on failure. Throws the refusal
// (EBUSY, EROFS, EACCES: one line naming the holder) before anything is read.
ImageUse check_image_use(const std::string& path, UseMode mode, bool force, const std::function<int(bool)>& open);

}  // namespace blocksmith
