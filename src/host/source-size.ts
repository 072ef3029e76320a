// The size in bytes of a source without reading it: st_size for a file, the
// core's host module (sysfs) for a block device (stat says 0 for devices, and
// Node has no BLKGETSIZE64); undefined when it cannot tell (a character
// device, no sysfs). Errors of stat are Node's own.
import { statSync } from 'node:fs';
import { native } from '../seam/native.js';

export function sourceSize(path: string): number | undefined {
  const st = statSync(path);
  if (st.isFile()) return st.size;
  if (!st.isBlockDevice()) return undefined;
  return native.blockDeviceSize(path);
}
