// e2fsprogs' own test images against sparsify --fs (issue 14, case 10).
// Five are clean filesystems whose block bitmaps call free what an inode
// uses, so only the cross-check against the inodes can tell; main before it
// (43c4928) reclaimed each, and the blocks happened to hold zeros, so no byte
// changed, by luck. Now each is refused with one true line, nothing created,
// nothing changed; the statement is checked against e2fsprogs' own tools
// (debugfs, dumpe2fs, e2fsck), never taken on trust. Two more were found by
// running the whole corpus (bench/e2fsprogs-fs.bench.js): an MMP block with a
// bad checksum (was reclaimed; now refused) and a clean filesystem with 8
// inodes a group (the cross-check refused it with a false reason; now
// reclaimed, nothing in use changed).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dumpFacts, fileHashes, fsck, junkBytes, makeFs, pokeBytes } from './helpers/fs.js';
import { MiB, blocksmithCli, isOneLine, makeTempDir, removeDir, repoRoot, run, runCli, sha256 } from './helpers/sparsify.js';

const fixtures = join(repoRoot, 'test', 'fixtures', 'regressions', 'e2fsprogs');

let dir: string;
beforeAll(() => {
  dir = makeTempDir('bs-e2fsprogs-');
});
afterAll(() => removeDir(dir));

const debugfs = (image: string, request: string) => run('debugfs', ['-R', request, image]).stdout;
/** debugfs testb: how many of the blocks from `first` the bitmap marks in use. */
const inUse = (image: string, first: number, count: number) =>
  debugfs(image, `testb ${first} ${count}`).split('\n').filter((l) => / marked in use$/.test(l)).length;

interface Case {
  image: string;
  message: string;
  code: 'ERR_FS_CORRUPT';
  /** What e2fsprogs says that makes the message true. */
  truth: (image: string) => void;
}

