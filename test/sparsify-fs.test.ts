// sparsify --fs: the free blocks of ext2/3/4 filesystems inside an image
// (whole image, MBR with a logical partition, GPT) are punched in place or
// left as holes in a copy, without being read. Every test builds its images
// with mke2fs -d and deletes files with debugfs so free blocks hold junk,
// then checks: e2fsck -fn clean, every remaining file's hash unchanged, the
// free blocks read as zeros, allocation close to the used blocks, bytes
// outside ext filesystems unchanged; and the refusals (dirty, mounted,
// unknown features, bad checksums, truncated).
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectFilesystems, sparsify, sparseCopy } from '../src/index.js';
import { formatBytes } from '../src/api/units.js';
import { at, dumpFacts, fileHashes, fsck, junkBytes, makeFs, nonZeroBytesIn, partition, pokeBytes, type FsSpec } from './helpers/fs.js';
import { KiB, MiB, allocated, attachLoop, blocksmithCli, detachLoop, makeTempDir, mount, removeDir, run, runCli, sha256, unmount } from './helpers/sparsify.js';

/** A new sparse file of `size` bytes. */
function blank(path: string, size: number): void {
  closeSync(openSync(path, 'w'));
  truncateSync(path, size);
}

let dir: string;
beforeAll(() => {
  dir = makeTempDir('bs-fs-');
});
afterAll(() => removeDir(dir));

interface Snapshot {
  hashes: Record<string, string>;
  free: Array<[number, number]>;
  usedBytes: number;
}

function snapshot(image: string, offset: number): Snapshot {
  const f = dumpFacts(image, offset);
  return { hashes: fileHashes(image, offset), free: f.free, usedBytes: (f.blockCount - f.freeBlocks) * f.blockSize };
}

/** The checks every filesystem must pass after sparsify --fs. */
function expectIntact(image: string, offset: number, before: Snapshot, align: number): void {
  const ck = fsck(image, offset);
  expect(ck.out).not.toMatch(/UNEXPECTED|Fix\?|error/i);
  expect(ck.code).toBe(0);
  expect(fileHashes(image, offset)).toEqual(before.hashes);
  expect(nonZeroBytesIn(image, before.free, align)).toBe(0);
}

const single = (type: FsSpec['type'], args: string[], size = 48 * MiB): FsSpec => ({ offset: 0, size, type, args });

describe('sparsify --fs on a filesystem that fills the image', () => {
  const cases: Array<[string, FsSpec]> = [
    ['ext4 (4 KiB blocks, flex_bg, metadata_csum, BLOCK_UNINIT groups)', single('ext4', ['-b', '4096'])],
    ['ext2 with 1 KiB blocks', single('ext2', ['-b', '1024'])],
    ['ext3 with 2 KiB blocks', single('ext3', ['-b', '2048'])],
    ['ext4 64bit without flex_bg', single('ext4', ['-b', '4096', '-O', '64bit,^flex_bg'])],
    ['ext4 meta_bg (no resize_inode)', single('ext4', ['-b', '1024', '-O', 'meta_bg,^resize_inode'])],
    ['ext4 sparse_super2', single('ext4', ['-b', '1024', '-O', 'sparse_super2'])],
    ['ext4 uninit_bg (gdt_csum, crc16) instead of metadata_csum', single('ext4', ['-b', '4096', '-O', '^metadata_csum,uninit_bg'])],
    ['ext4 bigalloc with 16 KiB clusters', single('ext4', ['-b', '4096', '-O', 'bigalloc', '-C', '16384'], 64 * MiB)],
    ['ext4 without a journal, huge_file', single('ext4', ['-b', '4096', '-O', '^has_journal,huge_file'])],
  ];
  it.each(cases)('%s: free blocks punched in place, files and fsck intact', async (_name, spec) => {
    const image = join(dir, `whole-${Math.random().toString(36).slice(2)}.img`);
    blank(image, spec.size);
    makeFs(image, spec);
    const before = snapshot(image, 0);
    expect(junkBytes(image, before.free)).toBeGreaterThan(100 * KiB); // the deleted files' data is still there
    const r = await sparsify(image, { fs: true });
    expect(r.partitionScheme).toBe('none');
    expect(r.volumes).toHaveLength(1);
    const v = r.volumes![0]!;
    expect(v).toMatchObject({ number: 0, filesystem: spec.type, action: 'free-blocks' });
    expect(v.usedBytes).toBe(before.usedBytes);
    expect(r.freeBytes).toBeGreaterThan(0);
    expectIntact(image, 0, before, 4096);
    // Allocation: at most the used blocks (+1% + 256 KiB for metadata rounding).
    expect(allocated(image)).toBeLessThanOrEqual(before.usedBytes * 1.01 + 256 * KiB);
    expect(r.allocatedAfter).toBe(allocated(image));
    if (spec.args?.includes('bigalloc')) expect(v.clusterSize).toBe(16384);
  });
});

