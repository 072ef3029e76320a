// Conformance of the public API over every source kind: one content (data,
// written zeros, holes, a data run across the 1 MiB chunk edge, blocks with a
// single non-zero byte, a short last block), held by a sparse file, a loop
// device, qcow2 images made by qemu-img (plain, compressed, over a backing
// file), an RBD image written by Ceph's own `rbd import`, and an RBD clone
// of a snapshot. The same tests run over every row of `sources`, as
// @parcel/watcher runs one suite over every backend: adding a reader means
// adding one row. The C++ side (native/tests/test_conformance.cc) runs the
// Reader contract (core/pipeline/reader.h) over the same kinds without Ceph.
//
// What every row must give: the same size and data bytes, a byte-equal copy
// (sparseCopy, or copyFromRbd for RBD images) allocating only the data,
// progress that never goes back and ends at the size, an abort that creates
// nothing. Paths also go through mapExtents (data extents = the non-zero
// 4 KiB blocks) and copyToRbd (rbd export reads the content back, only the
// objects holding data written). Hole bytes are the medium's (a file's
// unwritten blocks, a qcow2's or RBD image's all-zero clusters or objects,
// a backing file's holes under an overlay, none on a block device); data
// bytes are the content's.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFromRbd, copyToRbd, info, mapExtents, rbdInfo, sparseCopy, type Progress } from '../src/index.js';
import { imageName, rbd, rbdExportSha256, rbdObjects, removeImage, useCephCluster } from './helpers/ceph.js';
import { KiB, MiB, attachLoop, dataBytes, detachLoop, makeTempDir, removeDir, run, writeImage, type Piece } from './helpers/sparsify.js';

// ------------------------------------------------------------ the content

const SIZE = 3 * MiB + 256 * KiB + 1536; // a sector multiple (loop devices, qcow2), not a block multiple
const CLUSTER = 64 * KiB; // qcow2 clusters, and the RBD images' objects

type Kind = 'data' | 'zeros' | 'unwritten' | 'byte';
const layout: Array<[offset: number, length: number, kind: Kind, at?: number]> = [
  [0, 4 * KiB, 'data'],
  [4 * KiB, 188 * KiB, 'zeros'], // inside cluster 0, then whole clusters
  [192 * KiB, MiB - 196 * KiB, 'unwritten'],
  [MiB - 4 * KiB, 12 * KiB, 'data'], // across the 1 MiB chunk edge
  [MiB + 8 * KiB, 4 * KiB, 'byte', 2047], // only a byte in the middle of its block
  [MiB + 12 * KiB, 52 * KiB, 'unwritten'],
  [MiB + 64 * KiB, MiB - 60 * KiB, 'zeros'], // across the 2 MiB chunk edge
  [2 * MiB + 4 * KiB, 4 * KiB, 'byte', 0],
  [2 * MiB + 8 * KiB, MiB - 8 * KiB, 'unwritten'],
  [3 * MiB, 60 * KiB, 'data'],
  [3 * MiB + 60 * KiB, 8 * KiB, 'zeros'], // a zero run inside data, across a cluster edge
  [3 * MiB + 68 * KiB, 60 * KiB, 'data'],
  [3 * MiB + 128 * KiB, 128 * KiB, 'unwritten'],
  [3 * MiB + 256 * KiB, 1536, 'byte', 1535], // the short last block: its last byte
];

const content = Buffer.alloc(SIZE);
const written: Piece[] = [];
for (const [offset, length, kind, at] of layout) {
  if (kind === 'data') dataBytes(length, offset + 1).copy(content, offset);
  if (kind === 'byte') content[offset + at!] = 0xa5;
  if (kind !== 'unwritten') written.push({ offset, bytes: content.subarray(offset, offset + length) });
}
const contentSha = createHash('sha256').update(content).digest('hex');

const isZero = (from: number, to: number) => content.subarray(from, to).every((b) => b === 0);
/** [offset, end) of the grid blocks of `unit` holding a non-zero byte, merged. */
function nonZeroRuns(unit: number): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  for (let b = 0; b < SIZE; b += unit) {
    const e = Math.min(SIZE, b + unit);
    if (isZero(b, e)) continue;
    if (runs.length && runs.at(-1)![1] === b) runs.at(-1)![1] = e;
    else runs.push([b, e]);
  }
  return runs;
}
const sum = (runs: Array<[number, number]>) => runs.reduce((n, [b, e]) => n + e - b, 0);

