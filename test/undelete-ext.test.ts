// blocksmith undelete (and carve --undelete) on ext2, ext3 and ext4 images
// the kernel made (helpers/ext-deleted.ts: loop mount, write, sync, rm -r,
// sync, a later file over one deleted file's blocks, unmount): the deleted
// files come back byte-equal under their original paths with their mtimes;
// the overwritten one is reported overwritten and not written; no live file
// is written; --list writes nothing; the source is never changed; a
// filesystem mounted read-write is refused before anything is created (read
// only is fine); a hostile superblock gets a one-line error.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CarveReport, RecoveredByName, UndeletedFile } from '../src/index.js';
import { makeJpeg, sha256 } from './helpers/carve.js';
import { buildDeletedExt, makeExtImage, withMountedImage, type DeletedExt, type ExtImageSpec } from './helpers/ext-deleted.js';
import { MiB, makeTempDir, removeDir, runCli, spawnSyncOk } from './helpers/foundation.js';
import { attachLoop, detachLoop, mount, unmount } from './helpers/sparsify.js';

let dir: string;
beforeAll(() => {
  dir = makeTempDir('undelete-ext-');
});
afterAll(() => removeDir(dir));

const fileSha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

/** Every regular file under `root`, relative to it. */
function walk(root: string, rel = ''): string[] {
  if (!existsSync(join(root, rel))) return [];
  return readdirSync(join(root, rel), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(root, join(rel, e.name)) : [join(rel, e.name)],
  );
}

function parseNdjson(stdout: string): { files: UndeletedFile[]; summary: Record<string, unknown> } {
  const rows = stdout.trim().split('\n').map((l) => JSON.parse(l) as UndeletedFile & { summary?: Record<string, unknown> });
  const last = rows.pop()!;
  expect(last.summary).toBeDefined();
  return { files: rows, summary: last.summary! };
}

interface Score {
  deleted: number;
  exact: number;
  named: number;
  mtimes: number;
}

/**
 * The checks every image gets, whatever the reader could find: each file
 * written as good (recovered/reassembled) holds the bytes of a deleted
 * original (by its path, or under lost+found), never a live file's; the
 * overwritten file is not written; what is written where it belongs has the
 * original's mtime. Returns how many deleted files came back exactly.
 */
