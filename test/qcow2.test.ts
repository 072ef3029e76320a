// qcow2 images as a source: made by qemu-img/qemu-io in every variant this
// qemu supports (v2, v3, zlib and zstd compression, extended L2 entries,
// cluster sizes, qcow2 and raw backing chains), then `sparsify IMG.qcow2
// OUT.raw` must equal `qemu-img convert -f qcow2 -O raw` byte for byte, leave
// only data allocated, and `blocksmith map --json` must agree with
// `qemu-img map --output=json` on which ranges hold data. Hostile or
// unsupported images fail with exit 1 and one line.
import { closeSync, mkdirSync, openSync, readFileSync, readSync, realpathSync, truncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mapExtents, info } from '../src/index.js';
import { KiB, MiB, allocated, blocksmithCli, data, isOneLine, makeTempDir, removeDir, repoRoot, run, runCli, sha256, sizeOf, writeImage, zeros } from './helpers/sparsify.js';

let dir: string;

function qemuImg(...args: string[]): string {
  return run('qemu-img', args).stdout;
}
/** qemu-io commands ("write -P 0xab 1M 64k", "write -z ...") on a qcow2 image. */
function qemuIo(image: string, cmds: string[], format = 'qcow2'): void {
  run('qemu-io', ['-f', format, ...cmds.flatMap((c) => ['-c', c]), image]);
}

/** Merged [start, end) ranges that qemu-img map says hold data. */
function qemuDataRanges(image: string): [number, number][] {
  const entries = JSON.parse(qemuImg('map', '--output=json', image)) as { start: number; length: number; data: boolean }[];
  return merge(entries.filter((e) => e.data).map((e) => [e.start, e.start + e.length]));
}
function merge(ranges: [number, number][]): [number, number][] {
  const out: [number, number][] = [];
  for (const [s, e] of ranges) {
    const last = out[out.length - 1];
    if (last && last[1] === s) last[1] = e;
    else out.push([s, e]);
  }
  return out;
}

/** Patches bytes of a file (header fields are big-endian). */
function patch(path: string, offset: number, bytes: number[]): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, Buffer.from(bytes), 0, bytes.length, offset);
  } finally {
    closeSync(fd);
  }
}
function readByte(path: string, offset: number): number {
  const fd = openSync(path, 'r');
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, offset);
  closeSync(fd);
  return b[0]!;
}

/** Our sparse raw copy vs qemu-img's raw conversion: equal bytes, and only data allocated. */
async function expectRawCopyMatches(image: string): Promise<{ dataBytes: number }> {
  const ours = join(dir, 'ours.raw');
  const ref = join(dir, 'ref.raw');
  // The CLI, as a user runs it: blocksmith sparsify IMG.qcow2 OUT.raw
  const r = await runCli(['sparsify', '--json', '--overwrite', image, ours], { cli: blocksmithCli });
  expect(r.code, r.stderr).toBe(0);
  const report = JSON.parse(r.stdout) as { format: string; dataBytes: number };
  qemuImg('convert', '-f', 'qcow2', '-O', 'raw', image, ref);
  expect(report.format).toBe('qcow2');
  expect(sizeOf(ours)).toBe(sizeOf(ref));
  expect(await sha256(ours)).toBe(await sha256(ref));
  // Sparse: allocated bytes are the data bytes (4 KiB blocks), never more.
  expect(allocated(ours)).toBeLessThanOrEqual(report.dataBytes + 64 * KiB);
  expect(allocated(ours)).toBeLessThanOrEqual(allocated(ref));
  return { dataBytes: report.dataBytes };
}

/**
 * blocksmith map --json data extents equal qemu-img map's data ranges. qemu
 * reports whole (sub)clusters; we refine by content, so classify at the
 * (sub)cluster size (the pipeline's block size tops out at 1 MiB: then data
 * must lie inside qemu's ranges and touch each of them).
 */
async function expectMapMatches(image: string): Promise<void> {
  const d = (await info(image)).image;
  const unit = d.extendedL2 ? d.clusterSize! / 32 : d.clusterSize!;
  const r = await runCli(['map', '--json', '--block-size', String(Math.min(unit, MiB)), image], { cli: blocksmithCli });
  expect(r.code, r.stderr).toBe(0);
  const ours = merge(
    (JSON.parse(r.stdout) as { offset: number; length: number; kind: string }[])
      .filter((e) => e.kind === 'data')
      .map((e) => [e.offset, e.offset + e.length]),
  );
  const theirs = qemuDataRanges(image);
  if (unit <= MiB) {
    expect(ours).toEqual(theirs);
  } else {
    for (const [s, e] of ours) expect(theirs.some(([ts, te]) => ts <= s && e <= te), `${s}-${e}`).toBe(true);
    for (const [ts, te] of theirs) expect(ours.some(([s, e]) => s < te && ts < e), `${ts}-${te}`).toBe(true);
  }
}