// The content's facts, computed and spelled out (the two must agree).
const DATA = 148_992; // the non-zero 4 KiB blocks (the last one 1536 B)
const UNWRITTEN = 2_072_576; // never written: holes in the sparse file
const ZERO_CLUSTERS = 3_014_656; // 46 all-zero 64 KiB clusters: holes in qcow2 and RBD images
const DATA_OBJECTS = [0, 960 * KiB, MiB, 2 * MiB, 3 * MiB, 3 * MiB + 64 * KiB, 3 * MiB + 256 * KiB]; // 64 KiB objects with data

// ------------------------------------------------------------ the sources

interface Source {
  name: string;
  /** Builds the source; returns what the API takes: a path, or an rbd: spec. */
  make(): string;
  /** Paths go through info/mapExtents/sparseCopy/copyToRbd; RBD images through copyFromRbd. */
  via: 'path' | 'rbd';
  /** info(): kind and format (paths). */
  kind?: 'file' | 'block-device';
  format?: 'raw' | 'qcow2';
  /** The medium's holes (never content): exact bytes. */
  holeBytes: number;
  /** RBD images: rbdInfo().used, the image's own objects (a clone's parent's are not its own). */
  rbdUsed?: number;
}

let dir: string;
let conf: string;
let loop: string | undefined;
const images: string[] = [];

const cluster = useCephCluster();

function raw(): string {
  const path = join(dir, 'content.raw');
  if (!existsSync(path)) writeImage(path, SIZE, written);
  return path;
}
function qcow2(name: string, ...options: string[]): string {
  const path = join(dir, name);
  run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', ...options, raw(), path]);
  return path;
}
function newImage(prefix: string): string {
  const name = imageName(prefix);
  images.push(name);
  return name;
}

/**
 * An overlay holding the content over a raw backing file that differs from
 * it: shorter (the tail reads past its end), other data in cluster 0 and
 * where the content has zeros (zero clusters in the overlay), and the data
 * of [1M - 4K, 1M + 12K) only in the backing file (read through).
 */
function backedQcow2(): string {
  const base = join(dir, 'base.raw');
  writeImage(base, 2 * MiB + 64 * KiB, [
    { offset: 4 * KiB, bytes: dataBytes(4 * KiB, 77) },
    { offset: 64 * KiB, bytes: dataBytes(128 * KiB, 78) },
    { offset: MiB - 4 * KiB, bytes: content.subarray(MiB - 4 * KiB, MiB + 12 * KiB) },
  ]);
  const top = join(dir, 'backed.qcow2');
  run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', 'base.raw', '-F', 'raw', top, String(SIZE)]);
  const cmds: string[] = [];
  const write = (offset: number, length: number) => {
    const piece = join(dir, `piece-${offset}`);
    writeFileSync(piece, content.subarray(offset, offset + length));
    cmds.push('-c', `write -q -s ${piece} ${offset} ${length}`);
  };
  write(0, 64 * KiB);
  cmds.push('-c', `write -q -z ${64 * KiB} ${128 * KiB}`);
  write(2 * MiB + 4 * KiB, 4 * KiB);
  write(3 * MiB, 128 * KiB);
  write(SIZE - 1536, 1536);
  run('qemu-io', ['-f', 'qcow2', ...cmds, top]);
  return top;
}

/** `rbd import` (Ceph's own writer: zero runs are skipped) with 64 KiB objects. */
function rbdImport(path: string, prefix: string): string {
  const name = newImage(prefix);
  rbd(conf, ['import', '--no-progress', '--object-size', String(CLUSTER), path, `rbd/${name}`]);
  return name;
}

/**
 * A clone holding the content: its parent's snapshot holds other bytes in
 * [3M, 3M + 128K) and the content elsewhere; the clone's own objects (written
 * by `rbd import-diff`) hold the content's bytes there. Everywhere else it
 * reads its parent.
 */
function rbdClone(): string {
  const parentFile = join(dir, 'parent.raw');
  writeImage(parentFile, SIZE, [...written, { offset: 3 * MiB, bytes: dataBytes(128 * KiB, 99) }]);
  const parent = rbdImport(parentFile, 'conf-parent');
  rbd(conf, ['snap', 'create', `rbd/${parent}@s`]);
  rbd(conf, ['snap', 'protect', `rbd/${parent}@s`]);
  const child = newImage('conf-clone');
  rbd(conf, ['clone', `rbd/${parent}@s`, `rbd/${child}`]);
  // An `rbd diff v1` stream with one data record ('w': offset, length, bytes).
  const u64 = (n: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(n));
    return b;
  };
  const diff = join(dir, 'clone.diff');
  const off = 3 * MiB;
  const len = 128 * KiB;
  writeFileSync(diff, Buffer.concat([Buffer.from('rbd diff v1\n'), Buffer.from('w'), u64(off), u64(len), content.subarray(off, off + len), Buffer.from('e')]));
  rbd(conf, ['import-diff', '--no-progress', diff, `rbd/${child}`]);
  // Children are removed before parents (afterAll removes in reverse).
  return child;
}

