// carve on filesystem images (FAT32 via mkfs.vfat + mcopy + mdel, ext4 via
// mke2fs -d + debugfs rm), on a read-only loop device, and under Ctrl-C with
// --resume. Ground truth: the sha256 of every file copied in, deleted or not.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { carve } from '../src/index.js';
import { fileState, makeJpeg, outputs, sha256 } from './helpers/carve.js';
import { MiB, GiB, makeTempDir, removeDir, runCli, sleep, spawnSyncOk, waitForOpen, writeLayout } from './helpers/foundation.js';

let dir: string;
const photos: { name: string; bytes: Buffer }[] = [];

beforeAll(() => {
  dir = makeTempDir('carve-fs');
  const src = join(dir, 'photos');
  mkdirSync(src);
  const sizes: [number, number, string[]][] = [
    [640, 480, []], [800, 600, ['-progressive']], [320, 200, ['-restart', '1']], [1024, 768, []],
    [200, 150, ['-grayscale']], [500, 400, ['-progressive']], [96, 64, []], [720, 540, ['-optimize']],
  ];
  sizes.forEach(([w, h, args], i) => {
    const name = `IMG_${1000 + i}.JPG`;
    const bytes = makeJpeg(dir, `p${i}`, w, h, 300 + i, args);
    writeFileSync(join(src, name), bytes);
    photos.push({ name, bytes });
  });
  // Non-JPEG filler between them.
  writeFileSync(join(src, 'notes.txt'), 'hello\n'.repeat(5000));
}, 120_000);
afterAll(() => removeDir(dir));

const expectAllExact = (out: string) => {
  const got = new Set(outputs(out).values());
  for (const p of photos) expect(got.has(sha256(p.bytes)), p.name).toBe(true);
};

describe('carve on filesystem images', () => {
  it('FAT32: allocated and mdel-deleted photos are all recovered byte-exact', async () => {
    const img = join(dir, 'fat32.img');
    spawnSyncOk('mkfs.vfat', ['-F', '32', '-s', '1', '-C', img, String(48 * 1024)]); // FAT32 needs >= 65525 clusters
    for (const p of photos) spawnSyncOk('mcopy', ['-i', img, join(dir, 'photos', p.name), `::/${p.name}`]);
    spawnSyncOk('mcopy', ['-i', img, join(dir, 'photos', 'notes.txt'), '::/notes.txt']);
    for (const p of photos.filter((_, i) => i % 2 === 0)) spawnSyncOk('mdel', ['-i', img, `::/${p.name}`]);
    const listing = spawnSyncOk('mdir', ['-i', img, '-b', '::/']);
    expect(listing).not.toMatch(/IMG_1000/);
    const out = join(dir, 'out-fat');
    const rep = await carve(img, { outDir: out, force: true, scope: 'all' }); // live ones too
    expectAllExact(out);
    expect(rep.complete).toBe(photos.length);
    expect(rep.partial).toBe(0);
  });

  it('ext4: photos removed with debugfs are recovered byte-exact', async () => {
    const img = join(dir, 'ext4.img');
    spawnSyncOk('mke2fs', ['-q', '-t', 'ext4', '-b', '4096', '-d', join(dir, 'photos'), img, '32M']);
    for (const p of photos.filter((_, i) => i % 2 === 1)) spawnSyncOk('debugfs', ['-w', '-R', `rm /${p.name}`, img]);
    const out = join(dir, 'out-ext4');
    const rep = await carve(img, { outDir: out, force: true, sectorSize: 4096, scope: 'all' }); // live ones too
    expectAllExact(out);
    expect(rep.complete).toBe(photos.length);
  });
});

const root = process.getuid?.() === 0;

describe.skipIf(!root)('carve on a read-only loop device', () => {
  let loop = '';
  let img = '';
  beforeAll(() => {
    img = join(dir, 'loop.img');
    const pieces = photos.map((p, i) => ({ offset: (i + 1) * MiB + i * 7, bytes: p.bytes }));
    writeLayout(img, 16 * MiB, pieces);
    loop = spawnSyncOk('losetup', ['-r', '-f', '--show', img]).trim();
  });
  afterAll(() => {
    if (loop) spawnSync('losetup', ['-d', loop]);
  });

  it('recovers everything from /dev/loopN (losetup -r), the backing file unchanged', async () => {
    const before = fileState(img);
    const out = join('/dev/shm', `blocksmith-carve-loop-${process.pid}`);
    try {
      const r = await runCli(['carve', loop, '-o', out, '--json']);
      expect(r.code).toBe(0);
      expectAllExact(out);
    } finally {
      removeDir(out);
    }
    expect(fileState(img)).toEqual(before);
  });

  it('refuses an output directory on the filesystem that holds the loop device backing file', async () => {
    const r = await runCli(['carve', loop, '-o', join(dir, 'out-loop-same')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/backing file.*ESAMEDEV/);
  });
});

describe('Ctrl-C and --resume', () => {
  it('SIGINT keeps the files written, writes report.json (cancelled), exits 130; --resume finishes the rest', async () => {
    // Photos at the start and near the end of a 24 GiB sparse image read in full (--no-seek-hole): seconds of work.
    const img = join(dir, 'sigint.img');
    const size = 24 * GiB;
    writeLayout(img, size, [
      { offset: 4096, bytes: photos[0]!.bytes },
      { offset: size - 4 * MiB, bytes: photos[1]!.bytes },
    ]);
    const out = join(dir, 'out-sigint');
    let sending: Promise<void> | undefined;
    const r = await runCli(['carve', img, '-o', out, '--force', '--no-seek-hole', '--json'], {
      timeoutMs: 60_000,
      onSpawn: (pid) => {
        sending = waitForOpen(pid, img).then(async () => {
          await sleep(400);
          process.kill(pid, 'SIGINT');
        });
      },
    });
    await sending;
    expect(r.code).toBe(130);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const summary = lines.pop().summary;
    expect(summary.cancelled).toBe(true);
    expect(summary.nextOffset).toBeLessThan(size);
    expect([...outputs(out).values()]).toEqual([sha256(photos[0]!.bytes)]);

    // Resume from the report: only the rest of the image is scanned.
    const rep = await carve(img, { outDir: out, force: true, seekHole: true, resume: join(out, 'report.json') });
    expect(rep.cancelled).toBe(false);
    expect(rep.nextOffset).toBe(size);
    expect(rep.complete).toBe(2);
    expect(new Set(outputs(out).values())).toEqual(new Set([sha256(photos[0]!.bytes), sha256(photos[1]!.bytes)]));
  });
});
