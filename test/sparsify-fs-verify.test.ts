// sparsify --fs does not take the block bitmaps' word alone (issue 14, case
// 10): before its first punch it walks the inode tables and refuses, with
// one line naming the block and its owner, when the bitmaps call free a
// block that an inode (data, extent tree, indirect block, extended
// attributes, journal) or the filesystem's own metadata uses, and when the
// features conflict as e2fsck says they do. Nothing is changed then: the
// image's bytes, e2fsck's verdict, the files. Each refusal must be a true
// statement: e2fsck -fn names the same blocks. Clean filesystems holding
// every kind of inode are still reclaimed. And `info --fs` prints a line for
// every partition, refused ones with the reason (case 12).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectFilesystems, sparsify } from '../src/index.js';
import { blockOf, dumpFacts, fileHashes, fsck, inodeOf, inodeStat, makeFs, makeVariedFs, markFree, nonZeroBytesIn, partition } from './helpers/fs.js';
import { MiB, repoRoot, allocated, attachLoop, blocksmithCli, detachLoop, isOneLine, makeTempDir, mount, removeDir, run, runCli, sha256, unmount } from './helpers/sparsify.js';

const fixtures = join(repoRoot, 'test', 'fixtures', 'regressions');

let dir: string;
beforeAll(() => {
  dir = makeTempDir('bs-fsv-');
});
afterAll(() => removeDir(dir));

const unique = (name: string) => join(dir, `${name}-${Math.random().toString(36).slice(2)}.img`);

function blank(path: string, size: number): void {
  closeSync(openSync(path, 'w'));
  truncateSync(path, size);
}

