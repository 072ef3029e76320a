// Helpers for sparsify --fs tests: ext filesystems built with mke2fs -d from
// generated files (at an offset inside a partitioned image), files deleted
// with debugfs so their blocks keep non-zero junk, and the checks: e2fsck,
// per-file hashes through debugfs rdump, free blocks as dumpe2fs lists them.
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, lstatSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, readlinkSync, writeFileSync, writeSync } from 'node:fs';
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

/** sha256 of every regular file in the filesystem, by path (debugfs rdump); symlinks by their target. */
export function fileHashes(image: string, offset: number): Record<string, string> {
  const dir = makeTempDir('bs-fs-dump-');
  try {
    run('debugfs', ['-R', `rdump / ${dir}`, at(image, offset)]);
    const out: Record<string, string> = {};
    const walk = (d: string, rel: string) => {
      for (const name of readdirSync(d).sort()) {
        const p = join(d, name);
        const st = lstatSync(p);
        if (st.isDirectory()) walk(p, `${rel}${name}/`);
        else if (st.isSymbolicLink()) out[`${rel}${name}`] = `-> ${readlinkSync(p)}`;
        else if (st.isFile()) out[`${rel}${name}`] = createHash('sha256').update(readFileSync(p)).digest('hex');
        else out[`${rel}${name}`] = 'special'; // a fifo: never opened
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

/**
 * A filesystem holding every kind of inode the cross-check of `sparsify --fs` walks: a 3 MB file (/big: indirect
 * blocks on ext2/3, one extent on ext4), a file with an extended-attribute block (/mid), a file of 10 separate
 * pieces (/frag: an extent tree leaf block on ext4), a sparse file, fast and slow symlinks, a fifo, a directory
 * of 200 files, and (ext4) a file of uninitialized extents (/prealloc, debugfs fallocate).
 */
export function makeVariedFs(image: string, size: number, type: FsSpec['type'], args: string[] = []): void {
  const dir = makeTempDir('bs-fs-varied-');
  try {
    writeFileSync(join(dir, 'big'), randomBytes(3_000_000));
    writeFileSync(join(dir, 'mid'), randomBytes(70_000));
    const frag = openSync(join(dir, 'frag'), 'w');
    for (let k = 0; k < 10; k++) writeSync(frag, randomBytes(4096), 0, 4096, k * 20 * 4096);
    closeSync(frag);
    const sparse = openSync(join(dir, 'sparse'), 'w');
    writeSync(sparse, Buffer.from('end'), 0, 3, 30_000_000);
    closeSync(sparse);
    writeFileSync(join(dir, 'small'), 'hello\n');
    run('ln', ['-s', 'small', join(dir, 'fastlink')]);
    run('ln', ['-s', 'x'.repeat(100), join(dir, 'slowlink')]);
    run('mkfifo', [join(dir, 'fifo')]);
    mkdirSync(join(dir, 'many'));
    for (let i = 0; i < 200; i++) writeFileSync(join(dir, 'many', `f${i}`), `${i}\n`);
    const value = join(dir, '..', `xattr-${process.pid}-${Math.random().toString(36).slice(2)}`);
    writeFileSync(value, randomBytes(450).toString('base64').slice(0, 600));
    try {
      run('mke2fs', ['-q', '-F', '-t', type, ...args, '-d', dir, image, `${size / 1024}k`]);
      // 600 bytes do not fit in the inode: an extended-attribute block.
      run('debugfs', ['-w', '-R', `ea_set -f ${value} /mid user.big`, image]);
      if (type === 'ext4') {
        run('debugfs', ['-w', '-R', 'write /dev/null /prealloc', image]);
        run('debugfs', ['-w', '-R', 'fallocate /prealloc 0 99', image]);
      }
    } finally {
      removeDir(value);
    }
  } finally {
    removeDir(dir);
  }
}

/** debugfs `stat PATH` output. */
export const inodeStat = (image: string, path: string) => run('debugfs', ['-R', `stat ${path}`, image]).stdout;

/** The inode number of a path. */
export function inodeOf(image: string, path: string): number {
  return Number(/^Inode: (\d+)/m.exec(inodeStat(image, path))![1]);
}

/** The physical block of a file's logical block (debugfs bmap; "(uninit)" dropped). */
export function blockOf(image: string, path: string, logical: number): number {
  return Number(run('debugfs', ['-R', `bmap ${path} ${logical}`, image]).stdout.trim().split(/\s+/)[0]);
}

/**
 * Marks `count` blocks from `first` free in the block bitmap (debugfs freeb), and raises the group descriptor's and
 * the superblock's free counts to match (freeb leaves them), checksums recomputed: the bitmap and the counts agree,
 * only the inodes say the blocks are in use. (The blocks must lie in one group.)
 */
export function markFree(image: string, first: number, count = 1): void {
  run('debugfs', ['-w', '-R', `freeb ${first} ${count}`, image]);
  const head = run('dumpe2fs', ['-h', image]).stdout;
  const num = (re: RegExp) => Number(re.exec(head)![1]);
  const group = Math.floor((first - num(/^First block:\s+(\d+)/m)) / num(/^Blocks per group:\s+(\d+)/m));
  // -n: the descriptor's checksum is recomputed here, after its bitmap changed.
  const stats = run('debugfs', ['-n', '-R', 'show_super_stats', image]).stdout;
  const groupFree = Number(new RegExp(`Group\\s+${group}:[^\\n]*\\n\\s+(\\d+) free blocks`).exec(stats)![1]);
  run('debugfs', ['-w', '-n', '-R', `set_bg ${group} free_blocks_count ${groupFree + count}`, image]);
  run('debugfs', ['-w', '-n', '-R', `set_bg ${group} checksum calc`, image]);
  run('debugfs', ['-w', '-n', '-R', `ssv free_blocks_count ${num(/^Free blocks:\s+(\d+)/m) + count}`, image]);
}