const sources: Source[] = [
  { name: 'sparse file', via: 'path', make: raw, kind: 'file', format: 'raw', holeBytes: UNWRITTEN },
  {
    name: 'loop device',
    via: 'path',
    make: () => {
      if (process.getuid?.() !== 0) throw new Error(`the loop device row needs root (running as uid ${process.getuid?.()})`);
      loop ??= attachLoop(raw(), { readOnly: true });
      return loop;
    },
    kind: 'block-device',
    format: 'raw',
    holeBytes: 0, // block devices have no holes to seek to
  },
  { name: 'qcow2', via: 'path', make: () => qcow2('plain.qcow2'), kind: 'file', format: 'qcow2', holeBytes: ZERO_CLUSTERS },
  { name: 'qcow2, compressed', via: 'path', make: () => qcow2('zlib.qcow2', '-c'), kind: 'file', format: 'qcow2', holeBytes: ZERO_CLUSTERS },
  // Under its unallocated clusters the backing file's own holes show too: [960K, 1M - 4K) and [1M + 12K, 1M + 64K).
  { name: 'qcow2 over a backing file', via: 'path', make: backedQcow2, kind: 'file', format: 'qcow2', holeBytes: ZERO_CLUSTERS + 112 * KiB },
  // The last object holds only the image's last 1536 bytes.
  { name: 'RBD image', via: 'rbd', make: () => `rbd:rbd/${rbdImport(raw(), 'conf-img')}`, holeBytes: ZERO_CLUSTERS, rbdUsed: 6 * CLUSTER + 1536 },
  { name: 'RBD clone of a snapshot', via: 'rbd', make: () => `rbd:rbd/${rbdClone()}`, holeBytes: ZERO_CLUSTERS, rbdUsed: 2 * CLUSTER },
];

// Each source is built once, on first use.
const built = new Map<string, string>();
function sourceOf(s: Source): string {
  let made = built.get(s.name);
  if (made === undefined) {
    made = s.make();
    built.set(s.name, made);
  }
  return made;
}

beforeAll(() => {
  conf = cluster.conf();
  dir = realpathSync(makeTempDir('conformance'));
});
afterAll(() => {
  detachLoop(loop);
  for (const image of images.reverse()) {
    if (image.startsWith('conf-parent')) {
      rbd(conf, ['snap', 'unprotect', `rbd/${image}@s`], { allowFail: true });
      rbd(conf, ['snap', 'purge', '--no-progress', `rbd/${image}`], { allowFail: true });
    }
    removeImage(conf, image);
  }
  removeDir(dir);
});

let copies = 0;
/** The source copied to a new sparse file: sparseCopy for paths, copyFromRbd for RBD images. */
async function copyToFile(s: Source, opts: { signal?: AbortSignal; onProgress?: (p: Progress) => void } = {}) {
  const target = join(dir, `copy-${++copies}.raw`);
  const src = sourceOf(s);
  const r = s.via === 'path' ? await sparseCopy(src, target, opts) : await copyFromRbd(src, target, opts);
  return { target, report: r };
}

/** A file holding only the data runs allocates at most these in whole 4 KiB blocks (plus ext4's extent block). */
const copyAllocationBound = sum(nonZeroRuns(4 * KiB).map(([b, e]) => [Math.floor(b / 4096) * 4096, Math.ceil(e / 4096) * 4096])) + 4 * KiB;

describe('the content', () => {
  it('has the facts the table expects', () => {
    expect(sum(nonZeroRuns(4 * KiB))).toBe(DATA);
    expect(layout.filter((p) => p[2] === 'unwritten').reduce((n, p) => n + p[1], 0)).toBe(UNWRITTEN);
    expect(SIZE - sum(nonZeroRuns(CLUSTER).map(([b, e]) => [Math.floor(b / CLUSTER) * CLUSTER, Math.min(SIZE, Math.ceil(e / CLUSTER) * CLUSTER)]))).toBe(ZERO_CLUSTERS);
    expect(nonZeroRuns(CLUSTER).flatMap(([b, e]) => Array.from({ length: Math.ceil((e - b) / CLUSTER) }, (_, i) => b + i * CLUSTER))).toEqual(DATA_OBJECTS);
  });
});

