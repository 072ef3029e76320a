// In-place sparsify refuses an image somebody else uses: QEMU's OFD image
// locks (a real qemu-io, or a process of ours locking one byte), another
// sparsify run, a loop device over the file, a mounted block device. With
// --force it proceeds (where that is safe to try). Block devices in place.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SparsifyReport } from '../src/index.js';
import {
  KiB,
  MiB,
  GiB,
  allocated,
  attachLoop,
  data,
  detachLoop,
  ensureTool,
  holdOfdLocks,
  isOneLine,
  makeTempDir,
  makeZeroFilledImage,
  mount,
  ofdLocksOn,
  removeDir,
  run,
  runCli,
  runJson,
  sha256,
  startCli,
  startQemuIo,
  unmount,
  waitFor,
  writeImage,
  zeros,
  type Holder,
} from './helpers/sparsify.js';

/** Data blocks at 256K, 264K-272K, 2M and [3M, 3M+tail); allocated zero runs of 4K, 64K, 1M, 1020K; two holes. */
function writeMixed(path: string, size: number, tail: number): void {
  writeImage(path, size, [
    data(256 * KiB, 4 * KiB),
    zeros(260 * KiB, 4 * KiB),
    data(264 * KiB, 8 * KiB),
    zeros(272 * KiB, 64 * KiB),
    zeros(1 * MiB, 1 * MiB),
    data(2 * MiB, 4 * KiB),
    zeros(2 * MiB + 4 * KiB, 1 * MiB - 4 * KiB),
    data(3 * MiB, tail),
  ]);
}
const SIZE = 3 * MiB + 12 * KiB; // a multiple of 512, so a loop device shows all of it
const ALLOCATED_BEFORE = (20 + 515) * 4 * KiB;
const DATA_BLOCKS = 7 * 4 * KiB;

let dir: string;
beforeEach(() => {
  dir = makeTempDir('locks');
});
afterEach(() => removeDir(dir));

function makeImage(): string {
  const img = `${dir}/vm.raw`;
  writeMixed(img, SIZE, 12 * KiB);
  expect(allocated(img)).toBe(ALLOCATED_BEFORE);
  return img;
}

describe('in-place sparsify and QEMU image locks', () => {
  it('refuses an image a running qemu-io holds (exit 1, names qemu and its pid, nothing punched); --force proceeds', async () => {
    ensureTool('qemu-io', 'qemu-utils');
    const img = makeImage();
    const before = await sha256(img);
    let qemu: Holder | undefined;
    try {
      qemu = await startQemuIo(img);
      expect(ofdLocksOn(img).length).toBeGreaterThan(0); // QEMU really holds OFD locks on it

      const r = await runCli([img]);

      expect(r.code).toBe(1);
      expect(isOneLine(r.stderr)).toBe(true);
      expect(r.stderr).toMatch(/qemu/i);
      expect(r.stderr).toContain(`pid ${qemu.pid}`);
      expect(r.stderr).toContain('EBUSY');
      expect(r.stderr).toContain('--force');
      expect(r.stdout).toBe('');
      expect(allocated(img)).toBe(ALLOCATED_BEFORE);
      expect(await sha256(img)).toBe(before);

      const forced = await runCli(['--force', '--json', img]);

      expect(forced.code).toBe(0);
      expect(JSON.parse(forced.stdout)).toMatchObject({ zeroBytes: 2162688, allocatedAfter: DATA_BLOCKS });
      expect(allocated(img)).toBe(DATA_BLOCKS);
      expect(await sha256(img)).toBe(before);
    } finally {
      await qemu?.release();
    }
  });

  it.each(['read', 'write'] as const)(
    'refuses an image when another process holds a %s OFD lock on byte 101 only (QEMU write permission)',
    async (type) => {
      const img = makeImage();
      const before = await sha256(img);
      let holder: Holder | undefined;
      try {
        holder = await holdOfdLocks(img, [101], type);
        expect(ofdLocksOn(img)).toHaveLength(1);

        const r = await runCli([img]);

        expect(r.code).toBe(1);
        expect(isOneLine(r.stderr)).toBe(true);
        expect(r.stderr).toContain(`pid ${holder.pid}`);
        expect(r.stderr).toContain('EBUSY');
        expect(allocated(img)).toBe(ALLOCATED_BEFORE);
        expect(await sha256(img)).toBe(before);
      } finally {
        await holder?.release();
      }
    },
  );

  it('is not stopped by an OFD lock outside QEMU bytes 100..299 (byte 0 and byte 300)', async () => {
    const img = makeImage();
    const before = await sha256(img);
    let holder: Holder | undefined;
    try {
      holder = await holdOfdLocks(img, [0, 300], 'write');

      const r = await runCli([img]);

      expect(r.code).toBe(0);
      expect(allocated(img)).toBe(DATA_BLOCKS);
      expect(await sha256(img)).toBe(before);
    } finally {
      await holder?.release();
    }
  });

  it('refuses a second in-place run on the same 1 GiB image with EBUSY while the first runs; the first completes', async () => {
    const img = `${dir}/big.raw`;
    makeZeroFilledImage(img, 1 * GiB, 256);
    const before = await sha256(img);

    const first = startCli(['--json', img]);
    // The first run holds its locks from before its scan starts until it ends.
    await waitFor(() => ofdLocksOn(img).length > 0 || !first.running(), 'the first run to take its locks');
    expect(first.running()).toBe(true);
    // Freeze the first run so the second surely meets it however slow the
    // machine (or a sanitizer build) is; it resumes afterwards.
    first.child.kill('SIGSTOP');
    let second;
    try {
      second = await runCli([img]);
    } finally {
      first.child.kill('SIGCONT');
    }
    const firstStillRunning = first.running();
    const firstResult = await first.done;

    expect(firstStillRunning).toBe(true); // the refusal happened while the first was running
    expect(second.code).toBe(1);
    expect(isOneLine(second.stderr)).toBe(true);
    expect(second.stderr).toContain('EBUSY');
    expect(second.stderr).toContain(`pid ${first.pid}`);
    expect(firstResult.code).toBe(0);
    const report = JSON.parse(firstResult.stdout) as SparsifyReport;
    expect(report.zeroBytes).toBe(1 * GiB - 256 * 4 * KiB);
    expect(report.allocatedAfter).toBe(allocated(img));
    expect(await sha256(img)).toBe(before);
    expect(ofdLocksOn(img)).toEqual([]); // released at exit
  });

  it('while an in-place run holds the image, QEMU cannot open it for writing ("write" lock refused)', async () => {
    ensureTool('qemu-io', 'qemu-utils');
    const img = `${dir}/big.raw`;
    makeZeroFilledImage(img, 1 * GiB, 256);
    const before = await sha256(img);

    const sparsifyRun = startCli(['--quiet', img]);
    await waitFor(() => ofdLocksOn(img).length > 0 || !sparsifyRun.running(), 'the run to take its locks');
    const qemu = spawnSync('qemu-io', ['-f', 'raw', '-c', 'quit', img], { encoding: 'utf8' });
    const stillRunning = sparsifyRun.running();
    const r = await sparsifyRun.done;

    expect(stillRunning).toBe(true);
    expect(qemu.status).toBe(1);
    expect(qemu.stderr).toContain('Failed to get "write" lock');
    expect(r.code).toBe(0);
    expect(await sha256(img)).toBe(before);
  });

  it('refuses a file that backs a loop device (names the device); --force proceeds', async () => {
    const img = makeImage();
    const before = await sha256(img);
    let dev: string | undefined;
    try {
      dev = attachLoop(img);

      const r = await runCli([img]);

      expect(r.code).toBe(1);
      expect(isOneLine(r.stderr)).toBe(true);
      expect(r.stderr).toContain(dev);
      expect(r.stderr).toContain('EBUSY');
      expect(allocated(img)).toBe(ALLOCATED_BEFORE);
      expect(await sha256(img)).toBe(before);

      const forced = await runCli(['--force', img]);

      expect(forced.code).toBe(0);
      expect(allocated(img)).toBe(DATA_BLOCKS);
      expect(await sha256(img)).toBe(before);
      expect(await sha256(dev)).toBe(before);
    } finally {
      detachLoop(dev);
    }
  });
});