describe('sparsify --fs SRC DST (copy)', () => {
  it('the copy has the same files, fsck-clean, free blocks as holes; the source is untouched', async () => {
    const src = join(dir, 'copy-src.img');
    const dst = join(dir, 'copy-dst.img');
    blank(src, 48 * MiB);
    makeFs(src, single('ext4', ['-b', '1024']));
    // Non-sparse source, as a VM image usually is.
    run('fallocate', ['-l', String(48 * MiB), src]);
    const before = snapshot(src, 0);
    const srcHash = await sha256(src);
    const r = await runCli(['--fs', '--json', src, dst]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.volumes[0]).toMatchObject({ filesystem: 'ext4', action: 'free-blocks' });
    expect(await sha256(src)).toBe(srcHash);
    expectIntact(dst, 0, before, 1); // in a copy every free byte is a hole, even 1 KiB fragments
    expect(allocated(dst)).toBeLessThanOrEqual(before.usedBytes * 1.01 + 256 * KiB);
    expect(report.allocatedAfter).toBe(allocated(dst));
  });
  it('from a qcow2 image: the filesystem is read through the qcow2 tables; the raw copy has the same files, free blocks as holes', async () => {
    const raw = join(dir, 'q-src.img');
    const q = join(dir, 'q-src.qcow2');
    const dst = join(dir, 'q-dst.img');
    blank(raw, 48 * MiB);
    makeFs(raw, single('ext4', ['-b', '4096']));
    const before = snapshot(raw, 0);
    expect(junkBytes(raw, before.free)).toBeGreaterThan(100 * KiB);
    run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, q]);
    const r = await sparseCopy(q, dst, { fs: true });
    expect(r.format).toBe('qcow2');
    expect(r.volumes![0]).toMatchObject({ number: 0, filesystem: 'ext4', action: 'free-blocks', usedBytes: before.usedBytes });
    expectIntact(dst, 0, before, 1);
    expect(allocated(dst)).toBeLessThanOrEqual(before.usedBytes * 1.01 + 256 * KiB);
  });
});

