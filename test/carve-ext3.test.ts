// carve on ext3: files longer than 12 blocks are mapped through an indirect
// block stored among their data, and a sparse file stores none of its
// all-zero blocks. The carver reads such files in the order the block list
// gives, puts the holes back, and returns them byte-exact (issue 17, item 5).
// The image is written by e2fsprogs (mke2fs -d, as the carving corpus's
// ext3 image is), which places a file's indirect block right after its 12th
// block as ext3's own driver did and as `foremost -d` expects; the ext4
// driver that mounts ext3 since Linux 4.3 puts it elsewhere (measured: a
// block near the group's start, the data split around it), where there is
// nothing among the data to step over.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { carve, type CarveReport } from '../src/index.js';
import { makeJpeg, randomBytes, sha256 } from './helpers/carve.js';
import { KiB, makeTempDir, removeDir, run } from './helpers/sparsify.js';

/** `photo` after an APP1 EXIF block: IFD0 names a Make string that lies after `pad` zero bytes of padding. */
function withPaddedExif(photo: Buffer, make: string, pad: number): Buffer {
  const head = 8 + 2 + 12 + 4;
  const filler = Buffer.from(randomBytes(1500, 7).map((b) => b || 1)); // no zero byte: only the padding is zeros
  const str = Buffer.from(make + '\0', 'latin1');
  const tiff = Buffer.concat([Buffer.alloc(head), filler.subarray(head), Buffer.alloc(pad), str, filler.subarray(0, 500)]);
  tiff.write('MM', 0, 'latin1');
  tiff.writeUInt16BE(42, 2);
  tiff.writeUInt32BE(8, 4);
  tiff.writeUInt16BE(1, 8);
  tiff.writeUInt16BE(0x010f, 10); // Make, ASCII
  tiff.writeUInt16BE(2, 12);
  tiff.writeUInt32BE(str.length, 14);
  tiff.writeUInt32BE(1500 + pad, 18);
  tiff.writeUInt32BE(0, 22); // no next IFD
  const payload = Buffer.concat([Buffer.from('Exif\0\0', 'binary'), tiff]);
  const seg = Buffer.from([0xff, 0xd8, 0xff, 0xe1, (payload.length + 2) >> 8, (payload.length + 2) & 0xff]);
  return Buffer.concat([seg, payload, photo.subarray(2)]);
}

describe('carve on ext3 (mke2fs -d, 1 KiB blocks): indirect blocks and holes', () => {
  let dir = '';
  let report: CarveReport;
  const files: Record<string, Buffer> = {};

  beforeAll(async () => {
    dir = makeTempDir('carve-ext3');
    files['sparse.jpg'] = withPaddedExif(makeJpeg(dir, 'a', 640, 480, 31), 'Blocksmith Cam', 5000);
    files['arith.jpg'] = makeJpeg(dir, 'b', 640, 480, 32, ['-arithmetic']);
    files['plain.jpg'] = makeJpeg(dir, 'c', 800, 600, 33);
    const src = join(dir, 'files');
    mkdirSync(src);
    for (const [name, bytes] of Object.entries(files)) writeFileSync(join(src, name), bytes);
    const img = join(dir, 'ext3.img');
    run('mke2fs', ['-q', '-t', 'ext3', '-b', '1024', '-d', src, img, '16M']);
    // The sparse file holds fewer blocks than its size: its padding's whole blocks were not stored.
    const stat = run('debugfs', ['-R', 'stat sparse.jpg', img]).stdout;
    expect(Number(/Blockcount: (\d+)/.exec(stat)![1]) * 512).toBeLessThan(files['sparse.jpg'].length);
    report = await carve(img, { outDir: join(dir, 'out'), force: true, scope: 'all' });
  }, 120_000);
  afterAll(() => removeDir(dir));

  it('returns every file byte-exact, each read over its indirect block, the sparse one with its holes put back', () => {
    const bySha = new Map(report.files.filter((f) => f.status === 'complete' || f.status === 'reassembled').map((f) => [f.sha256, f]));
    for (const [name, bytes] of Object.entries(files)) {
      const f = bySha.get(sha256(bytes));
      expect(f, name).toBeDefined();
      expect(f!.status, name).toBe('reassembled');
      expect(f!.length, name).toBe(bytes.length);
    }
    const sparse = bySha.get(sha256(files['sparse.jpg']))!;
    const holes = sparse.fragments!.filter((g) => g.zeros === true);
    expect(holes.reduce((n, g) => n + g.length, 0)).toBe(4 * KiB); // padding [1512, 6512): blocks 2 to 5
    expect(sparse.make).toBe('Blocksmith Cam');
    expect(report.partial).toBe(0);
  });
});
