// A real block device: a loop device over a 64 MiB image with known content.
// Needs root and loop support; without them this test FAILS (it must not be
// skipped silently: the block-device path is otherwise untested).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { info, mapExtents } from '../src/index.js';
import { KiB, makeTempDir, MiB, pattern, removeDir, runCli, writeLayout, zerosWith } from './helpers/foundation.js';

const size = 64 * MiB;
let dir: string;
let device: string | undefined;
let setupError: string | undefined;

beforeAll(() => {
  dir = makeTempDir('loop');
  const image = join(dir, 'disk.img');
  // data [1M, 1M+4K) | written zeros [2M, 3M) | data [10M, 10M+64K) | one byte at 64M-1; the rest holes.
  writeLayout(image, size, [
    { offset: 1 * MiB, bytes: pattern(4 * KiB) },
    { offset: 2 * MiB, bytes: Buffer.alloc(1 * MiB) },
    { offset: 10 * MiB, bytes: pattern(64 * KiB, 9) },
    { offset: size - 4 * KiB, bytes: zerosWith(4 * KiB, [4 * KiB - 1], 0xee) },
  ]);
  if (process.getuid?.() !== 0) {
    setupError = `loop device test needs root (running as uid ${process.getuid?.()}): run the suite as root to attach ${image} with losetup`;
    return;
  }
  const r = spawnSync('losetup', ['--find', '--show', '--read-only', image], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    setupError = `losetup --find --show ${image} failed (${r.error?.message ?? `exit ${r.status}: ${r.stderr.trim()}`}): is the loop module loaded and /dev/loop-control present?`;
    return;
  }
  device = r.stdout.trim();
});

afterAll(() => {
  try {
    if (device) {
      const r = spawnSync('losetup', ['-d', device], { encoding: 'utf8' });
      if (r.status !== 0) console.error(`losetup -d ${device} failed: ${r.stderr}`);
    }
  } finally {
    removeDir(dir);
  }
});

function loopDevice(): string {
  if (!device) throw new Error(`LOOP DEVICE TEST NOT RUN: ${setupError ?? 'no loop device was attached'}`);
  return device;
}

// On a block device nothing is a hole: every byte is read.
const expectedExtents = [
  { offset: 0, length: 1 * MiB, kind: 'zero' },
  { offset: 1 * MiB, length: 4 * KiB, kind: 'data' },
  { offset: 1 * MiB + 4 * KiB, length: 9 * MiB - 4 * KiB, kind: 'zero' },
  { offset: 10 * MiB, length: 64 * KiB, kind: 'data' },
  { offset: 10 * MiB + 64 * KiB, length: 54 * MiB - 64 * KiB - 4 * KiB, kind: 'zero' },
  { offset: size - 4 * KiB, length: 4 * KiB, kind: 'data' },
];

describe('a loop device over a 64 MiB image', () => {
  it('info(): kind block-device, no holes, exact zero/data bytes, 512 B logical sectors', async () => {
    const dev = loopDevice();
    const i = await info(dev);
    expect(i).toMatchObject({
      path: dev,
      kind: 'block-device',
      virtualSize: size,
      allocatedSize: size,
      holeBytes: 0,
      dataBytes: 72 * KiB,
      zeroBytes: size - 72 * KiB,
      blockSize: 4096,
      extentCount: 6,
      logicalSectorSize: 512,
    });
    expect(i.physicalSectorSize).toBeGreaterThanOrEqual(512);
    expect(Number.isInteger(Math.log2(i.physicalSectorSize!))).toBe(true);
  });

  it('mapExtents(): the exact extent list, holes of the image read as zero', async () => {
    const m = await mapExtents(loopDevice());
    expect(m.extents).toEqual(expectedExtents);
  });

  it('seekHole makes no difference on a block device', async () => {
    const dev = loopDevice();
    expect((await mapExtents(dev, { seekHole: false })).extents).toEqual(expectedExtents);
  });

  it('the block size applies on the device too (1 MiB blocks)', async () => {
    const m = await mapExtents(loopDevice(), { blockSize: '1M' });
    expect(m.extents).toEqual([
      { offset: 0, length: 1 * MiB, kind: 'zero' },
      { offset: 1 * MiB, length: 1 * MiB, kind: 'data' },
      { offset: 2 * MiB, length: 8 * MiB, kind: 'zero' },
      { offset: 10 * MiB, length: 1 * MiB, kind: 'data' },
      { offset: 11 * MiB, length: 52 * MiB, kind: 'zero' },
      { offset: 63 * MiB, length: 1 * MiB, kind: 'data' },
    ]);
    expect(m).toMatchObject({ dataBytes: 3 * MiB, zeroBytes: 61 * MiB, holeBytes: 0 });
  });

  it('the CLI: info --json and map --json on /dev/loopN match the API', async () => {
    const dev = loopDevice();
    const i = await runCli(['info', '--json', dev]);
    expect(i.code).toBe(0);
    expect(i.stderr).toBe('');
    expect(JSON.parse(i.stdout)).toEqual(await info(dev));
    expect(JSON.parse(i.stdout)).toMatchObject({ kind: 'block-device', holeBytes: 0, logicalSectorSize: 512 });
    const m = await runCli(['map', '--json', dev]);
    expect(m.code).toBe(0);
    expect(JSON.parse(m.stdout)).toEqual(expectedExtents);
    const text = await runCli(['info', dev]);
    expect(text.stdout).toContain('kind: block device\n');
    expect(text.stdout).toMatch(/\nsector size: 512 logical \/ \d+ physical\n/);
  });
});
