import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forEachExtent, info, mapExtents, type Extent, type ExtentMap } from '../src/index.js';
import { allocatedBytes, GiB, KiB, makeTempDir, MiB, pattern, removeDir, TiB, writeLayout, zerosWith } from './helpers/foundation.js';

let dir: string;
beforeAll(() => {
  dir = makeTempDir('extents');
});
afterAll(() => removeDir(dir));

/** Extents must tile [0, size) in order, and totals must match them. */
function expectConsistent(m: ExtentMap): void {
  let pos = 0;
  const sum = { hole: 0, zero: 0, data: 0 };
  for (const e of m.extents) {
    expect(e.offset).toBe(pos);
    expect(e.length).toBeGreaterThan(0);
    sum[e.kind] += e.length;
    pos += e.length;
  }
  expect(pos).toBe(m.virtualSize);
  expect({ hole: m.holeBytes, zero: m.zeroBytes, data: m.dataBytes }).toEqual(sum);
  expect(m.extentCount).toBe(m.extents.length);
}

const hole = (offset: number, length: number): Extent => ({ offset, length, kind: 'hole' });
const zero = (offset: number, length: number): Extent => ({ offset, length, kind: 'zero' });
const data = (offset: number, length: number): Extent => ({ offset, length, kind: 'data' });

describe('a sparse file with known data, zero-filled and hole ranges', () => {
  // 10 MiB:  [0, 8K) data | hole | [1M, 1M+64K) written zeros | [1M+64K, +4K) one non-zero byte
  //          | hole | [2M, 2M+16K) written zeros | hole to 10M
  const size = 10 * MiB;
  let path: string;
  beforeAll(() => {
    path = join(dir, 'sparse.raw');
    writeLayout(path, size, [
      { offset: 0, bytes: pattern(8 * KiB) },
      { offset: 1 * MiB, bytes: zerosWith(64 * KiB + 4 * KiB, [64 * KiB + 100], 0x2a) },
      { offset: 2 * MiB, bytes: Buffer.alloc(16 * KiB) },
    ]);
  });

  it('maps holes, allocated zero ranges and data exactly (4 KiB blocks, SEEK_HOLE on)', async () => {
    const m = await mapExtents(path);
    expect(m.extents).toEqual([
      data(0, 8 * KiB),
      hole(8 * KiB, 1 * MiB - 8 * KiB),
      zero(1 * MiB, 64 * KiB),
      data(1 * MiB + 64 * KiB, 4 * KiB),
      hole(1 * MiB + 68 * KiB, 1 * MiB - 68 * KiB),
      zero(2 * MiB, 16 * KiB),
      hole(2 * MiB + 16 * KiB, 8 * MiB - 16 * KiB),
    ]);
    expect({ ...m, extents: undefined }).toEqual({
      path,
      kind: 'file',
      format: 'raw',
      image: { format: 'raw', fileSize: size },
      virtualSize: size,
      allocatedSize: allocatedBytes(path),
      holeBytes: 1 * MiB - 8 * KiB + (1 * MiB - 68 * KiB) + (8 * MiB - 16 * KiB),
      zeroBytes: 80 * KiB,
      dataBytes: 12 * KiB,
      blockSize: 4096,
      extentCount: 7,
      extents: undefined,
    });
    expect(m.allocatedSize).toBeGreaterThanOrEqual(92 * KiB);
    expectConsistent(m);
  });

  it('info() reports the same summary as mapExtents() without the extent list', async () => {
    const [i, m] = await Promise.all([info(path), mapExtents(path)]);
    const { extents, ...summary } = m;
    expect(extents).toHaveLength(7);
    expect(i).toEqual(summary);
    expect('extents' in i).toBe(false);
  });

  it('with seekHole: false reads the holes and reports them as zero', async () => {
    const m = await mapExtents(path, { seekHole: false });
    expect(m.extents).toEqual([
      data(0, 8 * KiB),
      zero(8 * KiB, 1 * MiB + 64 * KiB - 8 * KiB),
      data(1 * MiB + 64 * KiB, 4 * KiB),
      zero(1 * MiB + 68 * KiB, size - (1 * MiB + 68 * KiB)),
    ]);
    expect(m.holeBytes).toBe(0);
    expect(m.dataBytes).toBe(12 * KiB);
    expect(m.zeroBytes).toBe(size - 12 * KiB);
    expect(m.allocatedSize).toBe(allocatedBytes(path));
    expectConsistent(m);
  });

  it('accepts the block size as a string ("64K") and reports it in bytes', async () => {
    const i = await info(path, { blockSize: '64K' });
    expect(i.blockSize).toBe(65536);
    expect(i.virtualSize).toBe(size);
    expect(i.holeBytes + i.zeroBytes + i.dataBytes).toBe(size);
  });
});

