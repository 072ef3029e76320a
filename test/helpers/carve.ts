// Builds JPEGs and disk images for the carve suites: JPEGs come from cjpeg
// (libjpeg-turbo-progs) over a deterministic noisy picture; EXIF thumbnails
// are spliced into an APP1 segment by hand.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** A deterministic PRNG (xorshift32) for test bytes. */
export function randomBytes(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

/** A w x h PPM with a noisy gradient (so the JPEG has real entropy-coded data). */
export function ppm(w: number, h: number, seed: number): Buffer {
  const noise = randomBytes(w * h * 3, seed);
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      px[i] = (x * 2 + (noise[i]! % 50)) & 0xff;
      px[i + 1] = (y * 3 + (noise[i + 1]! % 50)) & 0xff;
      px[i + 2] = (x + y + (noise[i + 2]! % 50)) & 0xff;
    }
  return Buffer.concat([Buffer.from(`P6\n${w} ${h}\n255\n`), px]);
}

/** cjpeg over a generated picture; `args` e.g. ['-progressive'], ['-restart', '1']. */
export function makeJpeg(dir: string, name: string, w: number, h: number, seed: number, args: string[] = []): Buffer {
  const src = join(dir, `${name}.ppm`);
  writeFileSync(src, ppm(w, h, seed));
  const r = spawnSync('cjpeg', ['-quality', '85', ...args, src], { maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`cjpeg ${args.join(' ')} failed: ${r.stderr?.toString()}`);
  return r.stdout;
}

/** `outer` with an APP1 "Exif\0\0" segment holding `thumb` right after its SOI. */
export function withThumbnail(outer: Buffer, thumb: Buffer): Buffer {
  const payload = Buffer.concat([Buffer.from('Exif\0\0', 'binary'), thumb]);
  const head = Buffer.from([0xff, 0xd8, 0xff, 0xe1, (payload.length + 2) >> 8, (payload.length + 2) & 0xff]);
  return Buffer.concat([head, payload, outer.subarray(2)]);
}

/** A real APP1 EXIF with Make/Model/DateTimeOriginal (big-endian TIFF). */
export function withExif(outer: Buffer, make: string, model: string, date: string): Buffer {
  const str = (s: string) => Buffer.from(s + '\0', 'latin1');
  const mk = str(make), md = str(model), dt = str(date);
  // TIFF: header(8) IFD0 at 8: 3 entries (Make, Model, ExifIFD) + next(4); then Exif IFD: 1 entry; then strings
  const ifd0 = 8, ifd0Len = 2 + 3 * 12 + 4, exifIfd = ifd0 + ifd0Len, exifLen = 2 + 12 + 4;
  let data = exifIfd + exifLen;
  const t = Buffer.alloc(data + mk.length + md.length + dt.length);
  t.write('MM', 0, 'latin1');
  t.writeUInt16BE(42, 2);
  t.writeUInt32BE(ifd0, 4);
  t.writeUInt16BE(3, ifd0);
  const entry = (at: number, tag: number, type: number, count: number, value: number) => {
    t.writeUInt16BE(tag, at);
    t.writeUInt16BE(type, at + 2);
    t.writeUInt32BE(count, at + 4);
    t.writeUInt32BE(value, at + 8);
  };
  entry(ifd0 + 2, 0x010f, 2, mk.length, data);
  mk.copy(t, data);
  data += mk.length;
  entry(ifd0 + 14, 0x0110, 2, md.length, data);
  md.copy(t, data);
  data += md.length;
  entry(ifd0 + 26, 0x8769, 4, 1, exifIfd);
  t.writeUInt16BE(1, exifIfd);
  entry(exifIfd + 2, 0x9003, 2, dt.length, data);
  dt.copy(t, data);
  const payload = Buffer.concat([Buffer.from('Exif\0\0', 'binary'), t]);
  const head = Buffer.from([0xff, 0xd8, 0xff, 0xe1, (payload.length + 2) >> 8, (payload.length + 2) & 0xff]);
  return Buffer.concat([head, payload, outer.subarray(2)]);
}

/** Every regular file under dir (relative path -> sha256), skipping report.json and the gallery's index.html. */
export function outputs(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && e.name !== 'report.json' && e.name !== 'index.html') out.set(relative(dir, p), sha256(readFileSync(p)));
    }
  };
  walk(dir);
  return out;
}

export function fileState(path: string): { sha: string; mtimeMs: number; size: number } {
  const st = statSync(path);
  return { sha: sha256(readFileSync(path)), mtimeMs: st.mtimeMs, size: st.size };
}

export const fname = (offset: number) => `f${String(offset).padStart(14, '0')}.jpg`;