/** sha256 of a file inside the filesystem, read by debugfs. */
function debugfsCat(image: string, path: string): string {
  const bytes = execFileSync('debugfs', ['-R', `cat ${path}`, image], { stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 * MiB });
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * sparsify --fs in place and as a copy: both exit 1 with `message` as their one line, create nothing and change
 * nothing (image bytes, allocation, e2fsck -fn's output).
 */
async function expectRefused(image: string, message: string): Promise<void> {
  const hash = await sha256(image);
  const alloc = allocated(image);
  const ck = fsck(image, 0);
  for (const args of [['--fs', image], ['--fs', image, join(dir, 'never.img')], ['--fs', '--dry-run', image]]) {
    const r = await runCli(args);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(isOneLine(r.stderr)).toBe(true);
    expect(r.stderr).toBe(`sparsify: '${image}': ${message} (ERR_FS_CORRUPT)\n`);
  }
  expect(existsSync(join(dir, 'never.img'))).toBe(false);
  await expect(sparsify(image, { fs: true })).rejects.toMatchObject({ code: 'ERR_FS_CORRUPT', message: `'${image}': ${message}` });
  expect(await sha256(image)).toBe(hash);
  expect(allocated(image)).toBe(alloc);
  expect(fsck(image, 0)).toEqual(ck);
}

describe('regressions from e2fsprogs test images', () => {
  it('f_extents (repaired, then 4 blocks of /services marked free with consistent counts; state clean): refused, /services intact', async () => {
    const image = unique('f_extents');
    run('sh', ['-c', `xz -dc "$0" > "$1"`, join(fixtures, 'e2fs_f_extents_fixed_services_blocks_marked_free.img.xz'), image]);
    expect(run('dumpe2fs', ['-h', image]).stdout).toMatch(/^Filesystem state:\s+clean$/m);
    // e2fsck's verdict: only these four blocks are wrong in the bitmap.
    expect(fsck(image, 0).out).toMatch(/Block bitmap differences: {2}\+\(1096--1099\)/);
    expect(inodeOf(image, '/services')).toBe(18);
    expect(debugfsCat(image, '/services')).toBe('f6183055fd949f9c53d49ee620f85d0150123ea691d25ed1bba0c641b4ee2f48');
    await expectRefused(
      image,
      'the ext4 filesystem at byte 0: blocks 1096-1099 are marked free in the block bitmap but belong to inode 18 (data); run e2fsck -f on it first',
    );
    expect(debugfsCat(image, '/services')).toBe('f6183055fd949f9c53d49ee620f85d0150123ea691d25ed1bba0c641b4ee2f48');
  });

  it('f_resize_inode_meta_bg (resize_inode with meta_bg, which e2fsck rejects): refused, inode 7 intact', async () => {
    const image = unique('f_resize_inode_meta_bg');
    run('sh', ['-c', `xz -dc "$0" > "$1"`, join(fixtures, 'f_resize_inode_meta_bg.img.xz'), image]);
    expect(fsck(image, 0).out).toMatch(/Resize_inode and meta_bg features are enabled/);
    expect(fsck(image, 0).out).toMatch(/Inode 7, i_blocks is 11480, should be 11296/);
    await expectRefused(image, 'the ext4 filesystem at byte 0 has both resize_inode and meta_bg, which e2fsck rejects; run e2fsck -f on it first');
    expect(fsck(image, 0).out).toMatch(/Inode 7, i_blocks is 11480, should be 11296/);
  });
});

describe('blocks marked free that something uses (debugfs freeb, counts kept consistent): refused, the statement true', () => {
  // Each case: the filesystem, and which blocks to mark free, and what owns them.
  interface Case {
    type: 'ext2' | 'ext3' | 'ext4';
    args: string[];
    pick: (image: string) => { first: number; count: number; owner: string };
  }
  const cases: Array<[string, Case]> = [
    ['ext4: 3 data blocks of an extent-mapped file', { type: 'ext4', args: ['-b', '4096'], pick: (i) => ({ first: blockOf(i, '/big', 5), count: 3, owner: `inode ${inodeOf(i, '/big')} (data)` }) }],
    ['ext2 (1 KiB blocks): a data block of an indirect-mapped file', { type: 'ext2', args: ['-b', '1024'], pick: (i) => ({ first: blockOf(i, '/big', 300), count: 1, owner: `inode ${inodeOf(i, '/big')} (data)` }) }],
    [
      'ext3: an indirect block',
      { type: 'ext3', args: ['-b', '1024'], pick: (i) => ({ first: Number(/\(IND\):(\d+)/.exec(inodeStat(i, '/big'))![1]), count: 1, owner: `inode ${inodeOf(i, '/big')} (an indirect block)` }) },
    ],
    [
      'ext3: the double indirect block',
      { type: 'ext3', args: ['-b', '1024'], pick: (i) => ({ first: Number(/\(DIND\):(\d+)/.exec(inodeStat(i, '/big'))![1]), count: 1, owner: `inode ${inodeOf(i, '/big')} (an indirect block)` }) },
    ],
    [
      'ext4: an extended-attribute block',
      { type: 'ext4', args: [], pick: (i) => ({ first: Number(/File ACL: (\d+)/.exec(inodeStat(i, '/mid'))![1]), count: 1, owner: `inode ${inodeOf(i, '/mid')} (its extended-attribute block)` }) },
    ],
    ['ext4: 10 blocks of the journal', { type: 'ext4', args: [], pick: (i) => ({ first: blockOf(i, '<8>', 100), count: 10, owner: 'inode 8, the journal (data)' }) }],
    ['ext3: a block of the journal', { type: 'ext3', args: ['-b', '1024'], pick: (i) => ({ first: blockOf(i, '<8>', 3000), count: 1, owner: 'inode 8, the journal (data)' }) }],
    [
      'ext4: an extent tree leaf block',
      { type: 'ext4', args: [], pick: (i) => ({ first: Number(/\(ETB0\):(\d+)/.exec(inodeStat(i, '/frag'))![1]), count: 1, owner: `inode ${inodeOf(i, '/frag')} (an extent tree block)` }) },
    ],
    ['ext4: a block of an uninitialized extent', { type: 'ext4', args: [], pick: (i) => ({ first: blockOf(i, '/prealloc', 50), count: 1, owner: `inode ${inodeOf(i, '/prealloc')} (data)` }) }],
    [
      'ext2: a block of an inode table',
      { type: 'ext2', args: ['-b', '4096'], pick: (i) => ({ first: Number(/Inode table at (\d+)-/.exec(run('dumpe2fs', [i]).stdout)![1]) + 3, count: 1, owner: 'the inode table of group 0' }) },
    ],
  ];
  it.each(cases)('%s', async (_name, c) => {
    const image = unique(c.type);
    blank(image, 64 * MiB);
    makeVariedFs(image, 64 * MiB, c.type, c.args);
    expect(fsck(image, 0).code).toBe(0);
    const { first, count, owner } = c.pick(image);
    expect(first).toBeGreaterThan(0);
    markFree(image, first, count);
    // What e2fsck says, and only that: these blocks are in use but marked free.
    const e2 = fsck(image, 0).out;
    const range = count === 1 ? `${first}` : `(${first}--${first + count - 1})`;
    expect(e2).toMatch(new RegExp(`Block bitmap differences: +\\+${range.replace(/[()]/g, '\\$&')}\\n`));
    expect(e2).not.toMatch(/checksum|Free blocks count wrong for group/i);
    const blocks = count === 1 ? `block ${first} is` : `blocks ${first}-${first + count - 1} are`;
    const fsType = c.type;
    await expectRefused(
      image,
      `the ${fsType} filesystem at byte 0: ${blocks} marked free in the block bitmap but ${count === 1 ? 'belongs' : 'belong'} to ${owner}; run e2fsck -f on it first`,
    );
  });

  it('a block pointer outside the filesystem: refused as e2fsck reports it', async () => {
    const image = unique('outside');
    blank(image, 64 * MiB);
    makeVariedFs(image, 64 * MiB, 'ext2', ['-b', '1024']);
    run('debugfs', ['-w', '-R', 'set_inode_field /mid block[2] 9999999', image]);
    const ino = inodeOf(image, '/mid');
    expect(fsck(image, 0).out).toMatch(new RegExp(`Illegal block #2 \\(9999999\\) in inode ${ino}`));
    await expectRefused(
      image,
      `the ext2 filesystem at byte 0: inode ${ino} (data) is at block 9999999, outside the filesystem's blocks 1-65535; run e2fsck -f on it first`,
    );
  });
});

describe('clean filesystems holding every kind of inode are still reclaimed', () => {
  const cases: Array<[string, 'ext2' | 'ext3' | 'ext4', string[]]> = [
    ['ext2, 1 KiB blocks', 'ext2', ['-b', '1024']],
    ['ext3, 4 KiB blocks', 'ext3', ['-b', '4096']],
    ['ext4 (flex_bg, 64bit, metadata_csum)', 'ext4', ['-b', '4096']],
    ['ext4 bigalloc', 'ext4', ['-b', '4096', '-O', 'bigalloc', '-C', '16384']],
    ['ext4 meta_bg', 'ext4', ['-b', '1024', '-O', 'meta_bg,^resize_inode']],
    ['ext4 inline_data, quota, orphan_file', 'ext4', ['-O', 'inline_data,quota,orphan_file']],
  ];
  it.each(cases)('%s', async (_name, type, args) => {
    const image = unique(type);
    blank(image, 64 * MiB);
    makeVariedFs(image, 64 * MiB, type, args);
    run('debugfs', ['-w', '-R', 'rm /big', image]); // free blocks holding junk
    const facts = dumpFacts(image, 0);
    const hashes = fileHashes(image, 0);
    const before = fsck(image, 0);
    const r = await sparsify(image, { fs: true });
    const v = r.volumes![0]!;
    expect(v).toMatchObject({ filesystem: type, action: 'free-blocks' });
    // Every inode in use was walked: the reserved ones (1-10, and the first 11 of rev 1) and the files.
    expect(v.verified!.inodes).toBeGreaterThanOrEqual(200 + 10);
    expect(r.freeBytes).toBeGreaterThan(2 * MiB);
    expect(fsck(image, 0)).toEqual(before);
    expect(fileHashes(image, 0)).toEqual(hashes);
    expect(nonZeroBytesIn(image, facts.free, 4096)).toBe(0);
  });
});

describe('info --fs: a line for every partition, refused ones with the reason', () => {
  it('a clean ext4, a dirty ext4 and a non-ext partition: the dirty one is listed with why sparsify --fs refuses it', async () => {
    const image = unique('mbr');
    blank(image, 80 * MiB);
    partition(image, 'label: dos\n1MiB,30MiB,83\n32MiB,30MiB,83\n63MiB,,7\n');
    makeFs(image, { offset: 1 * MiB, size: 30 * MiB, type: 'ext4', args: ['-b', '4096'], files: 4 });
    makeFs(image, { offset: 32 * MiB, size: 30 * MiB, type: 'ext4', args: ['-b', '4096'], files: 4 });
    run('debugfs', ['-w', '-R', 'ssv state 0', `${image}?offset=${32 * MiB}`]);
    const reason = `the ext4 filesystem in partition 2 (at byte ${32 * MiB}) was not cleanly unmounted or has errors (s_state 0x0); run e2fsck on it first`;

    const text = await runCli(['info', '--fs', image], { cli: blocksmithCli });
    expect(text.code).toBe(0);
    expect(text.stderr).toBe('');
    const lines = text.stdout.slice(text.stdout.indexOf('partition table:')).split('\n');
    expect(lines[0]).toBe('partition table: mbr');
    expect(lines[1]).toMatch(/^ {2}partition 1 \(0x83\) at 1048576, 30.0 MiB: ext4, 4096 B blocks, used .*, free .*; bitmaps agree with \d+ inodes$/);
    expect(lines[2]).toBe(`  partition 2 (0x83) at ${32 * MiB}, 30.0 MiB: ext4, refused by sparsify --fs: ${reason}`);
    expect(lines[3]).toBe(`  partition 3 (0x07) at ${63 * MiB}, 17.0 MiB: no known filesystem`);

    const json = JSON.parse((await runCli(['info', '--fs', '--json', image], { cli: blocksmithCli })).stdout);
    expect(json.filesystems.volumes.map((v: { action: string }) => v.action)).toEqual(['free-blocks', 'refused', 'zero-detection']);
    expect(json.filesystems.volumes[1]).toMatchObject({ number: 2, filesystem: 'ext4', error: { code: 'ERR_FS_DIRTY', message: reason } });
    const lib = await inspectFilesystems(image);
    expect(lib.volumes[1]!.error).toEqual({ code: 'ERR_FS_DIRTY', message: reason });

    // sparsify --fs refuses the whole image with the same reason, and changes nothing.
    const hash = await sha256(image);
    const r = await runCli(['--fs', image]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`sparsify: '${image}': ${reason} (ERR_FS_DIRTY)\n`);
    expect(await sha256(image)).toBe(hash);
  });

  it('shared_blocks is named (as e2fsprogs names it), and every feature of a clean filesystem as dumpe2fs lists them', async () => {
    const image = unique('shared');
    blank(image, 32 * MiB);
    makeFs(image, { offset: 0, size: 32 * MiB, type: 'ext4', args: ['-O', 'quota,project'], files: 4 });
    const features = /^Filesystem features:\s+(.*)$/m.exec(run('dumpe2fs', ['-h', image]).stdout)![1]!.trim().split(/\s+/);
    expect((await inspectFilesystems(image)).volumes[0]!.features).toEqual(features);
    run('debugfs', ['-w', '-R', 'feature shared_blocks', image]);
    const text = await runCli(['info', '--fs', image], { cli: blocksmithCli });
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(
      /\n {2}whole image at 0, 32.0 MiB: ext4, refused by sparsify --fs: the ext4 filesystem at byte 0 uses shared_blocks \(ro_compat 0x4000\), which blocksmith does not support\n$/,
    );
  });

  it('a mounted filesystem is reported as mounted (where), not by its journal state; sparsify --fs says mounted too', async () => {
    const image = unique('mounted');
    blank(image, 32 * MiB);
    makeFs(image, { offset: 0, size: 32 * MiB, type: 'ext4', files: 4 });
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt, { recursive: true });
    const loop = attachLoop(image);
    try {
      mount(loop, mnt);
      writeFileSync(join(mnt, 'new'), 'written while mounted\n');
      expect(run('dumpe2fs', ['-h', image]).stdout).toMatch(/needs_recovery/); // what the old message was about
      const reason = `the ext4 filesystem at byte 0 is in use: ${loop} is mounted on ${mnt} (what is on disk is not current while it is); unmount it first`;
      for (const target of [image, loop]) {
        const text = await runCli(['info', '--fs', target], { cli: blocksmithCli });
        expect(text.code).toBe(0);
        expect(text.stdout).toMatch(/\n {2}whole image at 0, 32.0 MiB: ext4, refused by sparsify --fs: (.*)\n$/);
        expect(/refused by sparsify --fs: (.*)\n$/.exec(text.stdout)![1]).toBe(reason);
      }
      expect((await inspectFilesystems(image)).volumes[0]!.error).toEqual({ code: 'EBUSY', message: reason });
      // sparsify --fs in place says mounted too (not "backs a loop device; use --force", which --fs would refuse anyway).
      // (The image's bytes are the kernel's to change while it is mounted: not compared here.)
      const r = await runCli(['--fs', image]);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(`sparsify: '${image}' is in use: ${loop} is mounted on ${mnt}; unmount it first (--force does not apply to --fs) (EBUSY)\n`);
    } finally {
      unmount(mnt);
      detachLoop(loop);
    }
  });

  it('a partition table that cannot be used is one line, after the image summary', async () => {
    const image = unique('ambiguous');
    blank(image, 32 * MiB);
    makeFs(image, { offset: 0, size: 32 * MiB, type: 'ext2', args: ['-b', '4096'], files: 2 });
    // An MBR signature and entry over an ext filesystem at byte 0 (ext2 with 4 KiB blocks leaves the boot sector free).
    partition(image, 'label: dos\n1MiB,10MiB,83\n');
    const text = await runCli(['info', '--fs', image], { cli: blocksmithCli });
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^image: /);
    expect(text.stdout).toMatch(
      /\npartition table: cannot be used: '.*' has both an MBR partition table and an ext superblock at its start; refusing to guess which is real\n$/,
    );
  });
});