describe('sparsify --fs on partitioned images', () => {
  it('MBR: a primary ext2, a logical ext3, a non-ext partition and gaps', async () => {
    const image = join(dir, 'mbr.img');
    blank(image, 96 * MiB);
    partition(image, 'label: dos\n1MiB,30MiB,83\n32MiB,20MiB,7\n54MiB,,5\n55MiB,40MiB,83\n');
    const p1 = 1 * MiB, p2 = 32 * MiB, p5 = 55 * MiB;
    makeFs(image, { offset: p1, size: 30 * MiB, type: 'ext2', args: ['-b', '1024'] });
    makeFs(image, { offset: p5, size: 40 * MiB, type: 'ext3', args: ['-b', '4096'] });
    // The non-ext partition: junk and zero runs; a gap with junk.
    pokeBytes(image, p2, randomBytes(3 * MiB));
    pokeBytes(image, p2 + 5 * MiB, Buffer.alloc(2 * MiB));
    pokeBytes(image, p2 + 9 * MiB, randomBytes(1 * MiB));
    pokeBytes(image, 31 * MiB + 4096, randomBytes(64 * KiB));
    const b1 = snapshot(image, p1), b5 = snapshot(image, p5);
    const otherHash = await sha256(image, { start: p2, end: p2 + 20 * MiB - 1 });
    const gapHash = await sha256(image, { start: 31 * MiB, end: 32 * MiB - 1 });
    const headHash = await sha256(image, { start: 0, end: p1 - 1 });

    const r = await runCli(['--fs', '--json', image]);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.partitionScheme).toBe('mbr');
    expect(report.volumes.map((v: { number: number; filesystem: string; action: string }) => [v.number, v.filesystem, v.action])).toEqual([
      [1, 'ext2', 'free-blocks'],
      [2, '', 'zero-detection'],
      [5, 'ext3', 'free-blocks'],
    ]);
    expectIntact(image, p1, b1, 4096);
    expectIntact(image, p5, b5, 4096);
    expect(await sha256(image, { start: p2, end: p2 + 20 * MiB - 1 })).toBe(otherHash);
    expect(await sha256(image, { start: 31 * MiB, end: 32 * MiB - 1 })).toBe(gapHash);
    expect(await sha256(image, { start: 0, end: p1 - 1 })).toBe(headHash);
    expect(allocated(image)).toBeLessThanOrEqual((b1.usedBytes + b5.usedBytes) * 1.01 + 4 * MiB + 256 * KiB + 64 * KiB);
  });

  it('GPT: two ext4 filesystems (64bit, meta_bg); a corrupt primary GPT falls back to the backup', async () => {
    const image = join(dir, 'gpt.img');
    blank(image, 80 * MiB);
    partition(image, 'label: gpt\n1MiB,36MiB,L\n38MiB,40MiB,L\n');
    const p1 = 1 * MiB, p2 = 38 * MiB;
    makeFs(image, { offset: p1, size: 36 * MiB, type: 'ext4', args: ['-b', '4096', '-O', '64bit'] });
    makeFs(image, { offset: p2, size: 40 * MiB, type: 'ext4', args: ['-b', '2048', '-O', 'meta_bg,^resize_inode'] });
    const b1 = snapshot(image, p1), b2 = snapshot(image, p2);
    pokeBytes(image, 1024 + 40, Buffer.from([0x42])); // primary entry array: CRC no longer matches
    const dst = join(dir, 'gpt-copy.img');
    const r = await sparseCopy(image, dst, { fs: true });
    expect(r.partitionScheme).toBe('gpt');
    expect(r.gptBackupUsed).toBe(true);
    expect(r.volumes!.map((v) => [v.number, v.filesystem, v.action])).toEqual([
      [1, 'ext4', 'free-blocks'],
      [2, 'ext4', 'free-blocks'],
    ]);
    expectIntact(dst, p1, b1, 1);
    expectIntact(dst, p2, b2, 1);
    const inPlace = await sparsify(image, { fs: true });
    expect(inPlace.freeBytes).toBe(r.freeBytes);
    expectIntact(image, p1, b1, 4096);
    expectIntact(image, p2, b2, 4096);
  });
});

