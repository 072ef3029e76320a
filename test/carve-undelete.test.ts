// carve --undelete on a FAT32 camera card (mkfs.fat + mtools): the deleted
// photos whose directory entries survive come back by name under
// OUT/recovered/<path> with their mtimes, a photo with no directory entry
// (written into free clusters by dd) is carved by offset, nothing comes back
// twice and no live photo is written (scope free). report.json, the NDJSON
// and the gallery list both kinds; a resumed run does not recover by name
// again unless the interrupted one stopped while doing it.
import { linkSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { carve, type CarveReport, type RecoveredByName } from '../src/index.js';
import { makeJpeg, outputs, sha256 } from './helpers/carve.js';
import { MiB, makeTempDir, removeDir, runCli, spawnSyncOk } from './helpers/foundation.js';

process.env.MTOOLS_SKIP_CHECK = '1';

let dir: string;
let card: string;
let n = 0;
/** The deleted photos with a surviving entry: path as copied, bytes, mtime (seconds; even: FAT keeps 2 s). */
const named: { path: string; bytes: Buffer; mtime: number }[] = [];
const live: Buffer[] = [];
let nameless: Buffer;
const nameless_at = 32 * MiB;

const local = (y: number, mo: number, d: number, h: number, mi: number, s: number) => new Date(y, mo - 1, d, h, mi, s).getTime() / 1000;

function put(path: string, bytes: Buffer, mtime: number): void {
  const f = join(dir, `in-${n++}`);
  writeFileSync(f, bytes);
  utimesSync(f, mtime, mtime);
  spawnSyncOk('mcopy', ['-m', '-i', card, f, `::/${path}`]);
}

const byName = (r: CarveReport) => r.files.filter((f): f is RecoveredByName => f.method === 'metadata');
const report = (out: string) => JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as CarveReport;
const galleryTiles = (out: string) => {
  const html = readFileSync(join(out, 'index.html'), 'utf8');
  const m = /<script id="gallery-data" type="application\/json">(.*?)<\/script>/s.exec(html);
  return (JSON.parse(m![1]!) as { files: { method?: string; name?: string; originalPath?: string; mtime?: string; status: string }[] }).files;
};

beforeAll(() => {
  dir = makeTempDir('carve-undelete-');
  card = join(dir, 'card.img');
  spawnSyncOk('mkfs.fat', ['-F', '32', '-s', '1', '-C', card, String(40 * 1024)]);
  spawnSyncOk('mmd', ['-i', card, '::/DCIM', '::/DCIM/100CANON']);
  const jpeg = (w: number, h: number) => makeJpeg(dir, `j${n++}`, w, h, 11 + n);
  named.push(
    { path: 'DCIM/100CANON/Summer holiday at the beach.jpg', bytes: jpeg(320, 240), mtime: local(2021, 7, 14, 9, 30, 12) },
    { path: 'DCIM/100CANON/IMG_20210615_123456.jpg', bytes: jpeg(256, 192), mtime: local(2021, 6, 15, 12, 34, 56) },
    { path: 'A photo at the root with a long name.jpeg', bytes: jpeg(200, 300), mtime: local(2020, 2, 29, 23, 59, 58) },
  );
  live.push(jpeg(240, 180), jpeg(160, 120));
  put('DCIM/100CANON/Live photo one.jpg', live[0]!, local(2022, 1, 1, 10, 0, 0));
  for (const w of named) put(w.path, w.bytes, w.mtime);
  put('DCIM/100CANON/Live photo two.jpg', live[1]!, local(2022, 1, 2, 10, 0, 0));
  spawnSyncOk('mdel', ['-i', card, ...named.map((w) => `::/${w.path}`)]);
  // A photo no directory entry names: written straight into free clusters.
  nameless = jpeg(288, 216);
  writeFileSync(join(dir, 'raw.jpg'), nameless);
  spawnSyncOk('dd', [`if=${join(dir, 'raw.jpg')}`, `of=${card}`, 'bs=512', `seek=${nameless_at / 512}`, 'conv=notrunc', 'status=none']);
});

afterAll(() => removeDir(dir));

describe('carve --undelete on a FAT32 card', () => {
  it('recovers the named deleted photos by name and mtime, carves the nameless one, writes nothing twice and no live photo', async () => {
    const out = join(dir, 'out');
    const before = sha256(readFileSync(card));
    const c = await runCli(['carve', card, '-o', out, '--undelete', '--force', '--json']);
    expect(c.stderr).toBe('');
    expect(c.code).toBe(0);
    expect(sha256(readFileSync(card))).toBe(before);

    for (const w of named) {
      const p = join(out, 'recovered', w.path);
      expect(sha256(readFileSync(p)), w.path).toBe(sha256(w.bytes));
      expect(Math.round(statSync(p).mtimeMs / 1000), `${w.path} mtime`).toBe(w.mtime);
    }
    const written = outputs(out);
    const shas = [...written.values()];
    // Every file once: the named ones by name only, the nameless one by offset.
    expect(new Set(shas).size).toBe(shas.length);
    expect([...written.keys()].sort()).toEqual([...named.map((w) => `recovered/${w.path}`), `f${String(nameless_at).padStart(14, '0')}.jpg`].sort());
    expect(written.get(`f${String(nameless_at).padStart(14, '0')}.jpg`)).toBe(sha256(nameless));
    for (const l of live) expect(shas).not.toContain(sha256(l));

    const r = report(out);
    expect(r.state).toBe('done');
    expect(r.scope?.used).toBe('free');
    expect(r.undelete?.finished).toBe(true);
    expect(r.undelete?.volumes.map((v) => v.filesystem)).toEqual(['fat32']);
    expect(r.undelete?.recovered).toBe(3);
    expect(r.undelete?.excludedBytes).toBe(named.reduce((a, w) => a + w.bytes.length, 0));
    const m = byName(r);
    expect(m.map((f) => [f.name, f.originalPath, f.status, f.jpeg, f.path]).sort()).toEqual(
      named.map((w) => [w.path.split('/').pop(), `/${w.path}`, 'recovered', 'complete', `recovered/${w.path}`]).sort(),
    );
    for (const f of m) expect(f.times.modified).toBeDefined();
    const carved = r.files.filter((f) => f.method !== 'metadata');
    expect(carved.map((f) => [f.method, f.status, f.offset])).toEqual([['carved', 'complete', nameless_at]]);
    expect(r.complete).toBe(1);
    expect(r.bytesWritten).toBe(nameless.length + named.reduce((a, w) => a + w.bytes.length, 0));

    // NDJSON: the files recovered by name first, then the carved one, then the summary.
    const lines = c.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.method ?? 'summary')).toEqual(['metadata', 'metadata', 'metadata', 'carved', 'summary']);
    expect((lines[4]!.summary as CarveReport).undelete?.recovered).toBe(3);

    // The gallery: three tiles by name (name, original path, mtime), one carved.
    const tiles = galleryTiles(out);
    expect(tiles.map((t) => t.method).sort()).toEqual(['carved', 'metadata', 'metadata', 'metadata']);
    for (const t of tiles.filter((t) => t.method === 'metadata')) {
      expect(t.status).toBe('recovered');
      expect(named.map((w) => `/${w.path}`)).toContain(t.originalPath);
      expect(t.name).toBe(t.originalPath!.split('/').pop());
      expect(t.mtime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
    }
    expect(readFileSync(join(out, 'index.html'), 'utf8')).toContain('4 files (3 recovered by name, 1 carved)');
  });

  it('without --undelete, carve is what it was: the deleted photos are carved by offset, nothing by name', async () => {
    const out = join(dir, 'plain');
    const c = await runCli(['carve', card, '-o', out, '--force', '-q']);
    expect(c.code).toBe(0);
    const r = report(out);
    expect(r.undelete).toBeUndefined();
    expect(r.options.undelete).toBeUndefined();
    expect(byName(r)).toEqual([]);
    expect(r.complete).toBe(named.length + 1);
    expect(new Set(outputs(out).values())).toEqual(new Set([...named.map((w) => sha256(w.bytes)), sha256(nameless)]));
  });

  it('a resumed run does not recover by name again once that part finished; one that stopped during it does it again', async () => {
    const out = join(dir, 'resumed');
    await carve(card, { outDir: out, undelete: true, force: true });
    const first = outputs(out);
    const mtimes = named.map((w) => statSync(join(out, 'recovered', w.path)).mtimeMs);
    const inode = statSync(join(out, 'recovered', named[0]!.path)).ino;

    // Finished: --resume has nothing to carve and keeps the recovery by name as it is (not redone, not listed twice).
    const again = await carve(card, { outDir: out, undelete: true, force: true, resume: join(out, 'report.json') });
    expect(byName(again).length).toBe(3);
    expect(again.files.length).toBe(4);
    expect(statSync(join(out, 'recovered', named[0]!.path)).ino).toBe(inode);
    expect(outputs(out)).toEqual(first);

    // Another undelete option than the interrupted run's is refused.
    await expect(carve(card, { outDir: out, force: true, resume: join(out, 'report.json') })).rejects.toThrow(/undelete: true then, false now/);

    // As if stopped while recovering by name: its files are removed and recovered again, the carve done from the start.
    // A second link keeps the first file's inode alive, so a new file cannot be given its number again.
    linkSync(join(out, 'recovered', named[0]!.path), join(dir, 'resumed-first-link'));
    const r = report(out);
    Object.assign(r, { state: 'stopped', finished: false, nextOffset: r.start, undelete: { ...r.undelete, finished: false }, files: byName(r) });
    writeFileSync(join(out, 'report.json'), JSON.stringify(r));
    const redone = await carve(card, { outDir: out, undelete: true, force: true, resume: join(out, 'report.json') });
    expect(redone.state).toBe('done');
    expect(redone.undelete?.finished).toBe(true);
    expect(byName(redone).map((f) => f.path).sort()).toEqual(named.map((w) => `recovered/${w.path}`).sort());
    expect(outputs(out)).toEqual(first);
    expect(statSync(join(out, 'recovered', named[0]!.path)).ino).not.toBe(inode);
    expect(named.map((w) => statSync(join(out, 'recovered', w.path)).mtimeMs)).toEqual(mtimes);

    // A file there its report does not list stops such a resume before anything changes.
    const r2 = report(out);
    Object.assign(r2, { state: 'stopped', finished: false, nextOffset: r2.start, undelete: { ...r2.undelete, finished: false } });
    writeFileSync(join(out, 'report.json'), JSON.stringify(r2));
    writeFileSync(join(out, 'recovered', 'planted.txt'), 'not ours\n');
    await expect(carve(card, { outDir: out, undelete: true, force: true, resume: join(out, 'report.json') })).rejects.toThrow(
      `holds 'recovered/planted.txt', which its report does not list; move it away to resume`,
    );
    expect(outputs(out).size).toBe(first.size + 1);
  });

  it('a source without FAT/exFAT: the carve goes on alone and says why once; an existing OUT/recovered is refused before anything is created', async () => {
    const raw = join(dir, 'raw.img');
    const img = Buffer.alloc(2 * MiB);
    nameless.copy(img, MiB);
    writeFileSync(raw, img);
    const c = await runCli(['carve', raw, '-o', join(dir, 'raw-out'), '--undelete', '--force', '-q']);
    expect(c.stderr).toBe('blocksmith: warning: --undelete: nothing recovered by name: no FAT, exFAT or ext filesystem could be read (the whole source: not a FAT, exFAT or ext filesystem)\n');
    expect(c.code).toBe(0);
    expect([...outputs(join(dir, 'raw-out')).values()]).toEqual([sha256(nameless)]);

    const taken = join(dir, 'taken');
    spawnSyncOk('mkdir', ['-p', join(taken, 'recovered')]);
    const t = await runCli(['carve', card, '-o', taken, '--undelete', '--force']);
    expect(t.code).toBe(1);
    expect(t.stderr).toContain(`'${taken}/recovered' already exists; carve --undelete writes the files it recovers by name there`);
    expect(spawnSyncOk('ls', ['-A', taken])).toBe('recovered\n');
  });
});
