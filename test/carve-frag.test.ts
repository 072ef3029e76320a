// carve on fragmented JPEGs: files split at cluster boundaries into 2 and 3
// fragments with other JPEGs' data, random data or zeros in the gaps, and a
// FAT32 image where the filesystem itself fragmented a file (first-fit into
// holes left by deleted files). Ground truth: the sha256 of every JPEG and
// the byte ranges its fragments were written to.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { carve, type CarvedFile, type CarveReport } from '../src/index.js';
import { fname, makeJpeg, randomBytes, sha256 } from './helpers/carve.js';
import { KiB, MiB, makeTempDir, removeDir, repoRoot, runCli, spawnSyncOk, writeLayout, type Piece } from './helpers/foundation.js';

const CL = 4 * KiB; // the cluster size of the raw layout

let dir: string;
let image: string;
/** Per fragmented JPEG: its bytes and where each fragment was written, in file order. */
const fragmented: { name: string; bytes: Buffer; fragments: { offset: number; length: number }[] }[] = [];
const contiguous = new Map<number, Buffer>();

beforeAll(() => {
  dir = makeTempDir('carve-frag');
  const a = makeJpeg(dir, 'a', 640, 480, 101);
  const b = makeJpeg(dir, 'b', 800, 600, 102);
  const c = makeJpeg(dir, 'c', 720, 540, 103, ['-optimize']);
  const d = makeJpeg(dir, 'd', 1024, 768, 104);
  const e = makeJpeg(dir, 'e', 512, 384, 105, ['-restart', '2']);
  const f = makeJpeg(dir, 'f', 600, 400, 106);
  const g = makeJpeg(dir, 'g', 320, 240, 107);
  const filler = makeJpeg(dir, 'filler', 900, 700, 108); // its middle fills a gap

  const size = 16 * MiB;
  const pieces: Piece[] = [{ offset: 0, bytes: randomBytes(size, 7) }];
  // Splits `bytes` at the given cluster counts; each fragment goes where `at` says.
  const split = (name: string, bytes: Buffer, cuts: number[], at: number[]) => {
    const bounds = [0, ...cuts.map((n) => n * CL), bytes.length];
    const frags = at.map((offset, i) => ({ offset, length: bounds[i + 1]! - bounds[i]! }));
    frags.forEach((fr, i) => pieces.push({ offset: fr.offset, bytes: bytes.subarray(bounds[i], bounds[i + 1]) }));
    fragmented.push({ name, bytes, fragments: frags });
  };
  // Gaps: random (the background), zeros, another JPEG's entropy-coded data.
  split('a: 2 fragments, random gap', a, [5], [1 * MiB, 1 * MiB + 5 * CL + 3 * CL]);
  const zeroGap = 2 * MiB + 6 * CL;
  pieces.push({ offset: zeroGap, bytes: Buffer.alloc(9 * CL) });
  split('b: 2 fragments, zero gap', b, [6], [2 * MiB, zeroGap + 9 * CL]);
  pieces.push({ offset: 3 * MiB + 4 * CL, bytes: filler.subarray(16 * KiB, 16 * KiB + 7 * CL) });
  split("c: 2 fragments, another JPEG's data in the gap", c, [4], [3 * MiB, 3 * MiB + 11 * CL]);
  pieces.push({ offset: 5 * MiB + 3 * CL, bytes: Buffer.alloc(2 * CL) });
  split('d: 3 fragments, random then zero gap', d, [8, 20], [4 * MiB, 4 * MiB + 10 * CL, 5 * MiB + 5 * CL]);
  split('e: 2 fragments, restart markers, random gap', e, [3], [6 * MiB, 6 * MiB + 40 * CL]);
  // A-B-A: a whole JPEG between the two fragments.
  pieces.push({ offset: 7 * MiB + 6 * CL, bytes: g });
  contiguous.set(7 * MiB + 6 * CL, g);
  split('f: 2 fragments around a whole JPEG', f, [6], [7 * MiB, 7 * MiB + 6 * CL + Math.ceil(g.length / CL) * CL]);
  image = join(dir, 'frag.img');
  writeLayout(image, size, pieces);
}, 120_000);
afterAll(() => removeDir(dir));