describe.each(sources)('$name', (s) => {
  it('copies to a new sparse file byte for byte, allocating only the data; the report counts the content', async () => {
    const { target, report } = await copyToFile(s);
    expect(statSync(target).size).toBe(SIZE);
    expect(createHash('sha256').update(readFileSync(target)).digest('hex')).toBe(contentSha);
    expect(statSync(target).blocks * 512).toBeLessThanOrEqual(copyAllocationBound);
    expect({ size: report.size, dataBytes: report.dataBytes, holeBytes: report.holeBytes, zeroBytes: report.zeroBytes }).toEqual({
      size: SIZE,
      dataBytes: DATA,
      holeBytes: s.holeBytes,
      zeroBytes: SIZE - DATA - s.holeBytes,
    });
  });

  it('reports progress that never goes back and ends at the size; an aborted signal creates nothing', async () => {
    const seen: Progress[] = [];
    await copyToFile(s, { onProgress: (p) => seen.push(p) });
    expect(seen.length).toBeGreaterThan(0);
    for (const [i, p] of seen.entries()) {
      expect(p.bytesTotal).toBe(SIZE);
      if (i > 0) expect(p.bytesDone).toBeGreaterThanOrEqual(seen[i - 1]!.bytesDone);
    }
    expect(seen.at(-1)).toEqual({ bytesDone: SIZE, bytesTotal: SIZE });
    const target = join(dir, `aborted-${copies}.raw`);
    const src = sourceOf(s);
    const signal = AbortSignal.abort();
    await expect(s.via === 'path' ? sparseCopy(src, target, { signal }) : copyFromRbd(src, target, { signal })).rejects.toMatchObject({ code: 'ABORT_ERR' });
    expect(existsSync(target)).toBe(false);
  });
});

describe.each(sources.filter((s) => s.via === 'rbd'))('$name (an RBD image)', (s) => {
  it('rbdInfo: the size, and the bytes of its own objects', async () => {
    expect(await rbdInfo(sourceOf(s))).toMatchObject({ size: SIZE, used: s.rbdUsed, objectSize: CLUSTER });
  });
});

describe.each(sources.filter((s) => s.via === 'path'))('$name (a path)', (s) => {
  it('info: kind, format, virtual size, data bytes of the content, the hole bytes of the medium', async () => {
    const i = await info(sourceOf(s));
    expect({ kind: i.kind, format: i.format, virtualSize: i.virtualSize, dataBytes: i.dataBytes, holeBytes: i.holeBytes, zeroBytes: i.zeroBytes }).toEqual({
      kind: s.kind,
      format: s.format,
      virtualSize: SIZE,
      dataBytes: DATA,
      holeBytes: s.holeBytes,
      zeroBytes: SIZE - DATA - s.holeBytes,
    });
  });

  it('mapExtents: the data extents are the non-zero blocks (512 B, 4 KiB); holes and zero runs hold only zeros', async () => {
    for (const blockSize of [512, 4 * KiB]) {
      const map = await mapExtents(sourceOf(s), { blockSize });
      let pos = 0;
      for (const e of map.extents) {
        expect(e.offset).toBe(pos);
        pos += e.length;
        if (e.kind !== 'data') expect(isZero(e.offset, e.offset + e.length), `${e.kind} at ${e.offset}`).toBe(true);
      }
      expect(pos).toBe(SIZE);
      expect(map.extents.filter((e) => e.kind === 'data').map((e) => [e.offset, e.offset + e.length])).toEqual(nonZeroRuns(blockSize));
    }
  });

  it('copyToRbd: rbd export reads the content back; only the objects holding data were written', async () => {
    const name = newImage('conf-to');
    const r = await copyToRbd(sourceOf(s), `rbd:rbd/${name}`, { objectSize: CLUSTER });
    expect({ size: r.size, dataBytes: r.dataBytes, holeBytes: r.holeBytes }).toEqual({ size: SIZE, dataBytes: DATA, holeBytes: s.holeBytes });
    expect(await rbdExportSha256(conf, name)).toEqual({ sha256: contentSha, bytes: SIZE });
    expect(rbdObjects(conf, name)).toEqual(DATA_OBJECTS);
  });
});
