// Helpers for the sparsify suites (test/sparsify*.test.ts): images with a
// known layout, streaming hashes, the real CLIs as child processes, loop
// devices, mounts and lock holders. Everything that attaches or mounts has a
// matching detach/unmount that never throws, for finally blocks.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const sparsifyCli = join(repoRoot, 'dist', 'cli', 'bin', 'sparsify.js');
export const blocksmithCli = join(repoRoot, 'dist', 'cli', 'bin', 'blocksmith.js');

// ---------------------------------------------------------------- temp dirs

/** A fresh directory under `base` (default /tmp, ext4 here), mode 0755 so other users can reach it. */
export function makeTempDir(prefix: string, base = '/tmp'): string {
  const dir = mkdtempSync(join(base, `blocksmith-sparsify-${prefix}-`));
  chmodSync(dir, 0o755);
  return dir;
}

export function removeDir(dir: string | undefined): void {
  if (!dir) return;
  // Immutable files (chattr +i) cannot be removed; clear the flag first.
  spawnSync('chattr', ['-R', '-i', dir], { stdio: 'ignore' });
  rmSync(dir, { recursive: true, force: true });
}

/** Every name in `dir`, dotfiles included, sorted. */
export function listDir(dir: string): string[] {
  return readdirSync(dir).sort();
}

// ---------------------------------------------------------------- content

