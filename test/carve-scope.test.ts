// carve --scope: free (what no live file owns), allocated, all, and the
// default (auto). Real filesystems made by real tools: ext4 with mke2fs -d
// and debugfs rm, FAT32 with mkfs.fat + mcopy + mdel, a FAT16 partition of an
// MBR disk with a photo in the gap before it. Ground truth: the sha256 of
// every photo copied in, live or deleted.
import { existsSync, readFileSync, writeFileSync, mkdirSync, openSync, closeSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { carve, type CarveReport } from '../src/index.js';
import { makeJpeg, randomBytes, sha256 } from './helpers/carve.js';
import { KiB, MiB, makeTempDir, removeDir, runCli, spawnSyncOk, writeLayout } from './helpers/foundation.js';
import { partition } from './helpers/fs.js';

let dir: string;
/** Photo name -> bytes; the odd ones are deleted after being written. */
const photos: { name: string; bytes: Buffer; deleted: boolean }[] = [];
const deleted = () => photos.filter((p) => p.deleted).map((p) => sha256(p.bytes)).sort();
const live = () => photos.filter((p) => !p.deleted).map((p) => sha256(p.bytes)).sort();
/** The sha256 of every whole file a carve wrote (complete or reassembled), sorted. */
const whole = (r: CarveReport) => r.files.filter((f) => f.status === 'complete' || f.status === 'reassembled').map((f) => f.sha256).sort();

beforeAll(() => {
  dir = makeTempDir('carve-scope');
  mkdirSync(join(dir, 'photos'));
  for (let i = 0; i < 8; i++) {
    const name = `IMG_${2000 + i}.JPG`;
    const bytes = makeJpeg(dir, `p${i}`, 320 + 40 * i, 240, 700 + i);
    writeFileSync(join(dir, 'photos', name), bytes);
    photos.push({ name, bytes, deleted: i % 2 === 1 });
  }
}, 60_000);
afterAll(() => removeDir(dir));

describe('carve --scope on ext4 (mke2fs -d, debugfs rm)', () => {
  let img = '';
  beforeAll(() => {
    img = join(dir, 'ext4.img');
    spawnSyncOk('mke2fs', ['-q', '-t', 'ext4', '-b', '4096', '-d', join(dir, 'photos'), img, '32M']);
    for (const p of photos.filter((x) => x.deleted)) spawnSyncOk('debugfs', ['-w', '-R', `rm /${p.name}`, img]);
  });

  it('the default is free on a clean ext4: the deleted photos exactly, no live file, the allocated bytes unread', async () => {
    const r = await carve(img, { outDir: join(dir, 'ext-auto'), force: true });
    expect(whole(r)).toEqual(deleted());
    expect(r.partial).toBe(0);
    const s = r.scope!;
    expect(s.requested).toBe('auto');
    expect(s.used).toBe('free');
    expect(s.reason).toBeUndefined();
    expect(s.volumes.length).toBe(1);
    const v = s.volumes[0]!;
    expect(v).toMatchObject({ filesystem: 'ext4', offset: 0, length: 32 * MiB });
    expect(v.freeBytes! + v.allocatedBytes!).toBe(32 * MiB);
    // The live photos alone are more than 8 blocks; metadata more still.
    expect(v.allocatedBytes!).toBeGreaterThan(live().length * 4 * KiB);
    expect(s.bytesSkipped).toBe(v.allocatedBytes);
    expect(s.bytesInScope).toBe(v.freeBytes);
    expect(r.bytesScanned).toBeLessThanOrEqual(s.bytesInScope);
    // report.json says the same.
    const onDisk = JSON.parse(readFileSync(join(dir, 'ext-auto', 'report.json'), 'utf8')) as CarveReport;
    expect(onDisk.scope).toEqual(s);
    expect(onDisk.options.scope).toBe('auto');
  });

  it('scope all recovers every photo; free recovers every deleted one all does; allocated the live ones only', async () => {
    const all = await carve(img, { outDir: join(dir, 'ext-all'), force: true, scope: 'all' });
    expect(whole(all)).toEqual([...deleted(), ...live()].sort());
    expect(all.scope).toMatchObject({ requested: 'all', used: 'all', bytesInScope: 32 * MiB, bytesSkipped: 0, volumes: [] });

    const free = await carve(img, { outDir: join(dir, 'ext-free'), force: true, scope: 'free' });
    expect(whole(free)).toEqual(whole(all).filter((s) => deleted().includes(s)));
    expect(free.scope!.used).toBe('free');

    const alloc = await carve(img, { outDir: join(dir, 'ext-alloc'), force: true, scope: 'allocated' });
    expect(whole(alloc)).toEqual(live());
    expect(alloc.scope!.used).toBe('allocated');
    expect(alloc.scope!.bytesSkipped).toBe(free.scope!.bytesInScope);
    expect(alloc.scope!.bytesInScope).toBe(free.scope!.bytesSkipped);
  });

  it('--resume with another scope is refused before anything changes', async () => {
    const out = join(dir, 'ext-resume');
    await carve(img, { outDir: out, force: true, scope: 'free' });
    const before = readFileSync(join(out, 'report.json'));
    await expect(carve(img, { outDir: out, force: true, scope: 'all', resume: join(out, 'report.json') })).rejects.toThrow(
      /--resume: the interrupted run used other options \(scope: free then, all now\); give the same ones/,
    );
    expect(readFileSync(join(out, 'report.json')).equals(before)).toBe(true);
  });

  it('an ext4 that was not cleanly unmounted is scanned whole, and the CLI says why on one stderr line', async () => {
    const dirty = join(dir, 'dirty.img');
    writeFileSync(dirty, readFileSync(img));
    spawnSyncOk('debugfs', ['-w', '-R', 'ssv state 0', dirty]);
    const out = join(dir, 'ext-dirty');
    const c = await runCli(['carve', dirty, '-o', out, '--force', '--scope', 'free']);
    expect(c.code).toBe(0);
    const lines = c.stderr.trim().split('\n');
    expect(lines).toEqual([
      expect.stringMatching(
        /warning: --scope free: scanned all bytes instead: the ext4 filesystem in the filesystem at byte 0 cannot be trusted, so neither can its free map: .*not cleanly unmounted/,
      ),
    ]);
    expect(c.stdout).toMatch(/^ {2}scope: all bytes: 32\.0 MiB in scope \(the ext4 filesystem .* cannot be trusted/m);
    const r = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as CarveReport;
    expect(r.scope).toMatchObject({ requested: 'free', used: 'all', bytesSkipped: 0 });
    expect(r.scope!.volumes[0]).toMatchObject({ filesystem: 'ext4', problem: expect.stringMatching(/not cleanly unmounted/) });
    expect(whole(r)).toEqual([...deleted(), ...live()].sort());
  });
});

describe('carve --scope without a filesystem', () => {
  it('a raw blob: the default scans everything and says why; an explicit --scope free too, with one warning', async () => {
    const img = join(dir, 'raw.img');
    writeLayout(img, 4 * MiB, photos.slice(0, 3).map((p, i) => ({ offset: (i + 1) * MiB + 123, bytes: p.bytes })));
    const r = await carve(img, { outDir: join(dir, 'raw-auto'), force: true });
    expect(r.scope).toEqual({
      requested: 'auto',
      used: 'all',
      reason: 'no recognised filesystem (ext2/3/4, FAT12/16/32, exFAT) in the scanned range',
      bytesInScope: 4 * MiB,
      bytesSkipped: 0,
      volumes: [{ filesystem: null, offset: 0, length: 4 * MiB }],
    });
    expect(r.complete).toBe(3);

    const c = await runCli(['carve', img, '-o', join(dir, 'raw-free'), '--force', '--scope', 'free', '--json']);
    expect(c.code).toBe(0);
    expect(c.stderr).toMatch(/^[^\n]*warning: --scope free: scanned all bytes instead: no recognised filesystem \(ext2\/3\/4, FAT12\/16\/32, exFAT\) in the scanned range\n$/);
    const summary = JSON.parse(c.stdout.trim().split('\n').at(-1)!).summary as CarveReport;
    expect(summary.scope).toMatchObject({ requested: 'free', used: 'all', bytesInScope: 4 * MiB });
    expect(summary.complete).toBe(3);
  });

  it('an unknown scope is a usage error that creates nothing', async () => {
    const c = await runCli(['carve', join(dir, 'raw.img'), '-o', join(dir, 'raw-bad'), '--force', '--scope', 'deleted']);
    expect(c.code).toBe(2);
    expect(c.stderr).toMatch(/--scope.*deleted.*(free|choices)/);
    await expect(carve(join(dir, 'raw.img'), { outDir: join(dir, 'raw-bad'), scope: 'deleted' as 'free' })).rejects.toThrow(
      'scope must be one of auto, free, all, allocated, got deleted',
    );
    expect(existsSync(join(dir, 'raw-bad'))).toBe(false);
  });
});

describe('carve --scope on FAT (mkfs.fat, mcopy, mdel)', () => {
  const fatImage = (name: string, args: string[], kib: number) => {
    const img = join(dir, name);
    spawnSyncOk('mkfs.fat', [...args, '-C', img, String(kib)]);
    for (const p of photos) spawnSyncOk('mcopy', ['-i', img, join(dir, 'photos', p.name), `::/${p.name}`]);
    for (const p of photos.filter((x) => x.deleted)) spawnSyncOk('mdel', ['-i', img, `::/${p.name}`]);
    return img;
  };

  it('FAT32: free recovers the deleted photos and no live one, allocated the reverse, all both', async () => {
    const img = fatImage('fat32.img', ['-F', '32', '-s', '1'], 48 * 1024);
    const free = await carve(img, { outDir: join(dir, 'fat-free'), force: true });
    expect(free.scope).toMatchObject({ requested: 'auto', used: 'free', volumes: [{ filesystem: 'fat32', offset: 0 }] });
    expect(whole(free)).toEqual(deleted());
    const alloc = await carve(img, { outDir: join(dir, 'fat-alloc'), force: true, scope: 'allocated' });
    expect(whole(alloc)).toEqual(live());
    const all = await carve(img, { outDir: join(dir, 'fat-all'), force: true, scope: 'all' });
    expect(whole(all)).toEqual([...deleted(), ...live()].sort());
    // Free and allocated split the volume's clusters; the FATs and reserved sectors are allocated.
    const v = free.scope!.volumes[0]!;
    expect(free.scope!.bytesSkipped + free.scope!.bytesInScope).toBe(48 * MiB);
    expect(free.scope!.bytesSkipped).toBe(v.allocatedBytes);
    expect(alloc.scope!.bytesSkipped).toBe(v.freeBytes);
  });

  it('FAT32: a deleted photo the filesystem wrote into two holes around live files is reassembled in scope free', async () => {
    const img = join(dir, 'fat-frag.img');
    spawnSyncOk('mkfs.fat', ['-F', '32', '-s', '1', '-C', img, String(48 * 1024)]);
    const put = (name: string, bytes: Buffer) => {
      writeFileSync(join(dir, name), bytes);
      spawnSyncOk('mcopy', ['-i', img, join(dir, name), `::/${name}`]);
    };
    const smalls = [makeJpeg(dir, 'sa', 160, 120, 801), makeJpeg(dir, 'sc', 200, 150, 802), makeJpeg(dir, 'se', 180, 120, 803)];
    put('A.JPG', smalls[0]!);
    put('B.BIN', randomBytes(24 * KiB, 804));
    put('C.JPG', smalls[1]!);
    put('D.BIN', randomBytes(16 * KiB, 805));
    put('E.JPG', smalls[2]!);
    spawnSyncOk('mdel', ['-i', img, '::/B.BIN']);
    spawnSyncOk('mdel', ['-i', img, '::/D.BIN']);
    setNextFree(img, 2); // first-fit from the start: B's hole, D's hole, then after E
    const big = makeJpeg(dir, 'sbig', 640, 480, 806);
    put('BIG.JPG', big);
    spawnSyncOk('mdel', ['-i', img, '::/BIG.JPG']);

    const r = await carve(img, { outDir: join(dir, 'fat-frag-free'), force: true, scope: 'free' });
    expect(r.scope!.used).toBe('free');
    // The live photos between the holes are neither written nor taken as a fragment.
    expect(whole(r)).toEqual([sha256(big)]);
    const re = r.files.find((f) => f.status === 'reassembled')!;
    expect(re.fragments!.length).toBe(3);
    expect(r.partial).toBe(0);
  });

  it('FAT16 in an MBR partition: a photo in the gap before it is carved in every scope, the partition by its maps', async () => {
    const fat = fatImage('fat16-part.img', ['-F', '16'], 32 * 1024);
    const disk = join(dir, 'mbr.img');
    const gapPhoto = photos[0]!.bytes;
    writeLayout(disk, MiB + 32 * MiB, [{ offset: 512 * KiB, bytes: gapPhoto }]);
    partition(disk, 'label: dos\nstart=2048, type=e\n');
    spawnSyncOk('dd', [`if=${fat}`, `of=${disk}`, 'bs=1M', 'seek=1', 'conv=notrunc', 'status=none']);

    const free = await carve(disk, { outDir: join(dir, 'mbr-free'), force: true, scope: 'free' });
    expect(free.scope!.used).toBe('free');
    expect(free.scope!.volumes).toEqual([expect.objectContaining({ partition: 1, filesystem: 'fat16', offset: MiB, length: 32 * MiB })]);
    // The gap photo is photo 0 (a live one in the filesystem too): found once, at its gap offset.
    expect(whole(free)).toEqual([...deleted(), sha256(gapPhoto)].sort());
    expect(free.files.find((f) => f.sha256 === sha256(gapPhoto))!.offset).toBe(512 * KiB);

    const alloc = await carve(disk, { outDir: join(dir, 'mbr-alloc'), force: true, scope: 'allocated' });
    expect(whole(alloc)).toEqual([...live(), sha256(gapPhoto)].sort());
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
