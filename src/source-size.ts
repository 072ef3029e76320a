// The size in bytes of a source: st_size for a file, /sys for a block device
// (stat says 0 for devices, and Node has no BLKGETSIZE64), without reading it;
// undefined when it cannot tell (a character device, no sysfs).
import { readFileSync, statSync } from 'node:fs';

export function sourceSize(path: string): number | undefined {
  const st = statSync(path, { bigint: true });
  if (st.isFile()) return Number(st.size);
  if (!st.isBlockDevice()) return undefined;
  const major = ((st.rdev >> 8n) & 0xfffn) | ((st.rdev >> 32n) & ~0xfffn);
  const minor = (st.rdev & 0xffn) | ((st.rdev >> 12n) & ~0xffn);
  try {
    // In 512-byte sectors whatever the device's logical sector size.
    return Number(readFileSync(`/sys/dev/block/${major}:${minor}/size`, 'utf8').trim()) * 512;
  } catch {
    return undefined;
  }
}
