// The rule for a file blocksmith writes (map --svg today; the same rule as
// the addon's sparse copies, native/core/sinks/sparse_file_sink.cc):
//
// - never a block or character device, FIFO, socket or directory;
// - never a source (same st_dev + st_ino, so also through a symlink or a
//   hard link to it);
// - never an existing file without `overwrite`; with it, the file is replaced
//   atomically (a temporary file in the same directory, then rename), so a
//   failed write leaves the old file whole;
// - never through a symbolic link: root writes into directories others can
//   write to (/tmp), where a planted link could point anywhere. Files are
//   created with O_CREAT|O_EXCL|O_NOFOLLOW, which refuses whatever is there;
// - a refusal creates nothing, and a failed write removes what it created.
import { constants, type BigIntStats, type Stats } from 'node:fs';
import { lstat, open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { BlocksmithError } from '../api/errors.js';

export interface NewFileOptions {
  /** Replace an existing regular file (never a device, a link or a source). */
  overwrite?: boolean;
  /** Files that must never be written or replaced: the source of the run (a path), its backing files ({ path, role }). */
  protect?: (string | { path: string; role: string })[];
  /** What the file is, for messages ("SVG"). */
  what?: string;
}

function refuse(code: string, path: string, message: string): never {
  throw new BlocksmithError(message, { code, path, syscall: 'open' });
}

function errnoError(err: unknown, path: string, doing: string): BlocksmithError {
  const e = err as NodeJS.ErrnoException;
  const reason = (e.message ?? String(err)).replace(/^[A-Z0-9]+: /, '').replace(/, \w+ '.*'$/, '');
  return new BlocksmithError(`${doing} '${path}': ${reason}`, { code: e.code ?? 'EIO', errno: e.errno, syscall: e.syscall, path });
}

function kindOf(st: Stats | BigIntStats): string | undefined {
  if (st.isBlockDevice()) return 'a block device';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isDirectory()) return 'a directory';
  return undefined;
}

async function identities(files: NonNullable<NewFileOptions['protect']>): Promise<{ path: string; role: string; dev: bigint; ino: bigint }[]> {
  const ids = [];
  for (const f of files) {
    const { path, role } = typeof f === 'string' ? { path: f, role: 'the source' } : f;
    try {
      const st = await stat(path, { bigint: true });
      ids.push({ path, role, dev: st.dev, ino: st.ino });
    } catch {
      // A source that cannot be stat'ed cannot be written through this path either.
    }
  }
  return ids;
}

/**
 * Throws (one-line BlocksmithError) when `path` may not be written under the
 * rule; changes nothing. Call it before long work, so that a refusal comes
 * first; writeNewFile checks again.
 */
export async function checkNewFile(path: string, options: NewFileOptions = {}): Promise<void> {
  const what = options.what ? `${options.what} file` : 'file';
  let link: Stats;
  try {
    link = await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // a new name: open(O_EXCL) decides
    throw errnoError(err, path, `cannot create the ${what}`);
  }
  // What the name leads to, for the messages that matter most (a device, a source).
  const target = link.isSymbolicLink() ? await stat(path, { bigint: true }).catch(() => undefined) : await stat(path, { bigint: true });
  if (target) {
    const kind = kindOf(target);
    if (kind && !target.isDirectory())
      refuse('EINVAL', path, `refusing to write the ${what} '${path}': it is ${kind}${link.isSymbolicLink() ? ' (through a symbolic link)' : ''}; blocksmith never writes an output file onto a device`);
    for (const id of await identities(options.protect ?? [])) {
      if (id.dev === target.dev && id.ino === target.ino)
        refuse('EINVAL', path, `refusing to write the ${what} '${path}': it is ${id.role} '${id.path}'${link.isSymbolicLink() ? ' (through a symbolic link)' : ''}`);
    }
  }
  if (link.isSymbolicLink()) refuse(options.overwrite ? 'ELOOP' : 'EEXIST', path, `refusing to write the ${what} '${path}': it is a symbolic link (not followed, not replaced)`);
  if (link.isDirectory()) refuse('EISDIR', path, `refusing to write the ${what} '${path}': it is a directory`);
  if (!link.isFile()) refuse('EINVAL', path, `refusing to write the ${what} '${path}': it is ${kindOf(link) ?? 'not a regular file'}`);
  if (!options.overwrite) refuse('EEXIST', path, `${what} '${path}' exists (use --overwrite to replace it)`);
}

/** Opens a new file for writing: O_CREAT|O_EXCL|O_NOFOLLOW, so nothing already there (file, link, device) is used. */
export async function createExclusive(path: string, mode = 0o666): Promise<FileHandle> {
  return open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
}

async function writeAll(fh: FileHandle, data: string | Uint8Array): Promise<void> {
  await fh.writeFile(data);
  await fh.sync();
}

/** Removes `path` only if it is still the file `fh` created (nobody replaced it meanwhile). */
async function removeOwn(path: string, fh: FileHandle): Promise<void> {
  try {
    const [mine, there] = await Promise.all([fh.stat({ bigint: true }), lstat(path, { bigint: true })]);
    if (mine.dev === there.dev && mine.ino === there.ino) await unlink(path);
  } catch {
    // already gone
  }
}

/** Writes `data` as a new file at `path` under the rule above. */
export async function writeNewFile(path: string, data: string | Uint8Array, options: NewFileOptions = {}): Promise<void> {
  await checkNewFile(path, options);
  const what = options.what ? `${options.what} file` : 'file';
  if (!options.overwrite) {
    let fh: FileHandle;
    try {
      fh = await createExclusive(path);
    } catch (err) {
      // Something appeared at the name since the check (EEXIST, ELOOP for a link).
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' || (err as NodeJS.ErrnoException).code === 'ELOOP')
        refuse('EEXIST', path, `${what} '${path}' exists (use --overwrite to replace it)`);
      throw errnoError(err, path, `cannot create the ${what}`);
    }
    try {
      await writeAll(fh, data);
    } catch (err) {
      await removeOwn(path, fh);
      throw errnoError(err, path, `cannot write the ${what}`);
    } finally {
      await fh.close();
    }
    return;
  }
  // --overwrite: a temporary name in the same directory (so rename is atomic),
  // created exclusively; renamed over the target only when complete.
  const tmp = join(dirname(path), `.${basename(path)}.blocksmith-${randomBytes(6).toString('hex')}`);
  let fh: FileHandle;
  try {
    fh = await createExclusive(tmp);
  } catch (err) {
    throw errnoError(err, path, `cannot create the ${what}`);
  }
  let renamed = false;
  try {
    await writeAll(fh, data);
    // The target may have changed while we wrote: check it again right before the rename.
    await checkNewFile(path, options);
    await rename(tmp, path);
    renamed = true;
  } catch (err) {
    await removeOwn(tmp, fh);
    if (err instanceof BlocksmithError) throw err;
    throw errnoError(err, path, `cannot write the ${what}`);
  } finally {
    await fh.close();
  }
  if (renamed) {
    // Make the new name durable too.
    const dir = await open(dirname(path), constants.O_RDONLY | constants.O_DIRECTORY).catch(() => undefined);
    await dir?.sync().catch(() => {});
    await dir?.close();
  }
}
