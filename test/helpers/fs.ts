// Helpers for sparsify --fs tests: ext filesystems built with mke2fs -d from
// generated files (at an offset inside a partitioned image), files deleted
// with debugfs so their blocks keep non-zero junk, and the checks: e2fsck,
// per-file hashes through debugfs rdump, free blocks as dumpe2fs lists them.
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir, removeDir, run } from './sparsify.js';

/** e2fsprogs' syntax for a filesystem at a byte offset of an image file. */
export const at = (image: string, offset: number) => (offset ? `${image}?offset=${offset}` : image);

export interface FsSpec {
  offset: number;
  size: number; // bytes
  type: 'ext2' | 'ext3' | 'ext4';
  args?: string[]; // extra mke2fs arguments (-b, -O, -C)
  files?: number; // how many files to create (half are deleted)
  fileSize?: number; // bytes of the largest file
}

/** Makes the filesystem with files from a generated directory, then deletes every other file. */
export function makeFs(image: string, spec: FsSpec): void {
  const dir = makeTempDir('bs-fs-src-');
  try {
    const n = spec.files ?? 24;
    const max = spec.fileSize ?? 600_000;
    mkdirSync(join(dir, 'sub'));
    for (let i = 0; i < n; i++) {
      const len = Math.floor(((i + 1) * max) / n) + (i % 7) * 333;
      writeFileSync(join(dir, i % 3 === 0 ? 'sub' : '.', `f${i}`), randomBytes(len));
    }
    writeFileSync(join(dir, 'small.txt'), 'hello\n');
    const extended = [`offset=${spec.offset}`];
    run('mke2fs', ['-q', '-F', '-t', spec.type, ...(spec.args ?? []), '-E', extended.join(','), '-d', dir, image, `${spec.size / 1024}k`]);
    const cmds: string[] = [];
    for (let i = 0; i < n; i += 2) cmds.push(`rm ${i % 3 === 0 ? '/sub' : ''}/f${i}`);
    const cmdFile = join(dir, 'cmds');
    writeFileSync(cmdFile, cmds.join('\n') + '\n');
    run('debugfs', ['-w', '-f', cmdFile, at(image, spec.offset)]);
  } finally {
    removeDir(dir);
  }
}

/** e2fsck -fn: exit status and output. */
export function fsck(image: string, offset: number): { code: number | null; out: string } {
  const r = run('e2fsck', ['-fn', at(image, offset)], { allowFail: true });
  return { code: r.code, out: r.stdout + r.stderr };
}

/** sha256 of every regular file in the filesystem, by path (debugfs rdump). */
export function fileHashes(image: string, offset: number): Record<string, string> {
  const dir = makeTempDir('bs-fs-dump-');
  try {
    run('debugfs', ['-R', `rdump / ${dir}`, at(image, offset)]);
    const out: Record<string, string> = {};
    const walk = (d: string, rel: string) => {
      for (const name of readdirSync(d).sort()) {
        const p = join(d, name);
        const st = statSync(p);
        if (st.isDirectory()) walk(p, `${rel}${name}/`);
        else out[`${rel}${name}`] = createHash('sha256').update(readFileSync(p)).digest('hex');
      }
    };
    walk(dir, '/');
    return out;
  } finally {
    removeDir(dir);
  }
}

export interface FsFacts {
  blockSize: number;
  blockCount: number;
  freeBlocks: number;
  free: Array<[number, number]>; // absolute byte ranges [begin, end)
}

/** Block size, counts and the free block ranges (absolute bytes) as dumpe2fs reports them. */
export function dumpFacts(image: string, offset: number): FsFacts {
  const text = run('dumpe2fs', [at(image, offset)]).stdout;
  const num = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
  const blockSize = num(/^Block size:\s+(\d+)/m);
  // bigalloc: dumpe2fs prints a free range's last cluster by its first block.
  const clusterBlocks = /^Cluster size:\s+(\d+)/m.test(text) ? num(/^Cluster size:\s+(\d+)/m) / blockSize : 1;
  const facts: FsFacts = { blockSize, blockCount: num(/^Block count:\s+(\d+)/m), freeBlocks: 0, free: [] };
  for (const m of text.matchAll(/^\s+Free blocks: (.*)$/gm)) {
    for (const part of m[1]!.split(',').map((s) => s.trim()).filter(Boolean)) {
      const [a, b] = part.split('-').map(Number);
      const first = a!, last = Math.min((b ?? a!) + clusterBlocks - 1, facts.blockCount - 1);
      facts.free.push([offset + first * blockSize, offset + (last + 1) * blockSize]);
      facts.freeBlocks += last - first + 1;
    }
  }
  return facts;
}

/** Bytes in `ranges` (each shrunk inward to `align`) that are not zero. */
export function nonZeroBytesIn(image: string, ranges: Array<[number, number]>, align = 1): number {
  const fd = openSync(image, 'r');
  let bad = 0;
  const buf = Buffer.alloc(1 << 20);
  try {
    for (const [b0, e0] of ranges) {
      const b = Math.ceil(b0 / align) * align, e = Math.floor(e0 / align) * align;
      for (let pos = b; pos < e; pos += buf.length) {
        const n = readSync(fd, buf, 0, Math.min(buf.length, e - pos), pos);
        for (let i = 0; i < n; i++) if (buf[i] !== 0) bad++;
      }
    }
  } finally {
    closeSync(fd);
  }
  return bad;
}

/** Bytes in `ranges` that are not zero (junk), to prove the image really had junk before. */
export const junkBytes = (image: string, ranges: Array<[number, number]>) => nonZeroBytesIn(image, ranges, 1);

/** Writes bytes at an offset of an existing file. */
export function pokeBytes(image: string, offset: number, bytes: Buffer): void {
  const fd = openSync(image, 'r+');
  try {
    writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    closeSync(fd);
  }
}

/** Writes an sfdisk script to the image. */
export function partition(image: string, script: string): void {
  const r = run('sh', ['-c', `printf '%s' "$0" | sfdisk -q --no-reread --no-tell-kernel "$1"`, script, image]);
  void r;
}
