// carve on a raw image built here: every intact JPEG byte-exact, truncated
// ones in partial/, decoys give nothing, thumbnails never cut the outer file;
// CLI output (NDJSON, report.json, exit codes), filters, dedupe; the checker
// agrees with djpeg on every output.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { carve, type CarvedFile } from '../src/index.js';
import { fileState, fname, makeJpeg, outputs, randomBytes, sha256, withExif, withThumbnail } from './helpers/carve.js';
import { KiB, MiB, makeTempDir, removeDir, runCli, writeLayout, type Piece } from './helpers/foundation.js';

let dir: string;
let image: string;
const intact = new Map<number, Buffer>(); // offset -> bytes expected byte-exact
let truncatedAt = 0;
let thumbOuter = 0;
let thumb: Buffer;
let exifAt = 0;

beforeAll(() => {
  dir = makeTempDir('carve');
  const base = makeJpeg(dir, 'base', 320, 240, 1);
  const prog = makeJpeg(dir, 'prog', 400, 300, 2, ['-progressive']);
  const rst = makeJpeg(dir, 'rst', 256, 200, 3, ['-restart', '1']);
  const gray = makeJpeg(dir, 'gray', 200, 120, 4, ['-grayscale', '-optimize']);
  const s444 = makeJpeg(dir, 's444', 300, 200, 5, ['-sample', '1x1']);
  const small = makeJpeg(dir, 'small', 48, 32, 6);
  thumb = makeJpeg(dir, 'thumb', 160, 120, 7);
  const withThumb = withThumbnail(makeJpeg(dir, 'outer', 640, 480, 8), thumb);
  const exif = withExif(makeJpeg(dir, 'exif', 120, 80, 9), 'Blocksmith', 'TestCam 1', '2024:05:06 07:08:09');
  const big = makeJpeg(dir, 'big', 800, 600, 10, ['-progressive']);

  const size = 12 * MiB;
  const pieces: Piece[] = [{ offset: 0, bytes: randomBytes(size, 99) }];
  const place = (offset: number, b: Buffer, expect = true) => {
    pieces.push({ offset, bytes: b });
    if (expect) intact.set(offset, b);
  };
  place(64 * KiB, base);
  place(512 * KiB + 1, prog); // unaligned
  place(1 * MiB, rst);
  place(1 * MiB + rst.length, gray); // back to back
  place(2 * MiB - 1000, s444);
  place(3 * MiB, small);
  thumbOuter = 4 * MiB;
  place(thumbOuter, withThumb);
  exifAt = 5 * MiB + 3;
  place(exifAt, exif);
  place(16 * MiB - 2 * MiB, big, false); // placed past the end: ignored below
  pieces.pop();
  place(6 * MiB, big);
  // A file cut at 60%, followed by random data: partial.
  truncatedAt = 8 * MiB;
  pieces.push({ offset: truncatedAt, bytes: prog.subarray(0, Math.floor(prog.length * 0.6)) });
  // Decoys: bare SOI, lone EOI, JFIF header + random, real headers + random.
  pieces.push({ offset: 9 * MiB, bytes: Buffer.from([0xff, 0xd8, 0xff]) });
  pieces.push({ offset: 9 * MiB + 4096, bytes: Buffer.from([0xff, 0xd9]) });
  pieces.push({ offset: 9 * MiB + 8192, bytes: Buffer.from('ffd8ffe000104a46494600010101004800480000', 'hex') });
  pieces.push({ offset: 10 * MiB, bytes: base.subarray(0, 700) }); // headers (+ a little data) then random
  image = join(dir, 'raw.img');
  writeLayout(image, size, pieces);
}, 120_000);
afterAll(() => removeDir(dir));