describe('a dense (fully written) file', () => {
  it('has no holes: one data extent when every block holds data', async () => {
    const path = join(dir, 'dense.raw');
    const size = 3 * MiB + 4 * KiB;
    writeLayout(path, size, [{ offset: 0, bytes: pattern(size, 3) }]);
    const m = await mapExtents(path);
    expect(m.extents).toEqual([data(0, size)]);
    expect(m).toMatchObject({ virtualSize: size, holeBytes: 0, zeroBytes: 0, dataBytes: size, extentCount: 1 });
    expect(m.allocatedSize).toBe(allocatedBytes(path));
    expect(m.allocatedSize).toBeGreaterThanOrEqual(size);
  });

  it('has no holes: written zero ranges are zero, not hole', async () => {
    const path = join(dir, 'dense-zeros.raw');
    const size = 2 * MiB;
    const bytes = Buffer.alloc(size);
    bytes.fill(0x11, 512 * KiB, 768 * KiB);
    writeLayout(path, size, [{ offset: 0, bytes }]);
    const m = await mapExtents(path);
    expect(m.extents).toEqual([zero(0, 512 * KiB), data(512 * KiB, 256 * KiB), zero(768 * KiB, size - 768 * KiB)]);
    expect(m.holeBytes).toBe(0);
  });
});

describe('the block size sets the zero/data split', () => {
  // 2 MiB fully written: zeros with one 0x01 byte at 300000; the second MiB all zero.
  const size = 2 * MiB;
  const at = 300_000;
  let path: string;
  beforeAll(() => {
    path = join(dir, 'one-byte.raw');
    writeLayout(path, size, [{ offset: 0, bytes: zerosWith(size, [at]) }]);
  });

  it.each([
    [512, 299_520],
    [4096, 299_008],
    [65536, 262_144],
    [1 << 20, 0],
  ])('block size %i: the one non-zero byte makes exactly its block data', async (bs, blockStart) => {
    const m = await mapExtents(path, { blockSize: bs });
    const expected: Extent[] = [];
    if (blockStart > 0) expected.push(zero(0, blockStart));
    expected.push(data(blockStart, bs));
    expected.push(zero(blockStart + bs, size - blockStart - bs));
    expect(m.extents).toEqual(expected);
    expect(m).toMatchObject({ blockSize: bs, holeBytes: 0, dataBytes: bs, zeroBytes: size - bs, extentCount: 3 - (blockStart === 0 ? 1 : 0) });
  });

  it('a single byte in a 1 MiB block makes the whole 1 MiB data (string "1M")', async () => {
    const i = await info(path, { blockSize: '1M' });
    expect(i).toMatchObject({ blockSize: 1 << 20, dataBytes: 1 << 20, zeroBytes: 1 << 20, holeBytes: 0 });
  });
});

describe('sizes that are not a multiple of the block size', () => {
  it('judges the short last block on its own bytes (dense, 10000 bytes)', async () => {
    const path = join(dir, 'short-dense.raw');
    writeLayout(path, 10_000, [{ offset: 0, bytes: zerosWith(10_000, [9_999]) }]);
    expect((await mapExtents(path)).extents).toEqual([zero(0, 8192), data(8192, 1808)]);
    expect((await mapExtents(path, { blockSize: 512 })).extents).toEqual([zero(0, 9728), data(9728, 272)]);
    expect((await mapExtents(path, { blockSize: '1M' })).extents).toEqual([data(0, 10_000)]);
    const i = await info(path, { blockSize: 65536 });
    expect(i).toMatchObject({ virtualSize: 10_000, dataBytes: 10_000, zeroBytes: 0, holeBytes: 0 });
  });

  it('a sparse file whose size is not block-aligned: the last extent ends exactly at the size', async () => {
    const path = join(dir, 'short-sparse.raw');
    // 1 MiB + 1000 bytes; data only in [4K, 8K); the tail after it is a hole.
    writeLayout(path, MiB + 1000, [{ offset: 4096, bytes: pattern(4096) }]);
    const m = await mapExtents(path);
    expect(m.extents).toEqual([hole(0, 4096), data(4096, 4096), hole(8192, MiB + 1000 - 8192)]);
    const all = await mapExtents(path, { seekHole: false, blockSize: 64 * KiB });
    expect(all.extents).toEqual([data(0, 64 * KiB), zero(64 * KiB, MiB + 1000 - 64 * KiB)]);
  });

  it('data in the partial last page of a sparse file', async () => {
    const path = join(dir, 'short-tail.raw');
    writeLayout(path, 10_000, [{ offset: 9_999, bytes: Buffer.from([7]) }]);
    const m = await mapExtents(path);
    expect(m.extents).toEqual([hole(0, 8192), data(8192, 1808)]);
    expect(m).toMatchObject({ virtualSize: 10_000, holeBytes: 8192, zeroBytes: 0, dataBytes: 1808 });
  });
});

