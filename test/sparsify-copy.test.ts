// sparsify SRC DST (sparse copy): equal content, only the data blocks
// allocated, exact size; an existing target, the source itself or a
// directory is refused; no temporary file is ever left behind; a block
// device as the source.
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SparsifyReport } from '../src/index.js';
import {
  KiB,
  MiB,
  allocated,
  attachLoop,
  data,
  detachLoop,
  isOneLine,
  listDir,
  makeTempDir,
  mountVfat,
  removeDir,
  runCli,
  runJson,
  sha256,
  sleep,
  startCli,
  sizeOf,
  unmount,
  writeImage,
  zeros,
  type Piece,
} from './helpers/sparsify.js';

/**
 * Source layout (4 KiB blocks):
 *   [0,256K) hole, [256K,260K) data, [260K,264K) zero, [264K,272K) data,
 *   [272K,336K) zero, [336K,1M) hole, [1M,2M) zero, [2M,2M+4K) data,
 *   [2M+4K,3M) zero, [3M, 3M+tail) data, then up to `size` a hole.
 */
function pieces(tail: number): Piece[] {
  return [
    data(256 * KiB, 4 * KiB),
    zeros(260 * KiB, 4 * KiB),
    data(264 * KiB, 8 * KiB),
    zeros(272 * KiB, 64 * KiB),
    zeros(1 * MiB, 1 * MiB),
    data(2 * MiB, 4 * KiB),
    zeros(2 * MiB + 4 * KiB, 1 * MiB - 4 * KiB),
    data(3 * MiB, tail),
  ];
}
const ZEROS = 4 * KiB + 64 * KiB + 1 * MiB + (1 * MiB - 4 * KiB); // 2162688
const SOURCE_ALLOCATED = (20 + 515) * 4 * KiB; // 2191360
const DATA_BLOCKS = 7 * 4 * KiB; // 28672: the only blocks a copy should allocate

let dir: string;
beforeEach(() => {
  dir = makeTempDir('copy');
});
afterEach(() => removeDir(dir));

/** Source in `dir/src/`, targets go to `dir/dst/` so the target directory can be listed alone. */
function makeSource(size: number, tail = 9192): string {
  const src = `${dir}/src.raw`;
  writeImage(src, size, pieces(tail));
  return src;
}

function targetDir(): string {
  const d = `${dir}/dst`;
  mkdirSync(d, { recursive: true });
  return d;
}