describe('carve (library) on a raw mix', () => {
  let files: CarvedFile[];
  let out: string;
  let before: ReturnType<typeof fileState>;
  beforeAll(async () => {
    out = join(dir, 'out-lib');
    before = fileState(image);
    files = [];
    const report = await carve(image, { outDir: out, force: true, thumbnails: true, onFile: (f) => files.push(f) });
    expect(report.complete).toBe(intact.size);
  });

  it('recovers every intact JPEG byte-exact, named by offset, and nothing else at the top level', () => {
    const got = outputs(out);
    for (const [off, b] of intact) expect(got.get(fname(off)), fname(off)).toBe(sha256(b));
    const top = [...got.keys()].filter((k) => !k.includes('/'));
    expect(top.sort()).toEqual([...intact.keys()].map(fname).sort());
  });

  it('never cuts a file at its thumbnail; the thumbnail is written on its own with --thumbnails', () => {
    const got = outputs(out);
    expect(got.get(`thumbnails/${fname(thumbOuter + 12)}`)).toBe(sha256(thumb));
    expect(files.find((f) => f.status === 'thumbnail')!.parent).toBe(thumbOuter);
  });

  it('writes the truncated file to partial/, as a prefix of what is on disk, with where it broke', () => {
    const p = files.filter((f) => f.status === 'partial');
    expect(p.map((f) => f.offset)).toEqual([truncatedAt]);
    const bytes = readFileSync(join(out, 'partial', fname(truncatedAt)));
    expect(bytes.equals(readFileSync(image).subarray(truncatedAt, truncatedAt + bytes.length))).toBe(true);
    expect(p[0]!.brokeAt).toBeGreaterThan(truncatedAt);
  });

  it('reports dimensions, sha256 and EXIF fields; onFile saw every file once; report.json matches', () => {
    const e = files.find((f) => f.offset === exifAt)!;
    expect(e).toMatchObject({ width: 120, height: 80, make: 'Blocksmith', model: 'TestCam 1', date: '2024:05:06 07:08:09', status: 'complete' });
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(report.files).toEqual(files);
    expect(report).toMatchObject({ complete: intact.size, partial: 1, thumbnails: 1, cancelled: false, unreadable: [], size: 12 * MiB });
    expect(new Set(files.map((f) => `${f.status}:${f.offset}`)).size).toBe(files.length);
  });

  it('leaves the source untouched (same sha256, size and mtime)', () => {
    expect(fileState(image)).toEqual(before);
  });

  it('every output decodes in djpeg: complete ones cleanly, partial ones with a warning or error', () => {
    for (const f of files) {
      const r = spawnSync('djpeg', ['-outfile', '/dev/null', join(out, f.path!)]);
      if (f.status === 'partial') expect(r.status, f.path).not.toBe(0);
      else expect({ path: f.path, status: r.status, err: r.stderr.toString() }).toEqual({ path: f.path, status: 0, err: '' });
    }
  });
});

