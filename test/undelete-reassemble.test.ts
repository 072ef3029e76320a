// blocksmith undelete: a deleted JPEG whose planned bytes do not decode goes
// to the carver's fragment search before it is reported partial. The case:
// FAT12 with 1 KiB clusters; A, F and D written, F deleted, then the photo J
// written: mtools fills F's hole and continues after D, so J is fragmented
// around D. D is deleted afterwards: its clusters are free, so the plan
// (from J's first cluster on, skipping clusters live files own) takes D's
// clusters and does not decode. The search must find J's real continuation
// after D, in free clusters.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { undelete } from '../src/index.js';
import { makeJpeg, randomBytes, sha256 } from './helpers/carve.js';
import { makeTempDir, removeDir, spawnSyncOk } from './helpers/foundation.js';

process.env.MTOOLS_SKIP_CHECK = '1';

let dir: string;
beforeAll(() => {
  dir = makeTempDir('undelete-reasm');
});
afterAll(() => removeDir(dir));

function put(img: string, name: string, bytes: Buffer): void {
  const f = join(dir, `in-${name}`);
  writeFileSync(f, bytes);
  spawnSyncOk('mcopy', ['-i', img, f, `::/${name}`]);
}

/** The clusters mtools gave `name`, as "<a-b> <c-d>" runs. */
const chain = (img: string, name: string) => spawnSyncOk('mshowfat', ['-i', img, `::/${name}`]).trim();

describe('undelete: a JPEG fragmented around a file deleted after it', () => {
  it('is reassembled from free clusters: byte-equal, status reassembled, its fragments in the report', async () => {
    const img = join(dir, 'card.img');
    spawnSyncOk('mkfs.fat', ['-F', '12', '-s', '2', '-C', img, '4096']);
    const photo = makeJpeg(dir, 'j', 320, 240, 11);
    expect(photo.length).toBeGreaterThan(30 * 1024); // more than F's hole (20 clusters): J must go on after D
    put(img, 'A.BIN', randomBytes(6000, 1));
    put(img, 'F.BIN', randomBytes(20000, 2));
    put(img, 'D.BIN', randomBytes(12000, 3));
    spawnSyncOk('mdel', ['-i', img, '::/F.BIN']);
    put(img, 'PHOTO.JPG', photo);
    // The layout the test is about: J in F's hole (clusters 8-27), D in 28-39, J again from 40.
    expect(chain(img, 'PHOTO.JPG')).toBe(`::/PHOTO.JPG <8-27> <40-${40 + Math.ceil((photo.length - 20 * 1024) / 1024) - 1}>`);
    expect(chain(img, 'D.BIN')).toBe('::/D.BIN <28-39>');
    spawnSyncOk('mdel', ['-i', img, '::/PHOTO.JPG', '::/D.BIN']);
    const before = sha256(readFileSync(img));

    const out = join(dir, 'out');
    const rep = await undelete(img, { outDir: out, force: true });
    const j = rep.files.find((f) => f.path === '_HOTO.JPG')!;
    expect(j.status).toBe('reassembled');
    expect(j.recoveredBy).toBe('reassembled');
    expect(j.method).toBe('metadata');
    expect(j.rule).toBe('skip-live-clusters');
    expect(j.jpeg).toBe('complete');
    expect(j.reason).toBeUndefined();
    // The plan ran on through D's clusters; the fragments skip them.
    const dataOffset = rep.volumes[0]!.dataOffset!;
    const cluster = (n: number) => dataOffset + (n - 2) * 1024;
    expect(j.extents).toEqual([{ offset: cluster(8), length: photo.length }]);
    expect(j.fragments).toEqual([
      { offset: cluster(8), length: 20 * 1024 },
      { offset: cluster(40), length: photo.length - 20 * 1024 },
    ]);
    expect(sha256(readFileSync(join(out, j.writtenAs!)))).toBe(sha256(photo));
    expect(j.sha256).toBe(sha256(photo));
    // D comes back whole too, from its own clusters.
    const d = rep.files.find((f) => f.path === '_.BIN')!;
    expect(d.status).toBe('recovered');
    expect(sha256(readFileSync(join(out, d.writtenAs!)))).toBe(sha256(randomBytes(12000, 3)));
    expect(rep.reassembled).toBe(1);
    expect(rep.partial).toBe(0);
    expect(rep.recovered).toBe(1);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(report.state).toBe('done');
    expect(report.files.find((f: { path: string }) => f.path === '_HOTO.JPG').fragments).toEqual(j.fragments);
    expect(sha256(readFileSync(img))).toBe(before);
  });

});