describe('sparsify SRC DST: the copy', () => {
  it('has equal content, the exact size with a trailing hole and a size not a multiple of 4 KiB, and only the data blocks allocated', async () => {
    const size = 4 * MiB + 1234;
    const src = makeSource(size);
    const srcHash = await sha256(src);
    const out = targetDir();
    const dst = `${out}/copy.raw`;

    const report = await runJson<SparsifyReport>([src, dst]);

    expect(await sha256(dst)).toBe(srcHash);
    expect(sizeOf(dst)).toBe(size);
    expect(allocated(dst)).toBe(DATA_BLOCKS);
    expect(await sha256(src)).toBe(srcHash);
    expect(allocated(src)).toBe(SOURCE_ALLOCATED);
    expect(listDir(out)).toEqual(['copy.raw']);
    expect(report).toMatchObject({
      source: src,
      target: dst,
      kind: 'file',
      size,
      allocatedBefore: SOURCE_ALLOCATED,
      allocatedAfter: DATA_BLOCKS,
      // the last data block [3M+8K,3M+12K) holds 1000 bytes of data: a data block
      dataBytes: 28 * KiB,
      zeroBytes: ZEROS,
      holeBytes: size - 28 * KiB - ZEROS,
      dryRun: false,
    });
  });

  it('ends in data when the source does (size 3M+9192): exact size and content', async () => {
    const size = 3 * MiB + 9192;
    const src = makeSource(size);
    const srcHash = await sha256(src);
    const dst = `${targetDir()}/copy.raw`;

    const report = await runJson<SparsifyReport>([src, dst]);

    expect(await sha256(dst)).toBe(srcHash);
    expect(sizeOf(dst)).toBe(size);
    expect(allocated(dst)).toBe(DATA_BLOCKS);
    expect(report).toMatchObject({ size, dataBytes: 16 * KiB + 9192, zeroBytes: ZEROS, allocatedAfter: DATA_BLOCKS });
    expect(await sha256(src)).toBe(srcHash);
  });

  it('--no-seek-hole gives the same copy', async () => {
    const size = 4 * MiB + 1234;
    const src = makeSource(size);
    const srcHash = await sha256(src);
    const dst = `${targetDir()}/copy.raw`;

    const report = await runJson<SparsifyReport>(['--no-seek-hole', src, dst]);

    expect(await sha256(dst)).toBe(srcHash);
    expect(sizeOf(dst)).toBe(size);
    expect(allocated(dst)).toBe(DATA_BLOCKS);
    expect(report).toMatchObject({ holeBytes: 0, dataBytes: 28 * KiB, zeroBytes: size - 28 * KiB });
  });

  it('--dry-run creates no target and reports what the copy would allocate', async () => {
    const size = 4 * MiB + 1234;
    const src = makeSource(size);
    const srcHash = await sha256(src);
    const out = targetDir();

    const report = await runJson<SparsifyReport>(['--dry-run', src, `${out}/copy.raw`]);

    expect(listDir(out)).toEqual([]);
    expect(report).toMatchObject({ dryRun: true, size, dataBytes: 28 * KiB, allocatedAfter: 28 * KiB, zeroBytes: ZEROS });
    expect(await sha256(src)).toBe(srcHash);
  });

  it('refuses an existing target without --overwrite: EEXIST, exit 1, one line, target untouched', async () => {
    const src = makeSource(4 * MiB);
    const srcHash = await sha256(src);
    const out = targetDir();
    const dst = `${out}/copy.raw`;
    writeFileSync(dst, 'precious\n');
    const dstHash = await sha256(dst);

    const r = await runCli([src, dst]);

    expect(r.code).toBe(1);
    expect(isOneLine(r.stderr)).toBe(true);
    expect(r.stderr).toContain('EEXIST');
    expect(r.stderr).toContain(dst);
    expect(r.stderr).toContain('--overwrite');
    expect(r.stdout).toBe('');
    expect(await sha256(dst)).toBe(dstHash);
    expect(listDir(out)).toEqual(['copy.raw']);
    expect(await sha256(src)).toBe(srcHash);
  });

  it('replaces an existing target with --overwrite; nothing else left in the directory', async () => {
    const size = 4 * MiB + 1234;
    const src = makeSource(size);
    const srcHash = await sha256(src);
    const out = targetDir();
    const dst = `${out}/copy.raw`;
    writeFileSync(dst, Buffer.alloc(8 * MiB, 0x77));

    const report = await runJson<SparsifyReport>(['--overwrite', src, dst]);

    expect(await sha256(dst)).toBe(srcHash);
    expect(sizeOf(dst)).toBe(size);
    expect(allocated(dst)).toBe(DATA_BLOCKS);
    expect(report.allocatedAfter).toBe(DATA_BLOCKS);
    expect(listDir(out)).toEqual(['copy.raw']);
    expect(await sha256(src)).toBe(srcHash);
  });

  it.each([
    ['the same path', [] as string[], (src: string) => src],
    ['the same path with --overwrite', ['--overwrite'], (src: string) => src],
    ['a symlink to the source with --overwrite', ['--overwrite'], (src: string) => {
      symlinkSync(src, `${dir}/link.raw`);
      return `${dir}/link.raw`;
    }],
  ])('refuses to copy a file onto itself (%s): exit 1, one line, content and allocation unchanged', async (_name, flags, target) => {
    const src = makeSource(4 * MiB);
    const srcHash = await sha256(src);
    const dst = target(src);
    const before = listDir(dir);

    const r = await runCli([...flags, src, dst]);

    expect(r.code).toBe(1);
    expect(isOneLine(r.stderr)).toBe(true);
    expect(r.stderr).toBe(`sparsify: refusing to write the copy to '${dst}': it is the source '${src}'${dst === src ? '' : ' (through a symbolic link)'} (EINVAL)\n`);
    expect(await sha256(src)).toBe(srcHash);
    expect(allocated(src)).toBe(SOURCE_ALLOCATED);
    expect(listDir(dir)).toEqual(before);
  });

  it('refuses a directory as the target: EISDIR, exit 1, the directory unchanged', async () => {
    const src = makeSource(4 * MiB);
    const srcHash = await sha256(src);
    const out = targetDir();
    writeFileSync(`${out}/keep.txt`, 'x');

    for (const flags of [[], ['--overwrite']]) {
      const r = await runCli([...flags, src, out]);
      expect(r.code).toBe(1);
      expect(isOneLine(r.stderr)).toBe(true);
      expect(r.stderr).toContain('EISDIR');
      expect(listDir(out)).toEqual(['keep.txt']);
    }
    expect(listDir(dir)).toEqual(['dst', 'src.raw']);
    expect(await sha256(src)).toBe(srcHash);
  });

  it('refuses a missing source (ENOENT) and creates no target', async () => {
    const out = targetDir();

    const r = await runCli([`${dir}/missing.raw`, `${out}/copy.raw`]);

    expect(r.code).toBe(1);
    expect(isOneLine(r.stderr)).toBe(true);
    expect(r.stderr).toContain('ENOENT');
    expect(listDir(out)).toEqual([]);
  });

  it('copies a block device (a loop device over the source) to a sparse file with equal content', async () => {
    const size = 3 * MiB + 12 * KiB; // a multiple of 512: the loop device shows all of it
    const src = makeSource(size, 12 * KiB);
    const srcHash = await sha256(src);
    const out = targetDir();
    const dst = `${out}/copy.raw`;
    let dev: string | undefined;
    try {
      dev = attachLoop(src, { readOnly: true });
      expect(await sha256(dev)).toBe(srcHash);

      const report = await runJson<SparsifyReport>([dev, dst]);

      expect(await sha256(dst)).toBe(srcHash);
      expect(await sha256(dev)).toBe(srcHash);
      expect(sizeOf(dst)).toBe(size);
      expect(allocated(dst)).toBe(DATA_BLOCKS);
      expect(listDir(out)).toEqual(['copy.raw']);
      expect(report).toMatchObject({
        source: dev,
        kind: 'block-device',
        size,
        holeBytes: 0, // a block device has no holes to seek: all read
        dataBytes: 28 * KiB,
        zeroBytes: size - 28 * KiB,
        allocatedAfter: DATA_BLOCKS,
      });
    } finally {
      detachLoop(dev);
    }
    expect(await sha256(src)).toBe(srcHash);
  });
});