const cases: Case[] = [
  {
    image: 'f_badinode',
    code: 'ERR_FS_CORRUPT',
    message: 'the ext2 filesystem at byte 0: block 39 is marked free in the block bitmap but belongs to inode 13 (its extended-attribute block); run e2fsck -f on it first',
    truth: (image) => {
      expect(debugfs(image, 'stat <13>')).toMatch(/^File ACL: 39$/m);
      expect(inUse(image, 39, 1)).toBe(0);
      // libext2fs follows the pointer too (e2fsck would zero it: the filesystem has no ext_attr feature)
      expect(debugfs(image, 'icheck 39')).toMatch(/^39\t13$/m);
      expect(fsck(image, 0).out).toMatch(/i_file_acl for inode 13 \(\/timings\) is 39, should be zero/);
    },
  },
  {
    image: 'f_dup_ba',
    code: 'ERR_FS_CORRUPT',
    message: 'the ext4 filesystem at byte 0: blocks 240-243 are marked free in the block bitmap but belong to inode 16 (data); run e2fsck -f on it first',
    truth: (image) => {
      // bigalloc, 16 blocks a cluster: the cluster of 240-255 is free, the file's extent ends at 243
      expect(debugfs(image, 'stat <16>')).toMatch(/^\(0-99\):144-243$/m);
      expect(inUse(image, 240, 16)).toBe(0);
      expect(fsck(image, 0).out).toMatch(/Block bitmap differences: {2}\+240\n/);
    },
  },
  {
    image: 'f_hugedir_blocks',
    code: 'ERR_FS_CORRUPT',
    message: 'the ext4 filesystem at byte 0: block 13 is marked free in the block bitmap but belongs to inode 12 (data); run e2fsck -f on it first',
    truth: (image) => {
      // mapped at an impossible logical block: e2fsck would truncate the directory, the kernel reads it
      expect(debugfs(image, 'stat <12>')).toMatch(/\(1074791435\):13/);
      expect(inUse(image, 13, 1)).toBe(0);
      expect(fsck(image, 0).out).toMatch(/Block #1074791435 \(13\) causes directory to be too big/);
    },
  },
  {
    image: 'f_ind_inode_collision',
    code: 'ERR_FS_CORRUPT',
    message: "the ext4 filesystem at byte 0: inode 12 (an indirect block) is at block 16777215, outside the filesystem's blocks 0-511; run e2fsck -f on it first",
    truth: (image) => {
      expect(debugfs(image, 'stat <12>')).toMatch(/\(IND\):16777215\n/);
      expect(run('dumpe2fs', ['-h', image]).stdout).toMatch(/^Block count:\s+512$/m);
      // and blocks it maps are marked free: what the walk would have met next
      expect(fsck(image, 0).out).toMatch(/Block bitmap differences: {2}\+8 \+28 \+\(32--33\)\n/);
    },
  },
  {
    image: 'f_invalid_bad_inode',
    code: 'ERR_FS_CORRUPT',
    message: 'the ext4 filesystem at byte 0: block 37 is marked free in the block bitmap but belongs to inode 1, the bad blocks inode (data); run e2fsck -f on it first',
    truth: (image) => {
      expect(debugfs(image, 'stat <1>')).toMatch(/^\(0\):37, \(1\):37/m);
      expect(inUse(image, 37, 1)).toBe(0);
      expect(fsck(image, 0).out).toMatch(/Block bitmap differences: {2}\+37\n/);
    },
  },
  {
    // Not one of case 10's five: found by the same corpus run. Its MMP
    // block decides whether another node has the filesystem in use.
    image: 'm_mmp_bad_csum',
    code: 'ERR_FS_CORRUPT',
    message: 'the ext4 filesystem at byte 0: bad MMP block checksum',
    truth: (image) => {
      expect(run('dumpe2fs', ['-h', image], { allowFail: true }).stderr).toMatch(/MMP block checksum does not match reading MMP block 8/);
      // e2fsck goes no further than this
      expect(fsck(image, 0).out).toMatch(/^Superblock MMP block checksum does not match\. {2}Fix\? no$/m);
    },
  },
];

describe("e2fsprogs' test images to refuse: one true line, nothing created, nothing changed", () => {
  it.each(cases.map((c) => [c.image, c] as const))('%s', async (name, c) => {
    const image = join(dir, `${name}.img`);
    run('sh', ['-c', 'gzip -dc "$0" > "$1"', join(fixtures, `${name}.img.gz`), image]);
    expect(run('dumpe2fs', ['-h', image], { allowFail: true }).stdout).toMatch(/^Filesystem state:\s+clean$/m);
    c.truth(image);

    const hash = await sha256(image);
    const before = fsck(image, 0);
    const out = join(dir, `${name}-out.img`);
    for (const args of [['--fs', image], ['--fs', image, out], ['--fs', '--dry-run', image]]) {
      const r = await runCli(args);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(isOneLine(r.stderr)).toBe(true);
      expect(r.stderr).toBe(`sparsify: '${image}': ${c.message} (${c.code})\n`);
    }
    expect(existsSync(out)).toBe(false);

    const info = await runCli(['info', '--fs', '--json', image], { cli: blocksmithCli });
    expect(info.code).toBe(0);
    const volumes = JSON.parse(info.stdout).filesystems.volumes;
    expect(volumes).toHaveLength(1);
    expect(volumes[0]).toMatchObject({ offset: 0, action: 'refused', error: { code: c.code, message: c.message } });

    expect(await sha256(image)).toBe(hash);
    expect(fsck(image, 0)).toEqual(before);
  });
});

describe('the MMP block is trusted only with a matching checksum (metadata_csum)', () => {
  it('one byte of its node name changed: refused; the same filesystem before that: reclaimed', async () => {
    const image = join(dir, 'mmp.img');
    run('truncate', ['-s', '16M', image]);
    run('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '4096', '-O', 'mmp,metadata_csum', image]);
    const mmp = Number(/^MMP block number:\s+(\d+)$/m.exec(run('dumpe2fs', ['-h', image]).stdout)![1]);
    const ok = await runCli(['--fs', '--dry-run', '--json', image]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).volumes[0]).toMatchObject({ filesystem: 'ext4', action: 'free-blocks' });

    // mmp_nodename starts at byte 16; magic and sequence (clean) stay as they were.
    pokeBytes(image, mmp * 4096 + 16, Buffer.from('X'));
    expect(fsck(image, 0)).toMatchObject({ code: 12, out: expect.stringMatching(/^Superblock MMP block checksum does not match\. {2}Fix\? no$/m) });
    const hash = await sha256(image);
    const r = await runCli(['--fs', image, join(dir, 'mmp-out.img')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`sparsify: '${image}': the ext4 filesystem at byte 0: bad MMP block checksum (ERR_FS_CORRUPT)\n`);
    expect(existsSync(join(dir, 'mmp-out.img'))).toBe(false);
    expect(await sha256(image)).toBe(hash);
  });
});

describe('fewer inodes per group than reserved inodes (f_desc_size_128: 8 a group): reclaimed, nothing in use changed', () => {
  /** sparsify --fs IMG OUT reclaims; e2fsck -fn says the same of both, every file reads the same, the free blocks' junk is gone. */
  async function expectReclaimed(image: string): Promise<void> {
    const out = join(dir, `${Math.random().toString(36).slice(2)}-out.img`);
    const hash = await sha256(image);
    const before = fsck(image, 0);
    const files = fileHashes(image, 0);
    const facts = dumpFacts(image, 0);
    expect(junkBytes(image, facts.free)).toBeGreaterThan(0);
    const r = await runCli(['--fs', '--json', image, out]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).volumes[0]).toMatchObject({ action: 'free-blocks', freeBlocks: facts.freeBlocks });
    expect(await sha256(image)).toBe(hash);
    expect(fsck(out, 0).out.split(out).join(image)).toBe(before.out);
    expect(fileHashes(out, 0)).toEqual(files);
    expect(junkBytes(out, facts.free)).toBe(0);
  }

  it("e2fsprogs' f_desc_size_128 (clean; its free blocks hold junk)", async () => {
    const image = join(dir, 'f_desc_size_128.img');
    run('sh', ['-c', 'gzip -dc "$0" > "$1"', join(fixtures, 'f_desc_size_128.img.gz'), image]);
    expect(run('dumpe2fs', ['-h', image]).stdout).toMatch(/^Inodes per group:\s+8$/m);
    expect(fsck(image, 0)).toMatchObject({ code: 0 });
    await expectReclaimed(image);
  });

  it.each(['ext2', 'ext4'] as const)('%s made by mke2fs -N 64', async (type) => {
    const image = join(dir, `ipg8-${type}.img`);
    run('truncate', ['-s', '8M', image]);
    makeFs(image, { offset: 0, size: 8 * MiB, type, args: ['-b', '1024', '-g', '1024', '-N', '64'], files: 12, fileSize: 300_000 });
    expect(run('dumpe2fs', ['-h', image]).stdout).toMatch(/^Inodes per group:\s+8$/m);
    expect(fsck(image, 0)).toMatchObject({ code: 0 });
    await expectReclaimed(image);
  });
});
