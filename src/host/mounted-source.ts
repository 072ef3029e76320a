// Is a filesystem of this source mounted read-write? undelete and carve
// --undelete read the filesystems as they are on disk, which is not what a
// read-write mount holds (the kernel's cache) and changes while it is read.
// The rule lives in the core (native/core/operations/undelete.h over
// native/core/host/mount_check.h, the one "in use" place); this is its typed
// face, with Node-style errors.
import { toBlocksmithError } from '../api/errors.js';
import { native } from '../seam/native.js';

/** Throws (EBUSY, one line naming the mounts) when a filesystem of `source` is mounted read-write; read-only mounts pass. */
export function refuseMountedReadWrite(source: string): void {
  try {
    native.checkUndeleteSource(source);
  } catch (err) {
    throw toBlocksmithError(err);
  }
}
