// ext2/3/4 images with deleted files, made by the real kernel: mkfs, loop
// mount, write (JPEGs, files past the 12 direct blocks, a ~300-entry htree
// directory, nested directories, each with its own mtime), sync, delete,
// sync, unmount. What was deleted is returned with its bytes and mtime, and
// which deleted files a later file overwrote (by the blocks FIEMAP gave, not
// guessed), so a suite can compare what undelete returns byte for byte. The
// same steps scale up for the benchmark (`manyFiles`, `sizeMiB`).
//
// Every loop device and mount is undone in `finally`.
import { spawnSync } from 'node:child_process';
import { randomBytes as cryptoRandom } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readSync, rmSync, statSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { makeJpeg, randomBytes } from './carve.js';
import { MiB, spawnSyncOk } from './foundation.js';
import { attachLoop, detachLoop, mount, unmount } from './sparsify.js';

export interface ExtImageSpec {
  type: 'ext2' | 'ext3' | 'ext4';
  /** mkfs -O list, e.g. '^metadata_csum' or '64bit'. */
  features?: string;
  sizeMiB: number;
  /** Default: mke2fs's choice for the size (1 KiB below 512 MiB). */
  blockSize?: number;
  /** Files in the htree directory (default 300). */
  manyFiles?: number;
  /**
   * Delete victim.bin first, then fill every free block with a new file
   * (filler.bin) before the other deletes: victim.bin is overwritten. Default true.
   */
  overwrite?: boolean;
  /** Bytes written into the raw image before mkfs (which does not discard them): free space no inode describes. */
  planted?: { offset: number; bytes: Buffer };
}

export interface ExtFile {
  /** Path from the filesystem's root, no leading '/'. */
  path: string;
  bytes: Buffer;
  /** Seconds since the epoch (whole seconds). */
  mtime: number;
  inode?: number;
}

export interface DeletedExt {
  image: string;
  blockSize: number;
  /** Deleted and not overwritten: what must come back. */
  deleted: ExtFile[];
  /** Deleted, then (some of) their blocks given to filler.bin. */
  overwritten: ExtFile[];
  /** Deleted, then their inode given to filler.bin: they come back (if at all) as its earlier incarnation. */
  reused: ExtFile[];
  /** Still there at unmount (filler.bin by size only: its bytes are not kept). */
  live: ExtFile[];
}

const T0 = Date.UTC(2023, 4, 1, 10, 0, 0) / 1000;

/** Whether the block bitmap of the (unmounted) ext image marks `block` in use. */
function blockInUse(image: string, block: number): boolean {
  const out = spawnSyncOk('debugfs', ['-R', `testb ${block}`, image]);
  if (/marked in use/.test(out)) return true;
  if (/not in use/.test(out)) return false;
  throw new Error(`debugfs testb ${block} ${image}: ${out.trim()}`);
}

/** The physical blocks of `file` (FIEMAP through filefrag), in filesystem blocks. */
export function blocksOf(file: string): Set<number> {
  const out = new Set<number>();
  for (const line of spawnSyncOk('filefrag', ['-v', file]).split('\n')) {
    const m = /^\s*\d+:\s+\d+\.\.\s*\d+:\s+(\d+)\.\.\s*(\d+):/.exec(line);
    if (!m) continue;
    for (let b = Number(m[1]); b <= Number(m[2]); b++) out.add(b);
  }
  return out;
}

function put(root: string, f: ExtFile): void {
  const p = join(root, f.path);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, f.bytes);
  utimesSync(p, f.mtime, f.mtime);
  f.inode = statSync(p).ino;
}