const byOffset = (r: CarveReport) => new Map(r.files.map((f) => [f.offset, f]));

describe('carve: fragmented JPEGs', () => {
  let report: CarveReport;
  let out: string;
  beforeAll(async () => {
    out = join(dir, 'out');
    report = await carve(image, { outDir: out, force: true, blockSize: '4K' });
  }, 120_000);

  it('every fragmented JPEG is reassembled byte-exact, its fragments listed in file order', () => {
    const files = byOffset(report);
    for (const fr of fragmented) {
      const f = files.get(fr.fragments[0]!.offset) as CarvedFile;
      expect(f?.status, fr.name).toBe('reassembled');
      expect(f.fragments, fr.name).toEqual(fr.fragments);
      expect(f.length, fr.name).toBe(fr.bytes.length);
      expect(f.sha256, fr.name).toBe(sha256(fr.bytes));
      expect(sha256(readFileSync(join(out, fname(f.offset)))), fr.name).toBe(sha256(fr.bytes));
    }
    expect(report.reassembled).toBe(fragmented.length);
    expect(report.partial).toBe(0);
  });

  it('the whole JPEG between two fragments is recovered on its own, complete', () => {
    const files = byOffset(report);
    for (const [offset, bytes] of contiguous) {
      expect(files.get(offset)?.status).toBe('complete');
      expect(sha256(readFileSync(join(out, fname(offset))))).toBe(sha256(bytes));
    }
    expect(report.complete).toBe(contiguous.size);
  });

  it('--no-reassemble leaves them partial; --json prints fragments and the reassembled count', async () => {
    const off = await runCli(['carve', image, '-o', join(dir, 'out-off'), '--force', '--no-reassemble', '--json']);
    expect(off.code).toBe(0);
    const offLines = off.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(offLines.filter((l) => l.status === 'partial').length).toBe(fragmented.length);
    expect(offLines.at(-1).summary.reassembled).toBe(0);

    const on = await runCli(['carve', image, '-o', join(dir, 'out-json'), '--force', '--block-size', '4K', '--json']);
    expect(on.code).toBe(0);
    const lines = on.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const re = lines.filter((l) => l.status === 'reassembled');
    expect(re.map((l) => l.offset).sort((x, y) => x - y)).toEqual(fragmented.map((f) => f.fragments[0]!.offset));
    for (const l of re) expect(l.fragments).toEqual(fragmented.find((f) => f.fragments[0]!.offset === l.offset)!.fragments);
    expect(lines.at(-1).summary.reassembled).toBe(fragmented.length);
  });

  it('--max-gap smaller than a gap leaves that file partial', async () => {
    const r = await carve(image, { outDir: join(dir, 'out-gap'), force: true, blockSize: '4K', maxGap: '16K' });
    const files = byOffset(r);
    // a's gap is 3 clusters (12 KiB): found; b's zero gap is 9 clusters: not.
    expect(files.get(fragmented[0]!.fragments[0]!.offset)?.status).toBe('reassembled');
    expect(files.get(fragmented[1]!.fragments[0]!.offset)?.status).toBe('partial');
  });
});

/** Points FAT32's FSInfo next-free hint at `cluster`, so the next write allocates from there. */
function setNextFree(img: string, cluster: number) {
  const fd = openSync(img, 'r+');
  try {
    const bs = Buffer.alloc(512);
    readSync(fd, bs, 0, 512, 0);
    const fsinfo = bs.readUInt16LE(48) * bs.readUInt16LE(11);
    const v = Buffer.alloc(4);
    v.writeUInt32LE(cluster);
    writeSync(fd, v, 0, 4, fsinfo + 0x1ec);
  } finally {
    closeSync(fd);
  }
}