describe('edge sizes', () => {
  it('an empty file: size 0, nothing allocated, no extents', async () => {
    const path = join(dir, 'empty.raw');
    writeLayout(path, 0, []);
    const m = await mapExtents(path);
    expect(m).toEqual({
      path,
      kind: 'file',
      format: 'raw',
      image: { format: 'raw', fileSize: 0 },
      virtualSize: 0,
      allocatedSize: 0,
      holeBytes: 0,
      zeroBytes: 0,
      dataBytes: 0,
      blockSize: 4096,
      extentCount: 0,
      extents: [],
    });
    expect(await info(path, { seekHole: false })).toMatchObject({ virtualSize: 0, extentCount: 0 });
  });

  it('an entirely sparse file is one hole', async () => {
    const path = join(dir, 'all-hole.raw');
    writeLayout(path, 64 * MiB, []);
    const m = await mapExtents(path);
    expect(m.extents).toEqual([hole(0, 64 * MiB)]);
    expect(m.allocatedSize).toBe(0);
  });

  it('a 1 TiB sparse file with a few data blocks maps exactly (holes are skipped, not read)', async () => {
    const path = join(dir, 'tera.raw');
    writeLayout(path, TiB, [
      { offset: 0, bytes: pattern(4096) },
      { offset: 100 * GiB, bytes: Buffer.alloc(8192) },
      { offset: 512 * GiB, bytes: pattern(64 * KiB) },
      { offset: TiB - 4096, bytes: zerosWith(4096, [4095], 0xff) },
    ]);
    const m = await mapExtents(path);
    expect(m.extents).toEqual([
      data(0, 4096),
      hole(4096, 100 * GiB - 4096),
      zero(100 * GiB, 8192),
      hole(100 * GiB + 8192, 412 * GiB - 8192),
      data(512 * GiB, 64 * KiB),
      hole(512 * GiB + 64 * KiB, 512 * GiB - 64 * KiB - 4096),
      data(TiB - 4096, 4096),
    ]);
    expect(m).toMatchObject({ virtualSize: TiB, dataBytes: 72 * KiB, zeroBytes: 8192, holeBytes: TiB - 80 * KiB });
    expect(m.allocatedSize).toBe(allocatedBytes(path));
  });
});

describe('forEachExtent: the extents streamed in batches instead of kept', () => {
  // 30,000 extents: more than one batch (4,096), so the batch seams are crossed.
  const blocks = 30000;
  let path: string;
  beforeAll(() => {
    path = join(dir, 'striped.raw');
    const ranges = [];
    for (let b = 0; b < blocks; b += 2) ranges.push({ offset: b * 4 * KiB, bytes: pattern(4 * KiB, b) });
    writeLayout(path, blocks * 4 * KiB + 4 * KiB, ranges);
  });

  it('delivers the same extents as mapExtents, in offset order, each batch with the virtual size, and the same summary', async () => {
    const whole = await mapExtents(path, { seekHole: false });
    const streamed: Extent[] = [];
    const sizes = new Set<number>();
    let batches = 0;
    const summary = await forEachExtent(path, (batch, virtualSize) => {
      batches++;
      sizes.add(virtualSize);
      streamed.push(...batch);
    }, { seekHole: false });
    expect(whole.extents.length).toBe(blocks); // data, zero, ..., zero (the last block merges with the tail)
    expect(streamed).toEqual(whole.extents);
    expect(batches).toBe(Math.ceil(blocks / 4096));
    expect([...sizes]).toEqual([whole.virtualSize]);
    const { extents: _extents, ...wholeSummary } = whole;
    expect(summary).toEqual(wholeSummary);
  });

  it('an error thrown by the callback stops the scan and is what rejects', async () => {
    const boom = new Error('consumer failed');
    let calls = 0;
    await expect(forEachExtent(path, () => {
      calls++;
      throw boom;
    })).rejects.toBe(boom);
    expect(calls).toBe(1);
  });

  it('an aborted signal rejects with AbortError', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(forEachExtent(path, () => {}, { signal: ac.signal })).rejects.toMatchObject({ name: 'AbortError' });
  });
});