describe('sparsify SRC DST on a filesystem without O_TMPFILE (vfat through FUSE): the named temporary file', () => {
  async function withVfat(sizeMiB: number, body: (mnt: string) => Promise<void>): Promise<void> {
    const mnt = `${dir}/mnt`;
    mkdirSync(mnt);
    try {
      mountVfat(`${dir}/vfat.img`, mnt, sizeMiB);
      await body(mnt);
    } finally {
      unmount(mnt);
    }
  }

  it('a copy that fails part way (the filesystem fills up) leaves no target and no temporary file', async () => {
    const src = `${dir}/src.raw`;
    writeImage(src, 32 * MiB, [data(0, 32 * MiB)]);
    const srcHash = await sha256(src);
    await withVfat(16, async (mnt) => {
      writeFileSync(`${mnt}/keep.txt`, 'x');
      const seen = new Set<string>();
      const child = startCli([src, `${mnt}/copy.raw`]);
      while (child.running()) {
        for (const name of listDir(mnt)) seen.add(name);
        await sleep(2);
      }
      const r = await child.done;

      expect(r.code).toBe(1);
      expect(isOneLine(r.stderr)).toBe(true);
      expect(r.stderr).toContain(`${mnt}/copy.raw`);
      // the hidden temporary name was used while copying ...
      expect([...seen].some((n) => n.startsWith('.copy.raw.blocksmith-'))).toBe(true);
      // ... and is gone after the failure
      expect(listDir(mnt)).toEqual(['keep.txt']);
    });
    expect(await sha256(src)).toBe(srcHash);
  });
});