describe('carve: a FAT32 image fragmented by the filesystem', () => {
  it('a deleted JPEG written into two holes and after them is reassembled from 3 fragments, byte-exact', async () => {
    const img = join(dir, 'fat32.img');
    spawnSyncOk('mkfs.vfat', ['-F', '32', '-s', '1', '-C', img, String(48 * 1024)]);
    const put = (name: string, bytes: Buffer) => {
      writeFileSync(join(dir, name), bytes);
      spawnSyncOk('mcopy', ['-i', img, join(dir, name), `::/${name}`]);
    };
    // A B C D E, then B and D deleted: two holes.
    const small = [makeJpeg(dir, 'fa', 160, 120, 201), makeJpeg(dir, 'fc', 200, 150, 202), makeJpeg(dir, 'fe', 180, 120, 203)];
    put('A.JPG', small[0]!);
    put('B.BIN', randomBytes(24 * KiB, 204));
    put('C.JPG', small[1]!);
    put('D.BIN', randomBytes(16 * KiB, 205));
    put('E.JPG', small[2]!);
    spawnSyncOk('mdel', ['-i', img, '::/B.BIN']);
    spawnSyncOk('mdel', ['-i', img, '::/D.BIN']);
    // First-fit from the start: the big photo fills B's hole, D's hole, then goes on after E.
    setNextFree(img, 2);
    const big = makeJpeg(dir, 'fbig', 640, 480, 206);
    expect(big.length).toBeGreaterThan(60 * KiB);
    put('BIG.JPG', big);
    spawnSyncOk('mdel', ['-i', img, '::/BIG.JPG']);

    const r = await carve(img, { outDir: join(dir, 'out-fat'), force: true, scope: 'all' }); // the live photos too
    const re = r.files.filter((f) => f.status === 'reassembled');
    expect(re.length).toBe(1);
    expect(re[0]!.sha256).toBe(sha256(big));
    expect(re[0]!.fragments!.length).toBe(3);
    expect(re[0]!.fragments!.reduce((s, f) => s + f.length, 0)).toBe(big.length);
    expect(sha256(readFileSync(join(dir, 'out-fat', fname(re[0]!.offset))))).toBe(sha256(big));
    // The small photos are whole, the deleted big one is the only reassembled file, nothing partial.
    const complete = new Set(r.files.filter((f) => f.status === 'complete').map((f) => f.sha256));
    for (const s of small) expect(complete.has(sha256(s))).toBe(true);
    expect(r.partial).toBe(0);
  }, 120_000);
});

// Issue 14, case 11: 33 JPEGs (libjpeg-turbo's test images and derivatives),
// each with 64 bytes of its scan data overwritten: damaged in place, not
// fragmented. In random filler (flip) and 4 KiB aligned (flipA1). Several
// share Huffman tables, so another file's data can finish decoding a damaged
// one with the exact MCU count: main wrote c_411 and c_icc (flip) and c_422
// (flipA1, 2302 bytes of c_icc) as 'reassembled', garbage that decodes clean.
// The continuations lay in other candidates' data (a partial's verified
// bytes, or a damaged file's data after its damage), which is now never
// taken; the seam check (native tests) refuses such joins as well.
describe('carve: JPEGs damaged in place are never completed with other files\' data', () => {
  const regressions = join(repoRoot, 'test', 'fixtures', 'regressions');
  const cases = [
    // The files main stitched: c_411 and c_icc in flip (c_422's damage there still decodes), c_422 in flipA1.
    { name: 'flip', layout: 'flip.layout.json', complete: 10, partial: 20, stitched: ['c_411.jpg', 'c_icc.jpg'] },
    { name: 'flipA1', layout: 'flipA1.layout.json', complete: 6, partial: 24, stitched: ['c_411.jpg', 'c_422.jpg', 'c_icc.jpg'] },
  ];
  for (const c of cases) {
    it(`${c.name}: every complete file is one of the image's files byte for byte; ${c.stitched.join(', ')} are partial with the reason`, async () => {
      const img = join(dir, `${c.name}.img`);
      const xz = spawnSync('xz', ['-dc', join(regressions, `${c.name}.img.xz`)], { maxBuffer: 64 * MiB });
      expect(xz.status).toBe(0);
      writeFileSync(img, xz.stdout);
      // Each file's offset, length and the sha256 of its (damaged) bytes in the image.
      const layout = JSON.parse(readFileSync(join(regressions, c.layout), 'utf8')) as { file: string; offset: number; length: number; sha256: string }[];
      const out = join(dir, `out-${c.name}`);
      const r = await carve(img, { outDir: out, force: true });

      expect(r.reassembled).toBe(0);
      expect(r.complete).toBe(c.complete);
      expect(r.partial).toBe(c.partial);
      const known = new Set(layout.map((e) => e.sha256));
      for (const f of r.files.filter((x) => x.status === 'complete' || x.status === 'reassembled')) {
        expect(known.has(sha256(readFileSync(join(out, f.path!)))), `${f.offset}`).toBe(true);
        expect(layout.find((e) => e.offset === f.offset)?.sha256).toBe(f.sha256);
      }
      const files = byOffset(r);
      for (const name of c.stitched) {
        const e = layout.find((x) => x.file === name)!;
        const f = files.get(e.offset);
        expect(f?.status, name).toBe('partial');
        expect(f?.reason, name).toMatch(/\w/);
        expect(existsSync(join(out, 'partial', fname(e.offset))), name).toBe(true);
      }
    }, 60_000);
  }
});