describe('sparsify --fs refuses what it cannot trust, and changes nothing', () => {
  const fresh = (name: string, args = ['-b', '4096']) => {
    const image = join(dir, `${name}.img`);
    blank(image, 32 * MiB);
    makeFs(image, { offset: 0, size: 32 * MiB, type: 'ext4', args, files: 8 });
    return image;
  };
  async function expectRefused(image: string, code: string, message: RegExp, extra: string[] = []) {
    const hash = await sha256(image);
    const alloc = allocated(image);
    const r = await runCli(['--fs', ...extra, image]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
    expect(await sha256(image)).toBe(hash);
    expect(allocated(image)).toBe(alloc);
    await expect(sparsify(image, { fs: true })).rejects.toMatchObject({ code });
  }

  it('a filesystem not cleanly unmounted (s_state), even with --force', async () => {
    const image = fresh('dirty');
    run('debugfs', ['-w', '-R', 'ssv state 0', image]);
    await expectRefused(image, 'ERR_FS_DIRTY', /not cleanly unmounted.*e2fsck/, ['--force']);
  });
  it('a journal that needs recovery, and an orphan list', async () => {
    const image = fresh('recover');
    run('debugfs', ['-w', '-R', 'feature needs_recovery', image]);
    await expectRefused(image, 'ERR_FS_DIRTY', /needs recovery/);
    const orphan = fresh('orphan');
    run('debugfs', ['-w', '-R', 'ssv last_orphan 12', orphan]);
    await expectRefused(orphan, 'ERR_FS_DIRTY', /orphan/);
  });
  it('an unknown incompat feature (checksum fixed), and a bad superblock checksum', async () => {
    const image = fresh('unknown', ['-b', '4096', '-O', '^metadata_csum']);
    const sb = Buffer.alloc(4);
    sb.writeUInt32LE(0x80000 | 0x2 | 0x40 | 0x80 | 0x200, 0); // + an unknown bit
    run('debugfs', ['-w', '-R', 'ssv feature_incompat 0x802c2', image]);
    await expectRefused(image, 'ERR_FS_UNSUPPORTED', /unknown incompatible features 0x80000/);
    const bad = fresh('badsb');
    pokeBytes(bad, 1024 + 0x78, Buffer.from('x')); // the label, without fixing the checksum
    await expectRefused(bad, 'ERR_FS_CORRUPT', /bad superblock checksum/);
  });
  it('a corrupt group descriptor checksum (metadata_csum and uninit_bg)', async () => {
    const image = fresh('baddesc');
    pokeBytes(image, 4096 + 0x10, Buffer.from([0x77])); // group 0's used-dirs count
    await expectRefused(image, 'ERR_FS_CORRUPT', /bad checksum of group descriptor 0/);
    const gdt = fresh('baddesc16', ['-b', '1024', '-O', '^metadata_csum,uninit_bg']);
    pokeBytes(gdt, 2048 + 64 + 0x10, Buffer.from([0x77])); // 1 KiB blocks: descriptors in block 2, 64 bytes each (64bit)
    await expectRefused(gdt, 'ERR_FS_CORRUPT', /bad checksum of group descriptor 1/);
  });
  it('a truncated image', async () => {
    const image = fresh('truncated');
    truncateSync(image, 20 * MiB);
    await expectRefused(image, 'ERR_FS_CORRUPT', /larger than the .* bytes available/);
  });
  it('a mounted filesystem (loop device), even with --force; a copy of it; the device itself (then, unmounted, sparsified through the device)', async () => {
    const image = fresh('mounted');
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt, { recursive: true });
    const loop = attachLoop(image);
    try {
      mount(loop, mnt, ['-o', 'ro']);
      await expectRefused(image, 'EBUSY', /is mounted on .*mnt.*--force does not apply/, ['--force']);
      const r = await runCli(['--fs', image, join(dir, 'mounted-copy.img')]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/is mounted on/);
      // The device itself, too.
      const dev = await runCli(['--fs', '--force', loop]);
      expect(dev.code).toBe(1);
      expect(dev.stderr).toMatch(new RegExp(`${loop} is mounted on`));
      // Unmounted, the loop device is sparsified through the device (punches reach the image file).
      unmount(mnt);
      const before = snapshot(image, 0);
      const ok = await runCli(['--fs', '--json', loop]);
      expect(ok.stderr).toBe('');
      expect(JSON.parse(ok.stdout)).toMatchObject({ kind: 'block-device', volumes: [{ filesystem: 'ext4', action: 'free-blocks' }] });
      expectIntact(image, 0, before, 512);
    } finally {
      unmount(mnt);
      detachLoop(loop);
    }
  });
});

