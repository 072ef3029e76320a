// What happens to the image when a run is cut short or the file changes
// under it: SIGKILL at random moments, Ctrl-C (SIGINT) in place and during a
// copy, the file shrinking or growing while a run reads it. The content
// must never change.
import { closeSync, mkdirSync, openSync, truncateSync, writeSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  GiB,
  KiB,
  MiB,
  allocated,
  bytesRead,
  data,
  dataBytes,
  isOneLine,
  listDir,
  makeTempDir,
  makeZeroFilledImage,
  mountVfat,
  ofdLocksOn,
  removeDir,
  sha256,
  sizeOf,
  sleep,
  startCli,
  unmount,
  waitFor,
  writeImage,
  writePieces,
  zeros,
  type CliRun,
} from './helpers/sparsify.js';

let dir: string;
beforeEach(() => {
  dir = makeTempDir('crash');
});
afterEach(() => removeDir(dir));

/** Deterministic delays (xorshift32) so a failing sequence can be replayed. */
function delays(n: number, maxMs: number, seed: number): number[] {
  let x = seed >>> 0 || 1;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out.push(x % maxMs);
  }
  return out;
}

/** Either a clean refusal (exit 1, one line) or success; never a crash. */
function expectCleanOutcome(r: CliRun): void {
  expect(r.signal).toBeNull();
  expect([0, 1]).toContain(r.code);
  if (r.code === 1) expect(isOneLine(r.stderr)).toBe(true);
}

describe('SIGKILL during an in-place run', () => {
  it('killed at 20 random moments while punching a 1 GiB image, the content hash never changes', async () => {
    const img = `${dir}/big.raw`;
    const size = 1 * GiB;
    const count = 2048; // scattered 4 KiB data blocks: about 2000 punches per full run
    makeZeroFilledImage(img, size, count, 11);
    const original = await sha256(img);
    const full = allocated(img);
    let killedMidRun = 0;

    for (const [i, delay] of delays(20, 450, 20240601).entries()) {
      // Keep plenty left to punch: refill the zeros once half the image is holes.
      if (allocated(img) < full * 0.6) makeZeroFilledImage(img, size, count, 11);
      const allocatedBefore = allocated(img);

      const child = startCli(['--quiet', img]);
      // From the moment its locks are taken it is scanning and punching.
      await waitFor(() => ofdLocksOn(img).length > 0 || !child.running(), `run ${i} to start`);
      await sleep(delay);
      const killed = child.child.kill('SIGKILL');
      const r = await child.done;

      const midRun = killed && r.signal === 'SIGKILL' && allocated(img) < allocatedBefore;
      if (midRun) killedMidRun++;
      if (process.env.SPARSIFY_TEST_DEBUG) console.log(i, delay, midRun, allocatedBefore, allocated(img));
      expect(sizeOf(img), `after kill ${i} (delay ${delay} ms)`).toBe(size);
      expect(await sha256(img), `after kill ${i} (delay ${delay} ms)`).toBe(original);
    }
    expect(killedMidRun).toBeGreaterThanOrEqual(16);
  }, 400_000); // 20 runs of a 1 GiB image: ~105 s on a quiet machine, far more when CI shares the CPUs
});

describe('Ctrl-C (SIGINT)', () => {
  it('in place: exit 130, content unchanged, locks released', async () => {
    const img = `${dir}/big.raw`;
    makeZeroFilledImage(img, 1 * GiB, 256);
    const before = await sha256(img);
    const full = allocated(img);

    const child = startCli([img]);
    await waitFor(() => allocated(img) < full * 0.95 || !child.running(), 'the first punches');
    expect(child.running()).toBe(true);
    child.child.kill('SIGINT');
    const r = await child.done;

    expect(r.code).toBe(130);
    expect(r.stderr).toContain('interrupted');
    expect(r.stdout).toBe('');
    expect(await sha256(img)).toBe(before);
    expect(allocated(img)).toBeLessThan(full * 0.95); // it had really started
    expect(ofdLocksOn(img)).toEqual([]);
  });

  it('during a copy: exit 130, no target and no temporary file left, source unchanged', async () => {
    const src = `${dir}/src.raw`;
    makeZeroFilledImage(src, 1 * GiB, 256);
    const before = await sha256(src);
    const out = `${dir}/out`;
    mkdirSync(out);

    const child = startCli([src, `${out}/copy.raw`]);
    await waitFor(() => bytesRead(child.pid) > 128 * MiB || !child.running(), 'the copy to be under way');
    expect(child.running()).toBe(true);
    child.child.kill('SIGINT');
    const r = await child.done;

    expect(r.code).toBe(130);
    expect(listDir(out)).toEqual([]);
    expect(await sha256(src)).toBe(before);
  });

  it('during a copy to a filesystem without O_TMPFILE (vfat): the visible temporary file is removed', async () => {
    // A 1 GiB sparse source read in full (--no-seek-hole): long enough to interrupt, 1 MiB to write.
    const src = `${dir}/src.raw`;
    writeImage(src, 1 * GiB, [data(0, 1 * MiB)]);
    const before = await sha256(src);
    const mnt = `${dir}/mnt`;
    mkdirSync(mnt);
    try {
      mountVfat(`${dir}/vfat.img`, mnt, 16);

      const child = startCli(['--no-seek-hole', src, `${mnt}/copy.raw`]);
      await waitFor(() => listDir(mnt).some((n) => n.startsWith('.copy.raw.blocksmith-')) || !child.running(), 'the temporary file');
      await waitFor(() => bytesRead(child.pid) > 64 * MiB || !child.running(), 'the copy to be under way');
      expect(child.running()).toBe(true);
      child.child.kill('SIGINT');
      const r = await child.done;

      expect(r.code).toBe(130);
      expect(listDir(mnt)).toEqual([]);
    } finally {
      unmount(mnt);
    }
    expect(await sha256(src)).toBe(before);
  });
});