function check(built: DeletedExt, out: string, files: UndeletedFile[], journalled: boolean): Score {
  const deletedBySha = new Map([...built.deleted, ...built.reused].map((f) => [sha256(f.bytes), f]));
  const liveSha = new Set(built.live.filter((f) => f.bytes.length > 0).map((f) => sha256(f.bytes)));
  const livePaths = new Set(built.live.map((f) => f.path));
  const score: Score = { deleted: built.deleted.length, exact: 0, named: 0, mtimes: 0 };
  const byPath = new Map(files.filter((f) => !f.directory).map((f) => [f.path, f]));
  for (const f of files) {
    if (f.directory || !f.writtenAs) continue;
    expect(livePaths.has(f.path), `live file ${f.path} written`).toBe(false);
    const sha = fileSha(join(out, f.writtenAs));
    expect(f.sha256).toBe(sha);
    expect(liveSha.has(sha), `${f.writtenAs} holds a live file's bytes`).toBe(false);
    if (f.status === 'recovered' || f.status === 'reassembled') {
      // Presented as good: it must be a deleted file's content.
      expect(deletedBySha.has(sha), `${f.writtenAs} (${f.status}, inode ${f.inode}, ${f.foundIn}) is no deleted file's content`).toBe(true);
    } else {
      expect(f.status).toBe('partial');
    }
  }
  for (const want of built.deleted) {
    const f = byPath.get(want.path);
    if (!f || !f.writtenAs) continue;
    expect(f.writtenAs).toBe(`recovered/${want.path}`);
    expect(f.inode).toBeGreaterThan(0);
    expect(typeof f.foundIn).toBe('string');
    score.named++;
    const p = join(out, f.writtenAs);
    if (!readFileSync(p).equals(want.bytes)) continue;
    score.exact++;
    if (Math.round(statSync(p).mtimeMs / 1000) === want.mtime && f.times.modified === new Date(want.mtime * 1000).toISOString().replace('.000Z', 'Z'))
      score.mtimes++;
  }
  for (const gone of built.overwritten) {
    const f = byPath.get(gone.path);
    // ext2 keeps no older copy of its inode (the kernel zeroed it on delete): then it is not listed at all.
    if (!f && !journalled) continue;
    expect(f?.status, `${gone.path}: its blocks are filler.bin's`).toBe('overwritten');
    expect(f?.writtenAs).toBeUndefined();
    expect(f?.overwrittenBytes).toBeGreaterThan(0);
  }
  for (const gone of built.reused) {
    const f = byPath.get(gone.path);
    if (!f && !journalled) continue;
    // Its number is filler.bin's now: listed as that number's earlier incarnation, under its own path.
    expect(f?.inode, gone.path).toBe(gone.inode);
    expect(f?.foundIn).toMatch(/\(the inode is a new file's now\)$/);
    if (f?.writtenAs) expect(readFileSync(join(out, f.writtenAs)).equals(gone.bytes), gone.path).toBe(true);
  }
  return score;
}

const variants: { name: string; spec: ExtImageSpec; all: boolean }[] = [
  // ext2 has no journal, and today's kernel (the ext4 driver serves ext2)
  // zeroes a deleted inode's size and block pointers: nothing says where the
  // bytes were (carving finds them). Checked: nothing wrong is presented as good.
  { name: 'ext2', spec: { type: 'ext2', sizeMiB: 32 }, all: false },
  { name: 'ext3', spec: { type: 'ext3', sizeMiB: 32 }, all: true },
  { name: 'ext4', spec: { type: 'ext4', sizeMiB: 32 }, all: true },  // metadata_csum, 64bit (mke2fs's defaults)
  { name: 'ext4-nocsum', spec: { type: 'ext4', sizeMiB: 32, features: '^metadata_csum,^64bit' }, all: true },
  { name: 'ext4-64bit-4k', spec: { type: 'ext4', sizeMiB: 48, features: '64bit', blockSize: 4096 }, all: true },
];

const built = new Map<string, DeletedExt>();
const scores: Record<string, Score> = {};
afterAll(() => {
  if (Object.keys(scores).length) console.log('undelete-ext scores', JSON.stringify(scores));
});

describe('blocksmith undelete on kernel-made ext images', () => {
  for (const v of variants) {
    const what = v.all
      ? 'deleted files come back byte-equal under their paths with their mtimes; the overwritten one is not written'
      : 'read, and nothing is presented as a deleted file that is not one';
    it(`${v.name}: ${what}; no live file is written; the source is unchanged`, async () => {
      const b = buildDeletedExt(dir, v.name, v.spec);
      built.set(v.name, b);
      const before = fileSha(b.image);
      const out = join(dir, `${v.name}-out`);
      const r = await runCli(['undelete', b.image, '-o', out, '--json', '--force']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const { files, summary } = parseNdjson(r.stdout);
      const vols = summary.volumes as { read: boolean; filesystem?: string; clusterSize?: number }[];
      expect(vols).toHaveLength(1);
      expect(vols[0]!.read).toBe(true);
      expect(vols[0]!.filesystem).toBe(v.spec.type);
      expect(vols[0]!.clusterSize).toBe(b.blockSize);
      const s = check(b, out, files, v.all);
      scores[v.name] = s;
      if (v.all) {
        expect(s.exact).toBe(b.deleted.length);
        expect(s.mtimes).toBe(b.deleted.length);
      }
      // report.json lists the same files; every file under recovered/ is one of them.
      const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as { files: UndeletedFile[]; state: string };
      expect(report.state).toBe('done');
      const written = new Set(report.files.filter((f) => f.writtenAs && !f.directory).map((f) => f.writtenAs));
      expect(new Set(walk(out, 'recovered').map((p) => p))).toEqual(written);
      expect(fileSha(b.image)).toBe(before);
    });
  }

  it('--list writes nothing and shows each file with its inode and where it was found', async () => {
    const b = built.get('ext4') ?? buildDeletedExt(dir, 'ext4-list', { type: 'ext4', sizeMiB: 32 });
    const before = fileSha(b.image);
    const there = readdirSync(dir).sort();
    const r = await runCli(['undelete', b.image, '--list']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(there);
    expect(fileSha(b.image)).toBe(before);
    const line = r.stdout.split('\n').find((l) => l.includes(' /photos/2023/summer/IMG_0001.jpg'));
    expect(line).toMatch(/^recoverable +\d+ +2023-\d\d-\d\d \d\d:\d\d:\d\d UTC +\/photos\/2023\/summer\/IMG_0001\.jpg {2}\(inode \d+, from .+\)$/);
    expect(r.stdout).toMatch(/^overwritten .* \/victim\.bin {2}\(inode \d+/m);
    expect(r.stdout).toMatch(new RegExp(`recoverable: \\d+ +partial: 0 +overwritten: ${b.overwritten.length} `));
  });
});

describe('an ext4 partition of an MBR disk', () => {
  it('is found and read like a whole-image filesystem; refused while the partition is mounted read-write', async () => {
    const b = built.get('ext4') ?? buildDeletedExt(dir, 'ext4-part', { type: 'ext4', sizeMiB: 32 });
    const disk = join(dir, 'disk.img');
    spawnSyncOk('truncate', ['-s', '40M', disk]);
    spawnSyncOk('sh', ['-c', `printf 'label: dos\nstart=2048, size=${34 * 2048}, type=83\n' | sfdisk -q "$1"`, 'sh', disk]);
    spawnSyncOk('dd', [`if=${b.image}`, `of=${disk}`, 'bs=1M', 'seek=1', 'conv=notrunc', 'status=none']);
    const out = join(dir, 'disk-out');
    const r = await runCli(['undelete', disk, '-o', out, '--json', '--force']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const { files, summary } = parseNdjson(r.stdout);
    const vols = summary.volumes as { partition: number; read: boolean; offset: number; filesystem?: string }[];
    expect(vols.map((v) => [v.partition, v.read, v.offset, v.filesystem])).toEqual([[1, true, MiB, 'ext4']]);
    expect(check(b, out, files, true).exact).toBe(b.deleted.length);

    // The partition mounted through a loop device at its offset (mount -o loop,offset=).
    const mnt = join(dir, 'disk.mnt');
    spawnSyncOk('mkdir', ['-p', mnt]);
    try {
      mount(disk, mnt, ['-o', `loop,offset=${MiB}`]);
      const refused = await runCli(['undelete', disk, '--list']);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/^blocksmith: '[^']+' holds a filesystem mounted read-write \(\/dev\/loop\d+ is mounted on [^)]+\): [^\n]+\n$/);
    } finally {
      unmount(mnt);
    }
  });
});

describe('a mounted filesystem', () => {
  it('mounted read-write: undelete, --list and carve --undelete refuse with one line and create nothing; mounted read-only: read', async () => {
    const img = join(dir, 'mounted.img');
    makeExtImage(img, { type: 'ext4', sizeMiB: 32 });
    const data = Buffer.from('written, synced, deleted\n'.repeat(500));
    withMountedImage(img, join(dir, 'mounted.prep'), (root) => {
      writeFileSync(join(root, 'gone.txt'), data);
      spawnSyncOk('sync', ['-f', root]);
      rmSync(join(root, 'gone.txt'));
    });
    const mnt = join(dir, 'mounted.mnt');
    spawnSyncOk('mkdir', ['-p', mnt]);
    const dev = attachLoop(img);
    try {
      mount(dev, mnt);
      const out = join(dir, 'mounted-out');
      const oneLine = /^blocksmith: '[^']+' holds a filesystem mounted read-write \(\/dev\/loop\d+ is mounted on [^)]+\): what is on disk is not current while it is, and changes as it is read; unmount it or remount it read-only first \(EBUSY\)\n$/;
      for (const args of [
        ['undelete', img, '-o', out, '--force'],
        ['undelete', img, '--list'],
        ['undelete', dev, '--list'],
        ['carve', img, '-o', out, '--undelete', '--force'],
      ]) {
        const r = await runCli(args);
        expect(r.code, args.join(' ')).toBe(1);
        expect(r.stderr).toMatch(oneLine);
        expect(r.stdout).toBe('');
        expect(existsSync(out)).toBe(false);
      }
      spawnSyncOk('mount', ['-o', 'remount,ro', mnt]);
      const r = await runCli(['undelete', img, '--list', '--json']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const { files } = parseNdjson(r.stdout);
      expect(files.find((f) => f.path === 'gone.txt')?.status).toBe('recoverable');
    } finally {
      unmount(mnt);
      detachLoop(dev);
    }
  });
});

describe('a source that cannot be read', () => {
  it('an ext superblock with an unknown incompatible feature: one line naming it, exit 1, nothing created', async () => {
    const img = join(dir, 'hostile.img');
    makeExtImage(img, { type: 'ext2', sizeMiB: 16 });
    // s_feature_incompat (le32 at superblock + 0x60) gets bit 30, which no kernel knows.
    spawnSyncOk('sh', ['-c', `printf '\\100' | dd of="$1" bs=1 seek=$((1024 + 0x63)) conv=notrunc status=none`, 'sh', img]);
    const out = join(dir, 'hostile-out');
    const r = await runCli(['undelete', img, '-o', out, '--force']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^blocksmith: '[^']+': no FAT, exFAT or ext filesystem could be read \(the whole source: [^\n]+\) \(ERR_FS_UNSUPPORTED\)\n$/);
    expect(r.stderr).toMatch(/feature|0x40000000/i);
    expect(existsSync(out)).toBe(false);
  });
});

describe('carve --undelete on ext4', () => {
  it('recovers the deleted files by name, then carves the photo no inode describes, and nothing twice', async () => {
    const nameless = makeJpeg(dir, 'nameless', 352, 288, 4242);
    const at = 29 * MiB + 4096 * 3;
    const b = buildDeletedExt(dir, 'carve-ext4', { type: 'ext4', sizeMiB: 32, overwrite: false, planted: { offset: at, bytes: nameless } });
    const out = join(dir, 'carve-out');
    const r = await runCli(['carve', b.image, '-o', out, '--undelete', '--force', '--quiet']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as CarveReport;
    const byName = report.files.filter((f): f is RecoveredByName => f.method === 'metadata');
    const wanted = new Map(b.deleted.map((f) => [`/${f.path}`, f]));
    let exact = 0;
    for (const f of byName) {
      const w = wanted.get(f.originalPath);
      expect(w, `${f.originalPath} is no deleted file`).toBeDefined();
      if (f.status !== 'recovered') continue;
      expect(f.path).toBe(`recovered${f.originalPath}`);
      expect(readFileSync(join(out, f.path!)).equals(w!.bytes)).toBe(true);
      expect(f.inode).toBeGreaterThan(0);
      exact++;
    }
    expect(exact).toBe(b.deleted.length);
    const carved = report.files.filter((f) => f.method !== 'metadata');
    // The photo in free space no inode names, carved by offset; the deleted
    // photos were recovered by name, so scope free leaves their bytes out.
    expect(carved.map((f) => [f.offset, f.status, f.sha256])).toEqual([[at, 'complete', sha256(nameless)]]);
    expect(report.undelete?.recovered).toBe(b.deleted.length);
  });
});