describe('in-place sparsify of a block device', () => {
  it('punches a loop device: its content is unchanged and the backing file keeps only the data blocks', async () => {
    const img = makeImage();
    const before = await sha256(img);
    let dev: string | undefined;
    try {
      dev = attachLoop(img);
      expect(await sha256(dev)).toBe(before);

      const report = await runJson<SparsifyReport>([dev]);

      expect(await sha256(dev)).toBe(before);
      expect(report).toMatchObject({
        source: dev,
        kind: 'block-device',
        size: SIZE,
        holeBytes: 0, // a device has no holes to seek; all of it is read
        zeroBytes: SIZE - 28 * KiB,
        dataBytes: 28 * KiB,
        // [0,260K) (the backing file's hole read as zeros), [260K,264K), [272K,2M), [2M+4K,3M)
        holesPunched: 4,
        punchedBytes: SIZE - 28 * KiB,
        allocatedBefore: SIZE,
        allocatedAfter: SIZE,
      });
      // The loop driver turns the punches into holes in the backing file.
      expect(allocated(img)).toBe(DATA_BLOCKS);
    } finally {
      detachLoop(dev);
    }
    expect(await sha256(img)).toBe(before);
  });

  it('refuses a mounted loop device with EBUSY (the filesystem untouched)', async () => {
    const img = `${dir}/fs.img`;
    const mnt = `${dir}/mnt`;
    mkdirSync(mnt);
    run('truncate', ['-s', '32M', img]);
    run('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', img]);
    let dev: string | undefined;
    try {
      dev = attachLoop(img);
      // read-only, so the filesystem itself writes nothing while we hash the device
      mount(dev, mnt, ['-o', 'ro']);
      const before = await sha256(dev);
      const allocatedBefore = allocated(img);

      const r = await runCli([dev]);

      expect(r.code).toBe(1);
      expect(isOneLine(r.stderr)).toBe(true);
      expect(r.stderr).toContain('EBUSY');
      expect(r.stderr).toContain('mounted');
      expect(await sha256(dev)).toBe(before);
      expect(allocated(img)).toBe(allocatedBefore);
    } finally {
      unmount(mnt);
      detachLoop(dev);
    }
  });
});
