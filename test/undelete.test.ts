// blocksmith undelete on real FAT12/16/32 (mkfs.fat + mtools) and exFAT
// images, whole or as the partition of an MBR/GPT card: every deleted file
// comes back byte-equal under its original path (long names, nested and
// deleted directories) with its mtime; a file whose clusters a live file took
// is reported overwritten and not written; --list writes nothing; the source
// is never changed.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { undelete, type UndeleteReport } from '../src/index.js';
import { makeJpeg, randomBytes, sha256 } from './helpers/carve.js';
import { MiB, makeTempDir, removeDir, runCli, spawnSyncOk } from './helpers/foundation.js';

process.env.MTOOLS_SKIP_CHECK = '1';

let dir: string;
let n = 0;

interface Wanted {
  /** As copied in. */
  path: string;
  /** As the deleted entry gives it: a FAT 8.3 name without a long name loses its first letter (the delete mark). */
  found: string;
  bytes: Buffer;
  /** Seconds since the epoch of the mtime given to mcopy -m (even: FAT keeps 2 s). */
  mtime: number;
}

/** A local time (FAT stores wall-clock time), as seconds since the epoch. */
const local = (y: number, mo: number, d: number, h: number, mi: number, s: number) => new Date(y, mo - 1, d, h, mi, s).getTime() / 1000;

function put(img: string, path: string, bytes: Buffer, mtime: number): void {
  const f = join(dir, `in-${n++}`);
  writeFileSync(f, bytes);
  utimesSync(f, mtime, mtime);
  spawnSyncOk('mcopy', ['-m', '-i', img, f, `::/${path}`]);
}

function bytesFree(img: string): number {
  const m = /([\d ]+) bytes free/.exec(spawnSyncOk('mdir', ['-i', img, '::/']));
  if (!m) throw new Error('mdir printed no free bytes');
  return Number(m[1]!.replace(/ /g, ''));
}

/**
 * A FAT volume (mkfs.fat -F bits) with live and deleted files: a deleted
 * JPEG in DCIM/100CANON, a deleted file with a long name, a deleted
 * directory tree (mdeltree), and victim.bin, deleted when the volume was
 * full and then half overwritten by a new file (its clusters are a live
 * file's now). Returns the deleted files that must come back.
 */
function buildFat(img: string, bits: 12 | 16 | 32, sizeKiB: number): { deleted: Wanted[]; live: string[]; victim: string } {
  spawnSyncOk('mkfs.fat', ['-F', String(bits), ...(bits === 32 ? ['-s', '1'] : ['-s', '2']), '-C', img, String(sizeKiB)]);
  spawnSyncOk('mmd', ['-i', img, '::/DCIM', '::/DCIM/100CANON', '::/Old photos', '::/Old photos/nested dir', '::/papers']);
  const jpeg = makeJpeg(dir, `j${n++}`, 320, 240, 7 + bits);
  const deleted: Wanted[] = [
    // Its 8.3 name lost its first letter; the live IMG_0002.JPG beside it gives it back (guessed).
    { path: 'DCIM/100CANON/IMG_0001.JPG', found: 'DCIM/100CANON/IMG_0001.JPG', bytes: jpeg, mtime: local(2021, 6, 15, 12, 34, 56) },
    { path: 'Long file name with spaces.txt', found: 'Long file name with spaces.txt', bytes: Buffer.from('a long name survives in its LFN entries\n'.repeat(300)), mtime: local(2020, 1, 2, 3, 4, 6) },
    { path: 'Old photos/a long name.txt', found: 'Old photos/a long name.txt', bytes: randomBytes(3000, 1 + bits), mtime: local(2019, 12, 31, 23, 59, 58) },
    { path: 'Old photos/nested dir/deep file.bin', found: 'Old photos/nested dir/deep file.bin', bytes: randomBytes(9000, 2 + bits), mtime: local(2022, 2, 22, 22, 22, 22) },
  ];
  for (const w of deleted) put(img, w.path, w.bytes, w.mtime);
  put(img, 'DCIM/100CANON/IMG_0002.JPG', makeJpeg(dir, `j${n++}`, 200, 150, 99), local(2021, 6, 15, 12, 40, 0));
  put(img, 'keep.txt', Buffer.from('live\n'), local(2021, 1, 1, 0, 0, 0));
  // The victim, then a filler over every free byte, so that once the victim
  // is deleted its clusters are the only free ones and new.bin takes them
  // (new.bin goes to the root, so the victim's entry in papers/ stays).
  put(img, 'papers/victim file.bin', randomBytes(16 * 1024, 3 + bits), local(2021, 3, 3, 3, 3, 4));
  put(img, 'filler.bin', randomBytes(bytesFree(img), 4 + bits), local(2021, 3, 3, 3, 3, 4));
  spawnSyncOk('mdel', ['-i', img, '::/papers/victim file.bin']);
  put(img, 'new.bin', randomBytes(8 * 1024, 5 + bits), local(2021, 4, 4, 4, 4, 4));
  // Space for nothing else now: deleting the rest leaves their clusters free.
  spawnSyncOk('mdel', ['-i', img, '::/DCIM/100CANON/IMG_0001.JPG', '::/Long file name with spaces.txt']);
  spawnSyncOk('mdeltree', ['-i', img, '::/Old photos']);
  return { deleted, live: ['keep.txt', 'new.bin', 'filler.bin', 'DCIM/100CANON/IMG_0002.JPG'], victim: 'papers/victim file.bin' };
}

