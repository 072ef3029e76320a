// A carve's output directory: deciding whether it may be used before
// anything is created, creating it, and writing the files JS writes there
// (report.json, index.html) so that a reader never sees half a file and
// nothing planted in the directory is followed or replaced.
import {
  accessSync,
  closeSync,
  constants,
  fsyncSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  realpathSync,
  renameSync,
  rmdirSync,
  statSync,
  unlinkSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { randomFillSync } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { BlocksmithError } from '../api/errors.js';
import { native } from '../seam/native.js';

type Errno = NodeJS.ErrnoException;

/** Where the output directory will be: its path through the existing part, and what is still to be made. */
export interface OutputPlan {
  /** Absolute path, with the existing part resolved through its symlinks. */
  dir: string;
  /** The nearest existing ancestor of `dir` (or `dir` itself): what is stat'ed for the same-storage check. */
  existing: string;
  /** Components to create below `existing`, outermost first (empty when `dir` exists). */
  missing: string[];
}

function kindOf(st: Stats): string {
  if (st.isFile()) return 'a file';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  return 'not a directory';
}

function sysError(err: unknown, message: string, path: string, syscall: string): BlocksmithError {
  const e = err as Errno;
  return new BlocksmithError(`${message}: ${(e.message ?? String(err)).replace(/^[A-Z0-9]+: /, '').replace(/, \w+ '.*'$/, '')}`, {
    code: e.code ?? 'EIO',
    errno: e.errno,
    syscall,
    path,
  });
}

/** The mount point of the filesystem holding `path` (the core's host module reads /proc/self/mountinfo), or undefined. */
export function mountPointOf(path: string): string | undefined {
  return native.mountPointOf(path);
}

/**
 * Finds where `outDir` is (or would be) without creating anything: the
 * nearest existing ancestor must be a directory we can write in. Throws one
 * line naming what is wrong (a file in the way: ENOTDIR; a read-only
 * filesystem: EROFS; no permission: EACCES).
 */
export function planOutput(outDir: string): OutputPlan {
  const wanted = resolve(outDir);
  const missing: string[] = [];
  let p = wanted;
  for (;;) {
    let st: Stats | undefined;
    try {
      st = statSync(p);
    } catch (err) {
      const e = err as Errno;
      if (e.code !== 'ENOENT' && e.code !== 'ENOTDIR') throw sysError(err, `cannot use '${p}' for the output directory`, p, 'stat');
      // A dangling symlink would make mkdir fail with EEXIST: say what it is.
      if (e.code === 'ENOENT' && lstatSafe(p)?.isSymbolicLink())
        throw new BlocksmithError(`'${p}' is a symbolic link to a missing directory`, { code: 'ENOENT', syscall: 'stat', path: p });
    }
    if (st) {
      if (!st.isDirectory()) {
        const what = kindOf(st);
        const message =
          p === wanted ? `output directory '${p}' is ${what}, not a directory` : `cannot create output directory '${wanted}': '${p}' is ${what}, not a directory`;
        throw new BlocksmithError(message, { code: 'ENOTDIR', syscall: 'stat', path: p });
      }
      break;
    }
    missing.unshift(basename(p));
    p = dirname(p);
  }
  const existing = realpathSync(p);
  try {
    accessSync(existing, constants.W_OK | constants.X_OK);
  } catch (err) {
    const e = err as Errno;
    const target = missing.length === 0 ? `write in '${existing}'` : `create '${wanted}'`;
    if (e.code === 'EROFS') {
      const mp = mountPointOf(existing) ?? existing;
      throw new BlocksmithError(`cannot ${target}: the filesystem mounted at ${mp} is read-only`, { code: 'EROFS', syscall: 'access', path: existing });
    }
    throw sysError(err, `cannot ${target}`, existing, 'access');
  }
  return { dir: join(existing, ...missing), existing, missing };
}

function lstatSafe(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

/** Names a carve writes in its output directory (and its temporary names). */
const CARVE_NAMES = [/^report\.json$/, /^index\.html$/, /^partial$/, /^thumbnails$/, /^f\d{14}\.jpg$/, /^\.f\d{14}\.jpg\.part-/, /^\.report-reserve$/, /^\.(report\.json|index\.html)\.\d+\.\d+\.tmp$/];

export const isCarveName = (name: string) => CARVE_NAMES.some((re) => re.test(name));

/** The first entry of `dir` that a carve writes (another run's output), or undefined. */
export function carveOutputIn(dir: string): string | undefined {
  return readdirSync(dir).sort().find(isCarveName);
}

/**
 * Creates the missing components of `plan.dir` (0755), one by one. Returns
 * the directories created, outermost first, for `removeCreated` when the run
 * is refused after all. A component that appears meanwhile must be a real
 * directory.
 */
export function createOutput(plan: OutputPlan): string[] {
  const created: string[] = [];
  let p = plan.existing;
  try {
    for (const name of plan.missing) {
      p = join(p, name);
      try {
        mkdirSync(p, 0o755);
        created.push(p);
      } catch (err) {
        if ((err as Errno).code !== 'EEXIST') throw err;
        const st = lstatSync(p);
        if (!st.isDirectory()) throw new BlocksmithError(`'${p}' appeared while it was being created and is not a directory`, { code: 'EEXIST', syscall: 'mkdir', path: p });
      }
    }
  } catch (err) {
    removeCreated(created);
    if (err instanceof BlocksmithError) throw err;
    const e = err as Errno;
    if (e.code === 'EROFS') {
      const mp = mountPointOf(dirname(p)) ?? dirname(p);
      throw new BlocksmithError(`cannot create '${p}': the filesystem mounted at ${mp} is read-only`, { code: 'EROFS', syscall: 'mkdir', path: p });
    }
    throw sysError(err, `cannot create '${p}'`, p, 'mkdir');
  }
  return created;
}

/** Removes the directories `createOutput` made (innermost first), only while they are empty. */
export function removeCreated(created: string[]): void {
  for (const d of [...created].reverse()) {
    try {
      rmdirSync(d);
    } catch {
      return;
    }
  }
}

const CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

function writeAll(fd: number, data: Uint8Array): void {
  for (let done = 0; done < data.length; ) done += writeSync(fd, data, done, data.length - done);
}

let tmpSeq = 0;

/**
 * Writes dir/name atomically: a fresh temporary file (O_CREAT|O_EXCL|
 * O_NOFOLLOW) in `dir`, fsync'ed, then renamed over dir/name when `replace`
 * (a file of ours: the report being brought up to date), else linked to it
 * (EEXIST when something is there). Synchronous, so that it also runs from a
 * process 'exit' handler and never interleaves with itself.
 */
export function writeFileAtomicSync(dir: string, name: string, text: string, replace: boolean): void {
  const path = join(dir, name);
  const tmp = join(dir, `.${name}.${process.pid}.${tmpSeq++}.tmp`);
  const fd = openSync(tmp, CREATE, 0o644);
  try {
    writeAll(fd, Buffer.from(text, 'utf8'));
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkQuiet(tmp);
    throw err;
  }
  closeSync(fd);
  try {
    if (replace) renameSync(tmp, path);
    else linkNoReplace(tmp, path);
  } catch (err) {
    unlinkQuiet(tmp);
    if ((err as Errno).code === 'EEXIST')
      throw new BlocksmithError(`'${path}' already exists (not replaced)`, { code: 'EEXIST', syscall: 'link', path });
    throw err;
  }
  fsyncDir(dir);
}

function linkNoReplace(tmp: string, path: string): void {
  try {
    linkSync(tmp, path);
    unlinkSync(tmp);
    return;
  } catch (err) {
    const code = (err as Errno).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
  }
  // No hard links here (FAT, exFAT): check, then rename.
  if (lstatSafe(path)) throw Object.assign(new Error(`EEXIST: ${path}`), { code: 'EEXIST' });
  renameSync(tmp, path);
}

function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is still atomic.
  }
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

/**
 * Room kept for the final report: OUT/.report-reserve, filled with bytes
 * that do not compress, about twice the report's size. When the output
 * filesystem fills up, it is deleted to make room for the last report.
 */
export class ReportReserve {
  private size = 0;
  private readonly path: string;
  constructor(dir: string) {
    this.path = join(dir, '.report-reserve');
  }

  /** Grows the reserve to `bytes` (best effort: a full filesystem leaves it as it is). */
  grow(bytes: number): void {
    if (bytes <= this.size) return;
    let fd: number | undefined;
    try {
      fd = openSync(this.path, this.size === 0 ? CREATE : constants.O_WRONLY | constants.O_APPEND | constants.O_NOFOLLOW);
      const chunk = randomFillSync(Buffer.alloc(Math.min(bytes - this.size, 1 << 20)));
      while (this.size < bytes) {
        const n = Math.min(chunk.length, bytes - this.size);
        writeAll(fd, chunk.subarray(0, n));
        this.size += n;
      }
      fsyncSync(fd);
    } catch {
      // ENOSPC already: the run is about to fail and release what there is.
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  release(): void {
    if (this.size === 0 && !lstatSafe(this.path)) return;
    unlinkQuiet(this.path);
    this.size = 0;
  }

  /** Removes one left by a killed run (a regular file, never followed). */
  static clearStale(dir: string): void {
    const p = join(dir, '.report-reserve');
    if (lstatSafe(p)?.isFile()) unlinkQuiet(p);
  }
}

/** Temporary files a killed run left in `dir` (and partial/, thumbnails/): removed before a resumed run. */
export function clearStaleTemporaries(dir: string): void {
  for (const sub of ['', 'partial', 'thumbnails']) {
    const d = join(dir, sub);
    const st = lstatSafe(d);
    if (!st?.isDirectory()) continue;
    for (const name of readdirSync(d))
      if (/^\.f\d{14}\.jpg\.part-/.test(name) || /^\.(report\.json|index\.html)\.\d+\.\d+\.tmp$/.test(name))
        if (lstatSafe(join(d, name))?.isFile()) unlinkQuiet(join(d, name));
  }
}