/** sha256 of a file or block device, streamed; optionally only bytes [start, end). */
export async function sha256(path: string, range: { start?: number; end?: number } = {}): Promise<string> {
  const hash = createHash('sha256');
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(4 * MiB);
    let pos = range.start ?? 0;
    const end = range.end ?? Number.POSITIVE_INFINITY;
    while (pos < end) {
      const want = Math.min(buf.length, end - pos);
      const { bytesRead } = await fh.read(buf, 0, want, pos);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

/** Allocated bytes as the filesystem reports them (st_blocks * 512). */
export function allocated(path: string): number {
  return statSync(path).blocks * 512;
}

export function sizeOf(path: string): number {
  return statSync(path).size;
}

/**
 * Deterministic bytes in which no 512-byte block is all zero (xorshift32,
 * every byte forced non-zero), so a "data" piece is data at any block size.
 */
export function dataBytes(length: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = (x & 0xff) | 1;
  }
  return b;
}

/** A piece of an image: `bytes` written at `offset` (zero bytes too: they become allocated zero blocks). */
export interface Piece {
  offset: number;
  bytes: Uint8Array;
}

/** A zero-filled, allocated piece (really written, not fallocated). */
export function zeros(offset: number, length: number): Piece {
  return { offset, bytes: Buffer.alloc(length) };
}

export function data(offset: number, length: number, seed = offset % 9973): Piece {
  return { offset, bytes: dataBytes(length, seed + 1) };
}

/**
 * Writes `path` with logical size `size`: each piece with pwrite, everything
 * else a hole (ftruncate), then fsync so st_blocks is final.
 */
export function writeImage(path: string, size: number, pieces: Piece[]): void {
  const fd = openSync(path, 'w', 0o644);
  try {
    for (const p of pieces) {
      let done = 0;
      while (done < p.bytes.length) done += writeSync(fd, p.bytes, done, p.bytes.length - done, p.offset + done);
    }
    // Only when needed: some filesystems (fusefat) refuse ftruncate.
    if (fstatSync(fd).size !== size) ftruncateSync(fd, size);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** pwrites pieces into an existing file (no truncation), then fsync. */
export function writePieces(path: string, pieces: Piece[]): void {
  const fd = openSync(path, 'r+');
  try {
    for (const p of pieces) {
      let done = 0;
      while (done < p.bytes.length) done += writeSync(fd, p.bytes, done, p.bytes.length - done, p.offset + done);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * A big non-sparse image: `size` bytes of written zeros (dd from /dev/zero,
 * so every block is allocated) with one 4 KiB data block at each of
 * `count` pseudo-random 4 KiB-aligned offsets (seeded). Returns the offsets.
 */
export function makeZeroFilledImage(path: string, size: number, count: number, seed = 7): number[] {
  run('dd', ['if=/dev/zero', `of=${path}`, 'bs=1M', `count=${Math.ceil(size / MiB)}`, 'conv=notrunc', 'status=none']);
  const fd = openSync(path, 'r+');
  try {
    ftruncateSync(fd, size);
  } finally {
    closeSync(fd);
  }
  const offsets = dataOffsets(size, count, seed);
  writePieces(path, offsets.map((o, i) => ({ offset: o, bytes: dataBytes(4 * KiB, seed * 100_003 + i) })));
  return offsets;
}

/** `count` distinct sorted 4 KiB-aligned offsets below `size`, seeded. */
export function dataOffsets(size: number, count: number, seed: number): number[] {
  const blocks = Math.floor(size / (4 * KiB));
  const set = new Set<number>();
  let x = (seed * 2246822519) >>> 0 || 1;
  while (set.size < Math.min(count, blocks)) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    set.add(x % blocks);
  }
  return [...set].sort((a, b) => a - b).map((b) => b * 4 * KiB);
}

// ---------------------------------------------------------------- processes

/** The environment for system tools: without the ASan runtime `npm run test:asan` preloads for node (a FUSE daemon under it dies). */
export function toolEnv(): NodeJS.ProcessEnv {
  const { LD_PRELOAD: _preload, ...env } = process.env;
  return env;
}

export function run(cmd: string, args: string[], opts: { allowFail?: boolean } = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: toolEnv() });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0 && !opts.allowFail) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.trim()}`);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunningCli {
  child: ChildProcess;
  pid: number;
  /** Still running (no exit seen yet). */
  running(): boolean;
  done: Promise<CliRun>;
}

/**
 * Starts `node dist/cli/bin/sparsify.js ...args` (or another CLI script) with
 * pipes for stdio, so never a TTY. `prefix` runs it through another program
 * (prlimit, setpriv). Never rejects on a non-zero exit.
 */
export function startCli(args: string[], opts: { prefix?: string[]; cli?: string; timeoutMs?: number } = {}): RunningCli {
  const argv = [...(opts.prefix ?? []), process.execPath, opts.cli ?? sparsifyCli, ...args];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], cwd: repoRoot });
  let stdout = '';
  let stderr = '';
  let exited = false;
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.on('exit', () => (exited = true));
  const done = new Promise<CliRun>((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 90_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  if (child.pid === undefined) throw new Error(`could not start ${argv.join(' ')}`);
  return { child, pid: child.pid, running: () => !exited && child.exitCode === null && child.signalCode === null, done };
}

export function runCli(args: string[], opts: { prefix?: string[]; cli?: string; timeoutMs?: number } = {}): Promise<CliRun> {
  return startCli(args, opts).done;
}

/** Runs the CLI with --json and parses the report (expects exit 0). */
export async function runJson<T = Record<string, unknown>>(args: string[]): Promise<T> {
  const r = await runCli(['--json', ...args]);
  if (r.code !== 0) throw new Error(`sparsify ${args.join(' ')} exited ${r.code} (${r.signal}): ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** True when `text` is exactly one line ending in a newline. */
export function isOneLine(text: string): boolean {
  return text.endsWith('\n') && !text.slice(0, -1).includes('\n') && text.trim().length > 0;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `pred` every `intervalMs` until it is true; throws `what` after `timeoutMs`. */
export async function waitFor(pred: () => boolean, what: string, timeoutMs = 20_000, intervalMs = 5): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** Bytes a process has read with read/pread so far (/proc/PID/io rchar); 0 once it is gone. */
export function bytesRead(pid: number): number {
  try {
    const m = /rchar:\s*(\d+)/.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

// ---------------------------------------------------------------- locks

/** The /proc/locks lines of `kind` locks (OFDLCK, LEASE) on the inode of `path`. */
function locksOn(path: string, kind: string): string[] {
  const st = statSync(path, { bigint: true });
  const dev = st.dev;
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  const id = `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}:${st.ino}`;
  return readFileSync('/proc/locks', 'utf8')
    .split('\n')
    .filter((l) => l.includes(kind) && l.split(/\s+/).includes(id));
}

/** The /proc/locks lines of OFD locks (OFDLCK) on the inode of `path`. */
export function ofdLocksOn(path: string): string[] {
  return locksOn(path, 'OFDLCK');
}

/** The /proc/locks lines of kernel leases (F_SETLEASE) on the inode of `path`, e.g. "7: LEASE  ACTIVE    WRITE 1978 fe:00:12 0 EOF". */
export function leasesOn(path: string): string[] {
  return locksOn(path, 'LEASE').filter((l) => !l.includes('->'));
}

export interface Holder {
  pid: number;
  release(): Promise<void>;
}

/** A python3 process holding OFD locks (F_OFD_SETLK) on single bytes of `path` until released. */
export async function holdOfdLocks(path: string, bytes: number[], type: 'read' | 'write' = 'read'): Promise<Holder> {
  const script = `
import fcntl, os, struct, sys
path, typ = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDWR if typ == 'write' else os.O_RDONLY)
F_OFD_SETLK = 37
for b in sys.argv[3:]:
    lt = fcntl.F_WRLCK if typ == 'write' else fcntl.F_RDLCK
    # struct flock on x86_64/aarch64: short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid
    fcntl.fcntl(fd, F_OFD_SETLK, struct.pack('hhqqi4x', lt, os.SEEK_SET, int(b), 1, 0))
print('locked', flush=True)
sys.stdin.read()
`;
  const child = spawn('python3', ['-c', script, path, type, ...bytes.map(String)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  await waitFor(() => out.includes('locked') || child.exitCode !== null, 'the python3 lock holder');
  if (!out.includes('locked')) throw new Error(`lock holder failed: ${err}`);
  return {
    pid: child.pid!,
    release: async () => {
      child.stdin!.end();
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

/**
 * A real QEMU block-layer process holding `image` open: interactive
 * `qemu-io -f raw IMAGE` with its stdin kept open. Resolves once its OFD
 * locks show up in /proc/locks.
 */
export async function startQemuIo(image: string, extra: string[] = []): Promise<Holder> {
  const child = spawn('qemu-io', ['-f', 'raw', ...extra, image], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  child.stdout!.resume();
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  await waitFor(() => ofdLocksOn(image).length > 0 || child.exitCode !== null, 'qemu-io to take its image locks', 15_000);
  if (child.exitCode !== null) throw new Error(`qemu-io exited ${child.exitCode}: ${err}`);
  return {
    pid: child.pid!,
    release: async () => {
      child.stdin!.end('quit\n');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

// ---------------------------------------------------------------- loop devices and mounts

/** Attaches `file` to a free loop device; returns /dev/loopN. */
export function attachLoop(file: string, opts: { readOnly?: boolean } = {}): string {
  const args = ['-f', '--show', ...(opts.readOnly ? ['-r'] : []), file];
  let last = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const r = spawnSync('losetup', args, { encoding: 'utf8' });
    if (r.status === 0) return r.stdout.trim();
    last = r.stderr;
  }
  throw new Error(`losetup ${args.join(' ')}: ${last}`);
}

/** Detaches a loop device; never throws (for finally blocks). */
export function detachLoop(dev: string | undefined): void {
  if (!dev) return;
  for (let attempt = 0; attempt < 20; attempt++) {
    if (spawnSync('losetup', ['-d', dev]).status === 0) return;
    spawnSync('sleep', ['0.1']);
  }
}

export function mount(source: string, dir: string, opts: string[] = []): void {
  run('mount', [...opts, source, dir]);
}

/** Unmounts `dir` if mounted; never throws (for finally blocks). */
export function unmount(dir: string | undefined): void {
  if (!dir || !existsSync(dir)) return;
  for (let attempt = 0; attempt < 20; attempt++) {
    if (spawnSync('mountpoint', ['-q', dir]).status !== 0) return;
    if (spawnSync('umount', [dir]).status === 0) return;
    spawnSync('sleep', ['0.1']);
  }
}

/**
 * A vfat filesystem of `sizeMiB` in an image file, mounted at `mountDir`
 * through FUSE (fusefat; this kernel has no vfat driver). It supports
 * neither hole punching nor O_TMPFILE. Unmount with unmount(mountDir).
 */
export function mountVfat(imageFile: string, mountDir: string, sizeMiB: number): void {
  ensureTool('mkfs.vfat', 'dosfstools');
  ensureTool('fusefat', 'fusefat');
  run('truncate', ['-s', `${sizeMiB}M`, imageFile]);
  run('mkfs.vfat', [imageFile]);
  run('fusefat', ['-o', 'rw+', imageFile, mountDir]);
}

/** Installs a Debian package when `tool` is missing (we are root in the test VM). */
export function ensureTool(tool: string, pkg: string): void {
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0) return;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', pkg], { encoding: 'utf8', env });
  if (r.status !== 0) {
    spawnSync('apt-get', ['update', '-qq'], { env });
    r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', pkg], { encoding: 'utf8', env });
  }
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`${tool} (Debian package ${pkg}) is missing and could not be installed: ${r.stderr}`);
}

// ---------------------------------------------------------------- a live writer

export const randomWriterScript = join(repoRoot, 'test', 'helpers', 'random-writer.mjs');

export interface WriterResult {
  /** pwrites done. */
  writes: number;
  /** Per block written: the sequence number of its last write. */
  last: Map<number, number>;
}

export interface RunningWriter {
  pid: number;
  /** Its open() of the image returned. */
  opened(): boolean;
  /** Writes at least `min` blocks more than it has (if not yet), stops, and resolves to every write it made. */
  stop(): Promise<WriterResult>;
}

/**
 * Starts test/helpers/random-writer.mjs: a node process that opens `image`
 * read-write and pwrites 4 KiB blocks with known content at random blocks
 * below `blocks` until stopped (at least `min` writes).
 */
export function startWriter(image: string, blocks: number, seed: number, min = 0): RunningWriter {
  const child = spawn(process.execPath, [randomWriterScript, image, String(blocks), String(seed), String(min)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return {
    pid: child.pid!,
    opened: () => out.startsWith('opened\n'),
    stop: async () => {
      child.stdin!.end();
      const t = setTimeout(() => child.kill('SIGKILL'), 60_000);
      const code = await closed;
      clearTimeout(t);
      if (code !== 0) throw new Error(`random-writer exited ${code}: ${err}`);
      const r = JSON.parse(out.trim().split('\n').pop()!) as { writes: number; last: [number, number][] };
      return { writes: r.writes, last: new Map(r.last) };
    },
  };
}

/**
 * Compares `image` with what it must hold: every block the writer wrote holds
 * its last write; every other block holds the original content (zeros, or
 * makeZeroFilledImage's data block at `dataAt` with its seed). Returns the
 * counts of blocks that do not.
 */
export async function checkWrites(
  image: string,
  writer: WriterResult,
  original: { dataAt: number[]; seed: number },
): Promise<{ lostWrites: number; otherChanged: number }> {
  const { blockPattern } = (await import(randomWriterScript)) as { blockPattern(block: number, seq: number): Buffer };
  const dataBlock = new Map<number, number>();
  original.dataAt.forEach((off, i) => dataBlock.set(off / (4 * KiB), i));
  const zero = Buffer.alloc(4 * KiB);
  let lostWrites = 0;
  let otherChanged = 0;
  const fh = await open(image, 'r');
  try {
    const buf = Buffer.allocUnsafe(4 * MiB);
    for (let pos = 0; ; pos += buf.length) {
      const { bytesRead: n } = await fh.read(buf, 0, buf.length, pos);
      if (n === 0) break;
      for (let o = 0; o + 4 * KiB <= n; o += 4 * KiB) {
        const block = (pos + o) / (4 * KiB);
        const got = buf.subarray(o, o + 4 * KiB);
        const seq = writer.last.get(block);
        if (seq !== undefined) {
          if (!got.equals(blockPattern(block, seq))) lostWrites++;
          continue;
        }
        const i = dataBlock.get(block);
        const want = i === undefined ? zero : dataBytes(4 * KiB, original.seed * 100_003 + i);
        if (!got.equals(want)) otherChanged++;
      }
    }
  } finally {
    await fh.close();
  }
  return { lostWrites, otherChanged };
}
