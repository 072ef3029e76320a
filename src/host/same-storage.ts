// Would carving into outDir write over the source's sectors? The rule lives in
// the core's host module (native/core/host/same_storage.h), shared with the
// C++ checks; this is its typed face, with Node-style errors.
import { toBlocksmithError } from '../api/errors.js';
import { native } from '../seam/native.js';

/**
 * Why writing to outDir could overwrite the source's sectors, or null: the
 * same filesystem as a file source; the same disk (or a partition of it) as a
 * device source; for a loop device, the filesystem holding its backing file.
 * outDir need not exist: its nearest existing ancestor is where it would be.
 */
export async function sameStorage(source: string, outDir: string): Promise<string | null> {
  try {
    return native.sameStorage(source, outDir);
  } catch (err) {
    throw toBlocksmithError(err);
  }
}