/** `volume` written at `offset` of a new card image of `size` bytes, partitioned by sfdisk (MBR) or sgdisk (GPT). */
function buildCard(card: string, volume: string, scheme: 'mbr' | 'gpt', size: number): number {
  const vol = readFileSync(volume);
  writeFileSync(card, Buffer.alloc(0));
  spawnSyncOk('truncate', ['-s', String(size), card]);
  const sectors = vol.length / 512;
  if (scheme === 'mbr') {
    const r = spawnSync('sfdisk', ['-q', card], { input: `label: dos\nstart=2048, size=${sectors}, type=c\n`, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`sfdisk: ${r.stderr}`);
  } else spawnSyncOk('sgdisk', ['-n', `1:2048:${2048 + sectors - 1}`, '-t', '1:0700', card]);
  spawnSyncOk('dd', [`if=${volume}`, `of=${card}`, 'bs=512', 'seek=2048', 'conv=notrunc', 'status=none']);
  return 2048 * 512;
}

function expectRecovered(rep: UndeleteReport, outDir: string, deleted: Wanted[], victim: string): void {
  for (const w of deleted) {
    const f = rep.files.find((x) => x.path === w.found);
    expect(f, `${w.found} is listed`).toBeDefined();
    expect(f!.status, w.path).toBe('recovered');
    expect(f!.writtenAs).toBe(`recovered/${w.found}`);
    const got = readFileSync(join(outDir, f!.writtenAs!));
    expect(sha256(got), w.path).toBe(sha256(w.bytes));
    expect(f!.sha256).toBe(sha256(w.bytes));
    expect(Math.round(statSync(join(outDir, f!.writtenAs!)).mtimeMs / 1000), `${w.path} mtime`).toBe(w.mtime);
    expect(f!.method).toBe('metadata');
  }
  const photo = rep.files.find((x) => x.path === 'DCIM/100CANON/IMG_0001.JPG')!;
  expect(photo.jpeg).toBe('complete');
  expect(photo.nameGuessed).toBe(true);
  expect(rep.files.find((x) => x.path === 'Old photos/a long name.txt')!.nameGuessed).toBeUndefined();
  const v = rep.files.find((x) => x.path === victim);
  expect(v?.status).toBe('overwritten');
  expect(v?.writtenAs).toBeUndefined();
  expect(existsSync(join(outDir, 'recovered', victim))).toBe(false);
  const old = rep.files.find((x) => x.path === 'Old photos');
  expect(old?.directory).toBe(true);
  // Only what was deleted is written: no live file.
  const written = rep.files.filter((f) => f.writtenAs && !f.directory).map((f) => f.path).sort();
  expect(written).toEqual(deleted.map((w) => w.found).sort());
  const report = JSON.parse(readFileSync(join(outDir, 'report.json'), 'utf8')) as UndeleteReport;
  expect(report.files.length).toBe(rep.files.length);
  expect(report.recovered).toBe(deleted.length);
}

beforeAll(() => {
  dir = makeTempDir('undelete');
});
afterAll(() => removeDir(dir));

describe('blocksmith undelete', () => {
  it('FAT12, whole image: every deleted file back by name, byte-equal, with its mtime; the source unchanged', async () => {
    const img = join(dir, 'fat12.img');
    const { deleted, victim } = buildFat(img, 12, 2048);
    const before = sha256(readFileSync(img));
    const out = join(dir, 'out12');
    const rep = await undelete(img, { outDir: out, force: true });
    expect(rep.volumes.map((v) => [v.partition, v.filesystem])).toEqual([[0, 'fat12']]);
    expectRecovered(rep, out, deleted, victim);
    expect(sha256(readFileSync(img))).toBe(before);
  });

  it('FAT16 on an MBR card and FAT32 on a GPT card: the partition is found and read', async () => {
    for (const [bits, scheme, kib] of [[16, 'mbr', 16 * 1024], [32, 'gpt', 34 * 1024]] as const) {
      const vol = join(dir, `fat${bits}.vol`);
      const { deleted, victim } = buildFat(vol, bits, kib);
      const card = join(dir, `card-${scheme}.img`);
      const offset = buildCard(card, vol, scheme, kib * 1024 + 4 * MiB);
      const before = sha256(readFileSync(card));
      const out = join(dir, `out-${scheme}`);
      const rep = await undelete(card, { outDir: out, force: true });
      expect(rep.scheme).toBe(scheme);
      const read = rep.volumes.filter((v) => v.read);
      expect(read.map((v) => [v.partition, v.offset, v.filesystem])).toEqual([[1, offset, `fat${bits}`]]);
      expectRecovered(rep, out, deleted, victim);
      expect(sha256(readFileSync(card))).toBe(before);
    }
  });

  it('--list prints one line per deleted entry (status, size, mtime, path) and creates nothing; --json is NDJSON', async () => {
    const img = join(dir, 'list.img');
    buildFat(img, 12, 2048);
    const r = await runCli(['undelete', img, '--list']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines).toContainEqual(expect.stringMatching(/^recoverable +3000  2019-12-31 23:59:58 +\/Old photos\/a long name\.txt$/));
    expect(lines).toContainEqual(expect.stringMatching(/^overwritten +16384  2021-03-03 03:03:04 +\/papers\/victim file\.bin$/));
    expect(lines).toContainEqual(expect.stringMatching(/^recoverable +\d+  2021-06-15 12:34:56 +\/DCIM\/100CANON\/IMG_0001\.JPG  \(first letter guessed\)$/));
    expect(lines).toContainEqual(expect.stringMatching(/^dir +\d+  .* \/Old photos\/$/));
    expect(lines).toContainEqual(expect.stringMatching(/\/Long file name with spaces\.txt$/));
    expect(readdirSync(dir).filter((e) => e.startsWith('list') && e !== 'list.img')).toEqual([]);
    const j = await runCli(['undelete', img, '--list', '--json']);
    const objs = j.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(objs.at(-1).summary.list).toBe(true);
    const deep = objs.find((o) => o.path === 'Old photos/nested dir/deep file.bin');
    expect(deep).toMatchObject({ status: 'recoverable', size: 9000, parentDeleted: true, method: 'metadata', times: { modified: '2022-02-22T22:22:22' }, localTime: true });
  });

  it('refusals create nothing: a non-empty OUT, OUT on the source filesystem, no FAT filesystem, no -o', async () => {
    const img = join(dir, 'refuse.img');
    buildFat(img, 12, 2048);
    const full = join(dir, 'full');
    mkdirSync(full);
    writeFileSync(join(full, 'x'), 'x');
    let r = await runCli(['undelete', img, '-o', full]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`blocksmith: output directory '${full}' is not empty (it holds 'x'); recover into a new or empty directory (ENOTEMPTY)\n`);
    r = await runCli(['undelete', img, '-o', join(dir, 'same')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^blocksmith: refusing to write recovered files where they could overwrite the source: .*\(ESAMEDEV\)\n$/);
    expect(existsSync(join(dir, 'same'))).toBe(false);
    const plain = join(dir, 'plain.img');
    writeFileSync(plain, randomBytes(MiB, 9));
    r = await runCli(['undelete', plain, '-o', join(dir, 'none'), '--force']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`blocksmith: '${plain}': no FAT, exFAT or ext filesystem could be read (the whole source: not a FAT, exFAT or ext filesystem) (ERR_FS_UNSUPPORTED)\n`);
    expect(existsSync(join(dir, 'none'))).toBe(false);
    // Stopped before it started: the OUT it made is removed again.
    const ac = new AbortController();
    ac.abort();
    await expect(undelete(img, { outDir: join(dir, 'aborted'), force: true, signal: ac.signal })).rejects.toMatchObject({ name: 'AbortError' });
    expect(existsSync(join(dir, 'aborted'))).toBe(false);
    r = await runCli(['undelete', img]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('blocksmith: an output directory is required (-o OUTDIR), or --list to only list the deleted files\n');
  });
});

describe('help', () => {
  it('undelete --help has examples; carve --help points to undelete', async () => {
    const r = await runCli(['undelete', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: blocksmith undelete [options] <source>');
    expect(r.stdout).toContain('$ blocksmith undelete card.img --list');
    expect(r.stdout).toContain('$ blocksmith undelete /dev/sdb -o /mnt/usb/undeleted');
    expect((await runCli(['carve', '--help'])).stdout).toContain('$ blocksmith undelete sdcard.img -o undeleted');
  });
});

describe('blocksmith undelete on exFAT', () => {
  it('files deleted through exfat-fuse come back by long name, byte-equal, with the mtime the mount showed', async () => {
    const img = join(dir, 'exfat.img');
    spawnSyncOk('truncate', ['-s', String(16 * MiB), img]);
    spawnSyncOk('mkfs.exfat', ['-c', '4K', img]);
    const mnt = join(dir, 'mnt-exfat');
    mkdirSync(mnt);
    // As root exfat-fuse wants a block device: a loop device over the image.
    const loop = spawnSyncOk('losetup', ['-f', '--show', img]).trim();
    const files: { path: string; bytes: Buffer; mtimeMs: number }[] = [];
    try {
      spawnSyncOk('mount.exfat-fuse', [loop, mnt]);
      mkdirSync(join(mnt, 'Camera roll', 'Day one'), { recursive: true });
      const put = (path: string, bytes: Buffer, when: number) => {
        writeFileSync(join(mnt, path), bytes);
        utimesSync(join(mnt, path), when, when);
        files.push({ path, bytes, mtimeMs: statSync(join(mnt, path)).mtimeMs });
      };
      put('Camera roll/Day one/Sunset over the bay.jpg', makeJpeg(dir, 'ex1', 400, 300, 11), local(2023, 7, 1, 20, 15, 30));
      put('Camera roll/notes for later.txt', randomBytes(50_000, 12), local(2022, 5, 5, 5, 5, 6));
      put('keep me.txt', Buffer.from('live\n'), local(2022, 1, 1, 0, 0, 0));
      spawnSyncOk('rm', ['-r', join(mnt, 'Camera roll')]);
    } finally {
      spawnSync('umount', [mnt]);
      spawnSync('losetup', ['-d', loop]);
    }
    const before = sha256(readFileSync(img));
    const out = join(dir, 'out-exfat');
    const rep = await undelete(img, { outDir: out, force: true });
    expect(rep.volumes.map((v) => v.filesystem)).toEqual(['exfat']);
    for (const w of files.filter((f) => f.path.startsWith('Camera roll/'))) {
      const f = rep.files.find((x) => x.path === w.path);
      expect(f?.status, w.path).toBe('recovered');
      expect(f!.writtenAs).toBe(`recovered/${w.path}`);
      expect(sha256(readFileSync(join(out, f!.writtenAs!)))).toBe(sha256(w.bytes));
      expect(Math.round(statSync(join(out, f!.writtenAs!)).mtimeMs / 1000)).toBe(Math.round(w.mtimeMs / 1000));
    }
    expect(rep.files.find((x) => x.path.endsWith('.jpg'))!.jpeg).toBe('complete');
    expect(rep.files.some((x) => x.path === 'keep me.txt')).toBe(false);
    expect(sha256(readFileSync(img))).toBe(before);
  });
});