describe('the file changes size during a run', () => {
  it('in place, shrunk to half while punching: no crash; the bytes that remain are unchanged', async () => {
    const img = `${dir}/big.raw`;
    makeZeroFilledImage(img, 1 * GiB, 512);
    const half = 512 * MiB;
    const prefix = await sha256(img, { end: half });
    const full = allocated(img);

    const child = startCli([img]);
    await waitFor(() => allocated(img) < full * 0.97 || !child.running(), 'the first punches');
    expect(child.running()).toBe(true);
    truncateSync(img, half);
    const r = await child.done;

    expectCleanOutcome(r);
    expect(sizeOf(img)).toBe(half); // never re-extended
    expect(await sha256(img)).toBe(prefix);
  });

  it('in place, grown while punching (new data appended): no crash; old bytes and new data unchanged', async () => {
    const img = `${dir}/big.raw`;
    const size = 1 * GiB;
    makeZeroFilledImage(img, size, 512);
    const old = await sha256(img);
    const appended = dataBytes(1 * MiB, 99);
    const full = allocated(img);

    const child = startCli([img]);
    await waitFor(() => allocated(img) < full * 0.97 || !child.running(), 'the first punches');
    expect(child.running()).toBe(true);
    const fd = openSync(img, 'r+');
    try {
      writeSync(fd, appended, 0, appended.length, size + 32 * MiB);
    } finally {
      closeSync(fd);
    }
    const r = await child.done;

    expectCleanOutcome(r);
    expect(sizeOf(img)).toBe(size + 33 * MiB);
    expect(await sha256(img, { end: size })).toBe(old);
    expect(await sha256(img, { start: size, end: size + 32 * MiB })).toBe(await sha256Zeros(32 * MiB));
    expect(await sha256(img, { start: size + 32 * MiB })).toBe(await sha256Buffer(appended));
  });

  it('copy, source shrunk while it is read: exit 1 with one line and no target, or a copy equal to the source (as it was, or as it is)', async () => {
    // [0,256M) allocated zeros + data, [256M,512M) hole, [512M,768M) allocated zeros + data, [768M,1G) hole.
    const src = `${dir}/src.raw`;
    writeImage(src, 1 * GiB, []);
    const pieces = [];
    for (const base of [0, 512 * MiB]) {
      pieces.push(zeros(base, 256 * MiB));
      for (let off = base; off < base + 256 * MiB; off += 8 * MiB) pieces.push(data(off + 4 * KiB, 4 * KiB));
    }
    writePieces(src, pieces);
    const original = await sha256(src);
    const out = `${dir}/out`;
    mkdirSync(out);

    const child = startCli([src, `${out}/copy.raw`]);
    await waitFor(() => bytesRead(child.pid) > 32 * MiB || !child.running(), 'the copy to read the first data range');
    expect(child.running()).toBe(true);
    // Cut inside the hole after the first data range: the second data range is gone.
    truncateSync(src, 384 * MiB);
    const r = await child.done;
    const current = await sha256(src);

    expectCleanOutcome(r);
    if (r.code === 1) {
      expect(listDir(out)).toEqual([]);
    } else {
      expect(listDir(out)).toEqual(['copy.raw']);
      expect([original, current]).toContain(await sha256(`${out}/copy.raw`));
    }
  });

  it('copy, source grown while it is read: the copy equals the source as it was (or exit 1 and no target)', async () => {
    const src = `${dir}/src.raw`;
    const size = 1 * GiB;
    makeZeroFilledImage(src, size, 256);
    const original = await sha256(src);
    const out = `${dir}/out`;
    mkdirSync(out);

    const child = startCli([src, `${out}/copy.raw`]);
    await waitFor(() => bytesRead(child.pid) > 64 * MiB || !child.running(), 'the copy to be under way');
    expect(child.running()).toBe(true);
    const fd = openSync(src, 'r+');
    try {
      writeSync(fd, dataBytes(1 * MiB, 5), 0, 1 * MiB, size + 1 * MiB);
    } finally {
      closeSync(fd);
    }
    const r = await child.done;

    expectCleanOutcome(r);
    if (r.code === 1) {
      expect(listDir(out)).toEqual([]);
    } else {
      expect(sizeOf(`${out}/copy.raw`)).toBe(size);
      expect(await sha256(`${out}/copy.raw`)).toBe(original);
    }
    expect(await sha256(src, { end: size })).toBe(original);
  });
});

async function sha256Buffer(b: Buffer): Promise<string> {
  const { createHash } = await import('node:crypto');
  return createHash('sha256').update(b).digest('hex');
}

async function sha256Zeros(n: number): Promise<string> {
  return sha256Buffer(Buffer.alloc(n));
}