/** Writes random bytes into `path` until the filesystem is full (ENOSPC); fsyncs it. */
function fill(path: string): void {
  const fd = openSync(path, 'w');
  try {
    const chunk = cryptoRandom(MiB);
    for (let n = chunk.length; ; ) {
      try {
        const w = writeSync(fd, chunk, 0, n);
        if (w < n) n = n - w;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
        if (n <= 1024) break;
        n = n >> 1;  // the last blocks
      }
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** mkfs'd image, mounted through a loop device while `fn` runs (synced and unmounted after, even when it throws). */
export function withMountedImage<T>(image: string, mnt: string, fn: (root: string, dev: string) => T, opts: string[] = []): T {
  mkdirSync(mnt, { recursive: true });
  const dev = attachLoop(image);
  try {
    mount(dev, mnt, opts);
    try {
      const r = fn(mnt, dev);
      spawnSyncOk('sync', ['-f', mnt]);
      return r;
    } finally {
      unmount(mnt);
    }
  } finally {
    detachLoop(dev);
  }
}

export function makeExtImage(image: string, spec: ExtImageSpec): void {
  rmSync(image, { force: true });
  const fd = openSync(image, 'w');
  try {
    if (spec.planted) writeSync(fd, spec.planted.bytes, 0, spec.planted.bytes.length, spec.planted.offset);
  } finally {
    closeSync(fd);
  }
  spawnSync('truncate', ['-s', `${spec.sizeMiB}M`, image]);
  spawnSyncOk(`mkfs.${spec.type}`, [
    '-F',
    '-q',
    '-m',
    '0',
    '-E',
    'nodiscard,lazy_itable_init=0,lazy_journal_init=0',
    ...(spec.blockSize ? ['-b', String(spec.blockSize)] : []),
    ...(spec.features ? ['-O', spec.features] : []),
    image,
  ]);
}

/**
 * The scenario: docs/ (live and deleted files), photos/ (nested directories
 * of JPEGs and notes: rm -r), many/ (the htree directory: rm -r), big.bin
 * (past the double-indirect limit of 1 KiB blocks: rm), victim.bin
 * (overwritten). `dir` holds the image and the mount point.
 */
export function buildDeletedExt(dir: string, name: string, spec: ExtImageSpec): DeletedExt {
  const image = join(dir, `${name}.img`);
  makeExtImage(image, spec);
  const seed = [...name].reduce((a, c) => a * 31 + c.charCodeAt(0), 7) >>> 0;
  let t = T0 + (seed % 1000) * 3600;
  const file = (path: string, bytes: Buffer): ExtFile => ({ path, bytes, mtime: (t += 61) });
  const jpeg = (path: string, w: number, h: number) => file(path, makeJpeg(dir, `${name}-${w}x${h}-${t}`, w, h, seed + w + h));

  const photos = [
    jpeg('photos/2023/summer/IMG_0001.jpg', 320, 240),
    jpeg('photos/2023/summer/IMG_0002.jpg', 400, 300),
    file('photos/2023/notes.txt', Buffer.from('beach, then the hills\n'.repeat(40))),
    jpeg('photos/2024/winter/deep/IMG_0100.jpg', 640, 480),
  ];
  const many: ExtFile[] = [];
  for (let i = 0; i < (spec.manyFiles ?? 300); i++)
    many.push(file(`many/file-with-a-longish-name-${String(i).padStart(4, '0')}.dat`, randomBytes(200 + ((i * 733) % 3000), seed + i)));
  const loose = [file('docs/report.txt', Buffer.from('quarterly figures\n'.repeat(900))), file('big.bin', randomBytes(400 * 1024 + 123, seed + 9))];
  const live = [file('docs/keep.txt', Buffer.from('still here\n')), jpeg('keep.jpg', 200, 150)];
  // Larger than what ext4 keeps back from every writer (s_resv_clusters: 2%
  // of the blocks, at most 4096), so the filler must take some of its blocks.
  const victim = file('victim.bin', randomBytes(3 * MiB, seed + 11));
  const spare = file('spare.tmp', Buffer.from('taken by the filler\n'));

  const overwritten: ExtFile[] = [];
  const reused: ExtFile[] = [];
  const mnt = join(dir, `${name}.mnt`);
  let blockSize = 0;
  let spareBlocks = new Set<number>();
  withMountedImage(image, mnt, (root) => {
    // spare.tmp is older (a lower inode) than victim.bin: deleted with it, its
    // inode is the one a new file takes, so victim.bin's inode stays free.
    for (const f of [spare, ...live, ...photos, ...many, ...loose, victim]) put(root, f);
    spawnSyncOk('sync', ['-f', root]);
    blockSize = statSync(root).blksize;
    if (spec.overwrite !== false) {
      const victimBlocks = blocksOf(join(root, victim.path));
      spareBlocks = blocksOf(join(root, spare.path));
      rmSync(join(root, spare.path));
      rmSync(join(root, victim.path));
      spawnSyncOk('sync', ['-f', root]);
      fill(join(root, 'filler.bin'));
      const filler = statSync(join(root, 'filler.bin'));
      if (filler.ino === victim.inode) throw new Error(`${name}: filler.bin took victim.bin's inode ${filler.ino}; the scenario needs it free`);
      const taken = blocksOf(join(root, 'filler.bin'));
      if (![...victimBlocks].some((b) => taken.has(b))) throw new Error(`${name}: filler.bin did not take any block of victim.bin`);
      overwritten.push(victim);
      if (filler.ino === spare.inode) reused.push(spare);
      live.push({ path: 'filler.bin', bytes: Buffer.alloc(0), mtime: Math.floor(filler.mtimeMs / 1000), inode: filler.ino });
    } else {
      loose.push(victim);
    }
    rmSync(join(root, 'photos'), { recursive: true });
    rmSync(join(root, 'many'), { recursive: true });
    for (const f of loose) rmSync(join(root, f.path));
    spawnSyncOk('sync', ['-f', root]);
  });
  // Whether filler.bin also takes spare.tmp's one block, for its data or its extent tree (which FIEMAP does not
  // show), is the allocator's choice and varies from run to run: the block bitmap says.
  if ([...spareBlocks].some((b) => blockInUse(image, b))) overwritten.push(spare);
  if (spec.planted) {
    const fd = openSync(image, 'r');
    try {
      const b = Buffer.alloc(spec.planted.bytes.length);
      if (readSync(fd, b, 0, b.length, spec.planted.offset) !== b.length || !b.equals(spec.planted.bytes)) throw new Error(`${name}: the bytes planted at ${spec.planted.offset} were overwritten by the filesystem`);
    } finally {
      closeSync(fd);
    }
  }
  rmSync(mnt, { recursive: true, force: true });
  return { image, blockSize, deleted: [...photos, ...many, ...loose], overwritten, reused, live };
}