/** A v3 image: data, zeroed (write -z) ranges, a hole, and a cluster of data written as zeros. */
function makeBasic(name: string, opts: string[] = [], size = '64M'): string {
  const path = join(dir, name);
  qemuImg('create', '-q', '-f', 'qcow2', ...opts, path, size);
  qemuIo(path, ['write -P 0xab 1M 3M', 'write -P 0x11 20M 64k', 'write -z 2M 512k', 'write -P 0x5c 40M 4k', 'write -z 50M 1M']);
  return path;
}

beforeAll(() => {
  dir = makeTempDir('qcow2');
});
afterAll(() => removeDir(dir));

describe('qcow2 -> sparse raw equals qemu-img convert, map agrees with qemu-img map', () => {
  it('v3 (default): standard, zero and unallocated clusters', async () => {
    const img = makeBasic('v3.qcow2');
    const { dataBytes } = await expectRawCopyMatches(img);
    expect(dataBytes).toBe(3 * MiB - 512 * KiB + 64 * KiB + 4 * KiB);
    await expectMapMatches(img);
  });

  it('v2 (compat=0.10)', async () => {
    const img = makeBasic('v2.qcow2', ['-o', 'compat=0.10']);
    expect(readByte(img, 7)).toBe(2);
    await expectRawCopyMatches(img);
    await expectMapMatches(img);
  });

  it('compressed clusters, zlib (-c) and zstd (compression_type=zstd)', async () => {
    const src = makeBasic('plain.qcow2');
    const zlib = join(dir, 'zlib.qcow2');
    const zstd = join(dir, 'zstd.qcow2');
    qemuImg('convert', '-c', '-f', 'qcow2', '-O', 'qcow2', src, zlib);
    qemuImg('convert', '-c', '-f', 'qcow2', '-O', 'qcow2', '-o', 'compression_type=zstd', src, zstd);
    for (const img of [zlib, zstd]) {
      await expectRawCopyMatches(img);
      await expectMapMatches(img);
    }
    expect((await info(zstd)).image.compression).toBe('zstd');
  });

  it('compressed clusters of varied content, incompressible clusters between them: libdeflate and zlib (BLOCKSMITH_NO_LIBDEFLATE=1) inflate the same bytes as qemu-img', async () => {
    // 12 MiB of a real executable (compresses to about a third), random
    // bytes (stored uncompressed by qemu-img -c), text, zeros and holes.
    const exe = readFileSync(process.execPath).subarray(0, 12 * MiB);
    const text = Buffer.from(Array.from({ length: 120_000 }, (_, i) => `line ${i}: the quick brown fox ${i * 7919}\n`).join('').slice(0, 4 * MiB));
    const raw = join(dir, 'varied.raw');
    writeImage(raw, 32 * MiB, [{ offset: 0, bytes: exe }, data(16 * MiB, 2 * MiB), { offset: 20 * MiB, bytes: text }, zeros(26 * MiB, MiB)]);
    for (const [name, opts] of [['varied-zlib.qcow2', []], ['varied-zstd.qcow2', ['-o', 'compression_type=zstd']]] as const) {
      const img = join(dir, name);
      qemuImg('convert', '-c', '-f', 'raw', '-O', 'qcow2', ...opts, raw, img);
      expect(sizeOf(img)).toBeLessThan(12 * MiB);
      const want = await sha256(raw);
      const ref = join(dir, 'ref.raw');
      qemuImg('convert', '-f', 'qcow2', '-O', 'raw', img, ref);
      expect(await sha256(ref)).toBe(want);
      for (const prefix of [[], ['env', 'BLOCKSMITH_NO_LIBDEFLATE=1']]) {
        const ours = join(dir, 'ours.raw');
        const r = await runCli(['sparsify', '--json', '--overwrite', img, ours], { cli: blocksmithCli, prefix });
        expect(r.code, r.stderr).toBe(0);
        expect(await sha256(ours), prefix.join(' ')).toBe(want);
        expect(allocated(ours)).toBeLessThanOrEqual((JSON.parse(r.stdout) as { dataBytes: number }).dataBytes + 64 * KiB);
      }
    }
  });

  it('extended L2 entries: subcluster data, zero and unallocated', async () => {
    const img = join(dir, 'ext.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-o', 'extended_l2=on', img, '32M');
    qemuIo(img, ['write -P 0xab 1M 3M', 'write -P 0x22 5000k 4k', 'write -z 2M 8k', 'write -P 0x33 8M 64k', 'write -z 8M 16k']);
    expect((await info(img)).image.extendedL2).toBe(true);
    await expectRawCopyMatches(img);
    await expectMapMatches(img);
  });

  it('cluster sizes 512 B and 2 MiB, and a virtual size that is not a multiple of the cluster size', async () => {
    for (const [name, opts, size] of [
      ['c512.qcow2', ['-o', 'cluster_size=512'], '64M'],
      ['c2m.qcow2', ['-o', 'cluster_size=2M'], '64M'],
      ['odd.qcow2', [], String(65 * MiB + 3584)],
    ] as const) {
      const img = makeBasic(name, [...opts], size);
      await expectRawCopyMatches(img);
      await expectMapMatches(img);
    }
  });

  it('backing chains: qcow2 <- qcow2 <- qcow2 with relative names, zero clusters hiding backing data, and a raw base', async () => {
    // All inside the top image's directory: backing files elsewhere are
    // refused by default (test/qcow2-backing.test.ts).
    mkdirSync(join(dir, 'top', 'base'), { recursive: true });
    const base = makeBasic('top/base/base.qcow2');
    const mid = join(dir, 'top', 'base', 'mid.qcow2');
    const top = join(dir, 'top', 'top.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', mid);
    qemuIo(mid, ['write -P 0xcd 1536k 64k', 'write -z 3M 64k', 'write -P 0x44 30M 1M']);
    qemuImg('create', '-q', '-f', 'qcow2', '-b', 'base/mid.qcow2', '-F', 'qcow2', top);
    qemuIo(top, ['write -P 0xee 30M 64k', 'write -z 20M 64k', 'write -P 0x99 60M 64k']);
    const i = await info(top);
    expect(i.image.backingChain).toEqual([
      { name: 'base/mid.qcow2', path: realpathSync(mid), format: 'qcow2' },
      { name: 'base.qcow2', path: realpathSync(base), format: 'qcow2' },
    ]);
    await expectRawCopyMatches(top);
    await expectMapMatches(top);

    const rawBase = join(dir, 'base.raw');
    qemuImg('create', '-q', '-f', 'raw', rawBase, '16M');
    qemuIo(rawBase, ['write -P 0x77 0 1M', 'write -P 0x78 8M 4k'], 'raw');
    const over = join(dir, 'over-raw.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-b', rawBase, '-F', 'raw', over, '32M');
    qemuIo(over, ['write -P 0xcd 512k 64k', 'write -z 8M 64k', 'write -P 0x12 20M 4k']);
    await expectRawCopyMatches(over);
    await expectMapMatches(over);
  });
});