describe('carve CLI', () => {
  it('--json prints one NDJSON object per file and a summary; exit 0', async () => {
    const out = join(dir, 'out-cli');
    const r = await runCli(['carve', image, '-o', out, '--force', '--json']);
    expect(r.code).toBe(0);
    const objs = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const summary = objs.pop();
    expect(summary.summary).toMatchObject({ complete: intact.size, partial: 1, unreadable: [] });
    expect(objs.length).toBe(intact.size + 1);
    expect(objs.every((o) => typeof o.sha256 === 'string' && o.sha256.length === 64)).toBe(true);
  });

  it('--min-width/--min-height and --min-size skip small images; --no-partial skips partials', async () => {
    const out = join(dir, 'out-min');
    const r = await runCli(['carve', image, '-o', out, '--force', '--json', '--min-width', '200', '--min-height', '150', '--no-partial']);
    expect(r.code).toBe(0);
    const objs = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const summary = objs.pop().summary;
    expect(objs.every((o) => o.width >= 200 && o.height >= 150 && o.status === 'complete')).toBe(true);
    expect(summary.filtered).toBeGreaterThanOrEqual(3); // gray 200x120, small, exif 120x80
    const r2 = await runCli(['carve', image, '-o', join(dir, 'out-minsize'), '--force', '--json', '--min-size', '20K']);
    const o2 = r2.stdout.trim().split('\n').map((l) => JSON.parse(l));
    o2.pop();
    expect(o2.every((o) => o.length >= 20 * KiB)).toBe(true);
  });

  it('--dedupe writes identical files once', async () => {
    const one = makeJpeg(dir, 'dup', 100, 100, 42);
    const img = join(dir, 'dup.img');
    writeLayout(img, 1 * MiB, [
      { offset: 0, bytes: randomBytes(MiB, 5) },
      { offset: 4096, bytes: one },
      { offset: 512 * KiB, bytes: one },
    ]);
    const out = join(dir, 'out-dup');
    const r = await runCli(['carve', img, '-o', out, '--force', '--dedupe', '--json']);
    const objs = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(objs.pop().summary).toMatchObject({ complete: 1, duplicates: 1 });
    expect([...outputs(out).keys()]).toEqual([fname(4096)]);
    expect(objs[1]).toMatchObject({ status: 'duplicate', duplicateOf: fname(4096), offset: 512 * KiB });
  });

  it('--sector-size 512 finds only sector-aligned files', async () => {
    const out = join(dir, 'out-sector');
    const r = await runCli(['carve', image, '-o', out, '--force', '--sector-size', '512', '--no-partial']);
    expect(r.code).toBe(0);
    const aligned = [...intact.keys()].filter((o) => o % 512 === 0).map(fname).sort();
    expect([...outputs(out).keys()].filter((k) => !k.includes('/')).sort()).toEqual(aligned);
  });

  it('refuses an output directory on the filesystem that holds the source (exit 1, ESAMEDEV) unless --force', async () => {
    const r = await runCli(['carve', image, '-o', join(dir, 'same')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/refusing .*ESAMEDEV/);
  });

  it('usage errors exit 2; a missing source exits 1 with ENOENT', async () => {
    expect((await runCli(['carve', image])).code).toBe(2);
    expect((await runCli(['carve', image, '-o', join(dir, 'x'), '--min-width', 'wide'])).code).toBe(2);
    const r = await runCli(['carve', join(dir, 'nope.img'), '-o', join(dir, 'y')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ENOENT/);
  });
});

describe('checker vs djpeg', () => {
  it('agrees with djpeg on variants: each intact JPEG decodes cleanly, each cut one fails or warns', () => {
    const variants: [string, string[]][] = [
      ['v1', []], ['v2', ['-progressive']], ['v3', ['-restart', '2']], ['v4', ['-restart', '3B']], ['v5', ['-optimize']],
      ['v6', ['-grayscale']], ['v7', ['-sample', '2x1']], ['v8', ['-progressive', '-restart', '1']], ['v9', ['-quality', '100']],
    ];
    const pieces: Piece[] = [{ offset: 0, bytes: randomBytes(4 * MiB, 17) }];
    const expected = new Map<number, Buffer>();
    variants.forEach(([name, args], i) => {
      const j = makeJpeg(dir, name, 123 + i * 7, 77 + i * 5, 100 + i, args);
      const ok = spawnSync('djpeg', ['-outfile', '/dev/null'], { input: j });
      expect({ name, status: ok.status, err: ok.stderr.toString() }).toEqual({ name, status: 0, err: '' });
      const cut = j.subarray(0, Math.floor(j.length / 2));
      expect(spawnSync('djpeg', ['-outfile', '/dev/null'], { input: cut }).status, name).not.toBe(0);
      expected.set(200 * KiB * (i + 1), j);
      pieces.push({ offset: 200 * KiB * (i + 1), bytes: j });
      pieces.push({ offset: 200 * KiB * (i + 1) + 100 * KiB, bytes: cut });
    });
    const img = join(dir, 'variants.img');
    writeLayout(img, 4 * MiB, pieces);
    return carve(img, { outDir: join(dir, 'out-variants'), force: true }).then((rep) => {
      expect(rep.complete).toBe(variants.length);
      for (const f of rep.files.filter((x) => x.status === 'partial')) {
        const r = spawnSync('djpeg', ['-outfile', '/dev/null', join(dir, 'out-variants', f.path!)]);
        expect(r.status).not.toBe(0);
      }
      const got = outputs(join(dir, 'out-variants'));
      for (const [off, b] of expected) expect(got.get(fname(off))).toBe(sha256(b));
    });
  });
});