// Issue 14: ext2 (4 KiB and 1 KiB blocks) holding libjpeg-turbo's test
// images as files. A file's 13th block on is mapped through an indirect block
// that ext2 allocates right after the 12th; in c_icc.jpg (a 563 KB ICC
// profile in 9 APP2 segments) and im_bigcom.jpg (a 60 KB COM segment) it
// falls inside a marker segment, where nothing else says where the file goes
// on. main rejected both outright (not even partial/).
describe('carve: ext2 files whose indirect block falls inside a marker segment', () => {
  const regressions = join(repoRoot, 'test', 'fixtures', 'regressions');
  /** The image, and its files as debugfs reads them through the inodes (the ground truth). */
  const ext2 = (bs: number) => {
    const img = join(dir, `ext2b${bs}.img`);
    const truth = join(dir, `ext2b${bs}-files`);
    if (!existsSync(truth)) {
      const gz = spawnSync('gunzip', ['-c', join(regressions, `fs_ext2b${bs}.img.gz`)], { maxBuffer: 64 * MiB });
      if (gz.status !== 0) throw new Error(`gunzip fs_ext2b${bs}.img.gz failed`);
      writeFileSync(img, gz.stdout);
      mkdirSync(truth);
      spawnSyncOk('debugfs', ['-R', `rdump / ${truth}`, img]);
    }
    return { img, truth };
  };
  for (const bs of [4096, 1024]) {
    it(`${bs}-byte blocks: every file is recovered byte-exact, c_icc.jpg and im_bigcom.jpg from the blocks their indirect blocks list`, async () => {
      const { img, truth } = ext2(bs);
      const names = readdirSync(truth).filter((n) => n.endsWith('.jpg'));
      expect(names.length).toBe(33);
      const want = new Map(names.map((n) => [sha256(readFileSync(join(truth, n))), n]));

      const out = join(dir, `out-ext2b${bs}`);
      const r = await carve(img, { outDir: out, force: true, scope: 'all' }); // live files
      const got = new Map<string, (typeof r.files)[number]>();
      for (const f of r.files) got.set(sha256(readFileSync(join(out, f.path!))), f);
      for (const [sha, name] of want) expect(got.has(sha), name).toBe(true);
      for (const name of ['c_icc.jpg', 'im_bigcom.jpg']) {
        const f = got.get(sha256(readFileSync(join(truth, name))))!;
        expect(f.status, name).toBe('reassembled');
        // The 12 direct blocks, then the blocks listed (the indirect block itself left out).
        expect(f.fragments![0]!.length, name).toBe(12 * bs);
        expect(f.fragments![1]!.offset, name).toBe(f.offset + 13 * bs);
      }
      expect(r.partial).toBe(0);
      expect(r.rejected).toBe(0);
      expect(r.complete + r.reassembled).toBe(33);
    }, 60_000);
  }

  it('the same filesystem inside a partition (1 MiB in): block numbers count from its start', async () => {
    const src = ext2(4096);
    const img = join(dir, 'ext2-part.img');
    writeFileSync(img, Buffer.concat([randomBytes(1 * MiB, 31), readFileSync(src.img)]));
    const truth = readFileSync(join(src.truth, 'c_icc.jpg'));
    const r = await carve(img, { outDir: join(dir, 'out-ext2-part'), force: true });
    const f = r.files.find((x) => x.sha256 === sha256(truth));
    expect(f?.status).toBe('reassembled');
    expect(f?.offset).toBeGreaterThan(1 * MiB);
  }, 60_000);
});
