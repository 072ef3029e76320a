import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AbortError, info, mapExtents, type Progress } from '../src/index.js';
import { GiB, makeTempDir, MiB, pattern, removeDir, spawnSyncOk, writeLayout } from './helpers/foundation.js';

let dir: string;
let big: string; // 2 GiB of unwritten (fallocated) extents: all of it is read with seekHole: false
const bigSize = 2 * GiB;

beforeAll(() => {
  dir = makeTempDir('abort');
  big = join(dir, 'big.raw');
  spawnSyncOk('fallocate', ['-l', String(bigSize), big]);
});
afterAll(() => removeDir(dir));

describe('AbortSignal', () => {
  it('a signal aborted ~50 ms into a 2 GiB read rejects with AbortError (code ABORT_ERR)', async () => {
    const ac = new AbortController();
    const started = Date.now();
    const p = mapExtents(big, { seekHole: false, signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    const err = await p.then(
      (r) => new Error(`resolved after ${Date.now() - started} ms with ${r.virtualSize} bytes mapped`),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AbortError);
    expect(err).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
  });

  it('the abort reason is kept as the AbortError cause', async () => {
    const ac = new AbortController();
    const reason = new Error('user pressed stop');
    const p = info(big, { seekHole: false, signal: ac.signal });
    setTimeout(() => ac.abort(reason), 20);
    const err = await p.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortError);
    expect((err as AbortError).cause).toBe(reason);
  });

  it('an already-aborted signal rejects at once without reading', async () => {
    const ac = new AbortController();
    ac.abort();
    let progressCalls = 0;
    const started = Date.now();
    const err = await mapExtents(big, { seekHole: false, signal: ac.signal, onProgress: () => progressCalls++ }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortError);
    expect((err as AbortError).code).toBe('ABORT_ERR');
    expect(progressCalls).toBe(0);
    expect(Date.now() - started).toBeLessThan(1000);
    // Also for a path that does not exist: the abort wins, nothing is opened.
    await expect(info(join(dir, 'missing'), { signal: ac.signal })).rejects.toBeInstanceOf(AbortError);
  });

  it('a signal that is never aborted does not change the result', async () => {
    const path = join(dir, 'small.raw');
    writeLayout(path, 8 * MiB, [{ offset: 4 * MiB, bytes: pattern(4096) }]);
    const ac = new AbortController();
    const r = await mapExtents(path, { signal: ac.signal });
    expect(r.extents).toEqual([
      { offset: 0, length: 4 * MiB, kind: 'hole' },
      { offset: 4 * MiB, length: 4096, kind: 'data' },
      { offset: 4 * MiB + 4096, length: 4 * MiB - 4096, kind: 'hole' },
    ]);
    expect(ac.signal.aborted).toBe(false);
  });
});

describe('onProgress', () => {
  // 512 MiB of unwritten extents read with seekHole: false: long enough for several reports.
  const size = 512 * MiB;
  let medium: string;
  beforeAll(() => {
    medium = join(dir, 'medium.raw');
    spawnSyncOk('fallocate', ['-l', String(size), medium]);
  });

  it('reports bytesDone non-decreasing up to bytesTotal = size, the last call before the promise settles', async () => {
    const calls: Progress[] = [];
    const r = await mapExtents(medium, { seekHole: false, blockSize: '64K', onProgress: (p) => calls.push({ ...p }) });
    expect(r.virtualSize).toBe(size);
    expect(r.extents).toEqual([{ offset: 0, length: size, kind: 'zero' }]);
    expect(calls.length).toBeGreaterThanOrEqual(1);
    for (let i = 0; i < calls.length; i++) {
      expect(calls[i]!.bytesTotal).toBe(size);
      expect(calls[i]!.bytesDone).toBeGreaterThanOrEqual(0);
      expect(calls[i]!.bytesDone).toBeLessThanOrEqual(size);
      if (i > 0) expect(calls[i]!.bytesDone).toBeGreaterThanOrEqual(calls[i - 1]!.bytesDone);
    }
    expect(calls[calls.length - 1]).toEqual({ bytesDone: size, bytesTotal: size });
  });

  it('works alongside a signal that is never aborted', async () => {
    const calls: Progress[] = [];
    const ac = new AbortController();
    const r = await info(medium, { seekHole: false, signal: ac.signal, onProgress: (p) => calls.push({ ...p }) });
    expect(r).toMatchObject({ virtualSize: size, zeroBytes: size, holeBytes: 0, dataBytes: 0 });
    expect(calls.at(-1)).toEqual({ bytesDone: size, bytesTotal: size });
  });

  it('reports the full size for a sparse scan that skips its holes', async () => {
    const path = join(dir, 'sparse-8g.raw');
    const sparseSize = 8 * GiB;
    writeLayout(path, sparseSize, [{ offset: GiB, bytes: pattern(4096) }]);
    const calls: Progress[] = [];
    const r = await info(path, { onProgress: (p) => calls.push({ ...p }) });
    expect(r).toMatchObject({ virtualSize: sparseSize, dataBytes: 4096, holeBytes: sparseSize - 4096 });
    expect(calls.length).toBeGreaterThanOrEqual(1);
    for (const c of calls) expect(c.bytesTotal).toBe(sparseSize);
    expect(calls[calls.length - 1]).toEqual({ bytesDone: sparseSize, bytesTotal: sparseSize });
  });

  it('for an empty file reports at most 0 of 0', async () => {
    const empty = join(dir, 'empty.raw');
    writeLayout(empty, 0, []);
    const calls: Progress[] = [];
    const r = await info(empty, { onProgress: (p) => calls.push({ ...p }) });
    expect(r.virtualSize).toBe(0);
    for (const c of calls) expect(c).toEqual({ bytesDone: 0, bytesTotal: 0 });
  });
});