describe('a virtual size that is not a multiple of 512 (test/fixtures/regressions/size_not_512.qcow2.xz)', () => {
  it('rounds down to whole sectors like qemu-img: info shows what a copy writes, the copy equals qemu-img convert', async () => {
    const img = join(dir, 'size_not_512.qcow2');
    run('sh', ['-c', `xz -dc '${join(repoRoot, 'test/fixtures/regressions/size_not_512.qcow2.xz')}' > '${img}'`]);
    expect(readByte(img, 24 + 7)).toBe(67108764 % 256); // the header says 67108764
    const qemu = JSON.parse(qemuImg('info', '--output=json', img)) as { 'virtual-size': number };
    expect(qemu['virtual-size']).toBe(67108352);
    const r = await runCli(['info', '--json', img], { cli: blocksmithCli });
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { virtualSize: number; dataBytes: number; zeroBytes: number; holeBytes: number };
    expect(j.virtualSize).toBe(67108352);
    expect(j.dataBytes + j.zeroBytes + j.holeBytes).toBe(67108352);
    await expectRawCopyMatches(img);
    expect(sizeOf(join(dir, 'ours.raw'))).toBe(67108352);
    await expectMapMatches(img);
  });
});

describe('info and map describe qcow2 images', () => {
  it('info reports the detected format, header facts and the virtual size; --format raw reads the file as raw', async () => {
    const img = makeBasic('info.qcow2');
    const r = await runCli(['info', '--json', img], { cli: blocksmithCli });
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.format).toBe('qcow2');
    expect(j.image).toMatchObject({ format: 'qcow2', version: 3, clusterSize: 65536, compression: 'zlib', extendedL2: false, backingChain: [] });
    expect(j.image.fileSize).toBe(sizeOf(img));
    expect(j.virtualSize).toBe(64 * MiB);
    expect(j.dataBytes).toBe(3 * MiB - 512 * KiB + 64 * KiB + 4 * KiB);
    expect(j.dataBytes + j.zeroBytes + j.holeBytes).toBe(64 * MiB);
    const text = await runCli(['info', img], { cli: blocksmithCli });
    expect(text.stdout).toMatch(/^format: qcow2 \(version 3, cluster size 64\.0 KiB, compression zlib, file size /m);
    const raw = await info(img, { format: 'raw' });
    expect(raw.image.format).toBe('raw');
    expect(raw.virtualSize).toBe(sizeOf(img));
    const plain = join(dir, 'plain.raw');
    qemuImg('create', '-q', '-f', 'raw', plain, '1M');
    expect((await info(plain)).image).toEqual({ format: 'raw', fileSize: MiB });
  });

  it('map: data clusters written as zeros are "zero", zero and unallocated clusters are holes', async () => {
    const img = join(dir, 'zeros.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', img, '4M');
    qemuIo(img, ['write -P 0 0 64k', 'write -z 64k 64k', 'write -P 1 128k 64k']);
    const m = await mapExtents(img);
    expect(m.extents).toEqual([
      { offset: 0, length: 64 * KiB, kind: 'zero' },
      { offset: 64 * KiB, length: 64 * KiB, kind: 'hole' },
      { offset: 128 * KiB, length: 64 * KiB, kind: 'data' },
      { offset: 192 * KiB, length: 4 * MiB - 192 * KiB, kind: 'hole' },
    ]);
  });
});