describe('sparsify --fs --dry-run', () => {
  it('reports per partition what would be reclaimed and changes nothing', async () => {
    const image = join(dir, 'dry.img');
    blank(image, 32 * MiB);
    makeFs(image, { offset: 0, size: 32 * MiB, type: 'ext4', args: ['-b', '4096'] });
    const hash = await sha256(image);
    const alloc = allocated(image);
    const r = await runCli(['--fs', '--dry-run', image]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/whole image at 0, 32.0 MiB: ext4, 4096 B blocks, used .*free blocks would be punched/);
    expect(await sha256(image)).toBe(hash);
    expect(allocated(image)).toBe(alloc);
    // The library's read-only inspection agrees with the dry run and dumpe2fs.
    const json = JSON.parse((await runCli(['--fs', '--dry-run', '--json', image])).stdout);
    const inspected = await inspectFilesystems(image);
    const facts = dumpFacts(image, 0);
    expect(inspected.partitionScheme).toBe('none');
    expect(inspected.volumes[0]).toMatchObject({ filesystem: 'ext4', freeBlocks: facts.freeBlocks, blockSize: 4096 });
    expect(inspected.freeBytes).toBe(facts.freeBlocks * 4096);
    expect(json.freeBytes).toBeLessThanOrEqual(inspected.freeBytes); // free blocks that are holes are not counted
    // blocksmith info --fs shows the same (but for how long the cross-check took).
    const shown = await runCli(['info', '--fs', '--json', image], { cli: blocksmithCli });
    expect(shown.code).toBe(0);
    const untimed = (i: { volumes: Array<{ verified?: { seconds: number } }> }) => ({
      ...i,
      volumes: i.volumes.map((v) => ({ ...v, verified: { ...v.verified, seconds: 0 } })),
    });
    expect(untimed(JSON.parse(shown.stdout).filesystems)).toEqual(untimed(inspected));
    const text = await runCli(['info', '--fs', image], { cli: blocksmithCli });
    expect(text.stdout).toMatch(/partition table: none\n  whole image at 0, 32.0 MiB: ext4, 4096 B blocks, used .*, free /);
    void at;
  });

  it('says what the real run reclaims, the text and the JSON from the same numbers (non-sparse image, zero runs and junk)', async () => {
    const built = join(dir, 'dry-built.img');
    const image = join(dir, 'dry-full.img');
    blank(built, 64 * MiB);
    makeFs(built, { offset: 0, size: 64 * MiB, type: 'ext4', args: ['-b', '1024'], files: 30, fileSize: 3_000_000 });
    run('cp', ['--sparse=never', built, image]); // every block allocated, as a VM image usually is
    const other = join(dir, 'dry-full-copy.img');
    run('cp', ['--sparse=never', built, other]);
    const text = await runCli(['--fs', '--dry-run', image]);
    const json = JSON.parse((await runCli(['--fs', '--dry-run', '--json', image])).stdout);
    expect(text.code).toBe(0);
    // Free blocks (junk of the deleted files) and zero blocks both count.
    expect(json.reclaimedBytes).toBeGreaterThan(json.zeroBytes + 10 * MiB);
    expect(json.reclaimedBytes).toBeLessThanOrEqual(json.zeroBytes + json.freeBytes);
    expect(text.stdout).toContain(
      `  disk size: ${formatBytes(json.allocatedBefore)} -> about ${formatBytes(json.allocatedBefore - json.reclaimedBytes)} (would reclaim about ${formatBytes(json.reclaimedBytes)})\n`,
    );
    // The real run, on an identical copy: what the dry run said, within the host filesystem's own bookkeeping
    // (the punched file's extent tree blocks).
    const real = JSON.parse((await runCli(['--fs', '--json', other])).stdout);
    expect(Math.abs(real.allocatedBefore - json.allocatedBefore)).toBeLessThanOrEqual(64 * 1024);
    expect(Math.abs(real.reclaimedBytes - json.reclaimedBytes)).toBeLessThanOrEqual(64 * 1024);
    expect(real.punchedBytes).toBe(json.punchedBytes);
  });
});