describe('refusals: exit 1 and one line', () => {
  async function expectRefused(args: string[], pattern: RegExp, code = 1): Promise<void> {
    const r = await runCli(args, { cli: blocksmithCli });
    expect(r.code, r.stderr).toBe(code);
    expect(isOneLine(r.stderr), r.stderr).toBe(true);
    expect(r.stderr).toMatch(pattern);
    expect(r.stdout).toBe('');
  }

  it('encrypted (LUKS) images', async () => {
    const img = join(dir, 'luks.qcow2');
    // qemu-img times its PBKDF on the thread's CPU clock and fails now and
    // then on a loaded machine ("Unable to get accurate CPU usage"): retry.
    const create = ['create', '-q', '-f', 'qcow2', '--object', 'secret,id=sec0,data=x', '-o', 'encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10', img, '16M'];
    for (let attempt = 1; ; attempt++) {
      const r = run('qemu-img', create, { allowFail: true });
      if (r.code === 0) break;
      if (attempt === 5 || !/accurate CPU usage/.test(r.stderr)) throw new Error(`qemu-img ${create.join(' ')}: ${r.stderr}`);
    }
    await expectRefused(['sparsify', img, join(dir, 'luks.raw')], /encrypted \(LUKS\).*ERR_QCOW2_UNSUPPORTED/);
  });

  it('dirty, corrupt and unknown incompatible feature bits', async () => {
    for (const [name, byte79, byte78, pattern] of [
      ['dirty', 1, 0, /marked dirty/],
      ['corrupt', 2, 0, /marked corrupt/],
      ['unknown', 0, 4, /unknown incompatible features: bit 10/],
    ] as const) {
      const img = makeBasic(`${name}.qcow2`);
      patch(img, 78, [byte78, byte79]);
      await expectRefused(['info', img], pattern);
    }
  });

  it('a truncated file, and an L1 table past the end of the file', async () => {
    const trunc = makeBasic('trunc.qcow2');
    truncateSync(trunc, Math.floor(sizeOf(trunc) / 2));
    await expectRefused(['sparsify', trunc, join(dir, 'trunc.raw')], /past the end of the file.*ERR_QCOW2_CORRUPT/);
    const l1 = makeBasic('l1.qcow2');
    patch(l1, 40, [0, 0, 1, 0, 0, 0, 0, 0]);  // l1_table_offset = 1 TiB
    await expectRefused(['map', l1], /L1 table at 0x10000000000 lies past the end of the file/);
  });

  it('a backing file loop', async () => {
    const a = join(dir, 'loop-a.qcow2');
    const b = join(dir, 'loop-b.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', a, '16M');
    qemuImg('create', '-q', '-f', 'qcow2', '-b', a, '-F', 'qcow2', b);
    qemuImg('rebase', '-u', '-b', b, '-F', 'qcow2', a);
    await expectRefused(['info', b], /backing file loop.*ELOOP/);
  });

  it('in-place sparsify of a qcow2 image, and an unknown --format', async () => {
    const img = makeBasic('inplace.qcow2');
    const before = await sha256(img);
    await expectRefused(['sparsify', img], /is a qcow2 image; in-place sparsify works on raw images only/);
    expect(await sha256(img)).toBe(before);
    await expectRefused(['info', '--format', 'vmdk', img], /format 'vmdk' is not supported/, 2);
  });
});
