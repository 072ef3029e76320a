// Shared by the vitest suites: temp dirs, files with a known layout, and a
// runner for the real built CLI.
import { spawn, spawnSync, type SpawnOptions } from 'node:child_process';
import { closeSync, fsyncSync, ftruncateSync, mkdtempSync, openSync, readdirSync, readlinkSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const TiB = 1024 * GiB;

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const cliPath = join(repoRoot, 'dist', 'cli', 'bin', 'blocksmith.js');

export function makeTempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `blocksmith-${prefix}-`));
}

export function removeDir(dir: string | undefined): void {
  if (dir) rmSync(dir, { recursive: true, force: true });
}

/** A piece of a test file: bytes written at `offset` (real writes, zero bytes included). */
export interface Piece {
  offset: number;
  bytes: Uint8Array;
}

/**
 * Creates `path` with logical size `size` (ftruncate, so everything not
 * written is a hole), writes every piece with pwrite and fsyncs, so that
 * st_blocks is final before a test reads it.
 */
export function writeLayout(path: string, size: number, pieces: Piece[]): void {
  const fd = openSync(path, 'w');
  try {
    for (const p of pieces) {
      let done = 0;
      while (done < p.bytes.length) done += writeSync(fd, p.bytes, done, p.bytes.length - done, p.offset + done);
    }
    // ftruncate after the writes: also sets the size when the last piece ends early.
    ftruncateSync(fd, size);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Bytes of a never-zero pattern (every byte non-zero), deterministic. */
export function pattern(length: number, seed = 1): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = ((i * 31 + seed * 17) % 255) + 1;
  return b;
}

/** `length` zero bytes with `value` at the given positions. */
export function zerosWith(length: number, positions: number[], value = 1): Buffer {
  const b = Buffer.alloc(length);
  for (const p of positions) b[p] = value;
  return b;
}

export function allocatedBytes(path: string): number {
  return statSync(path).blocks * 512;
}

export function spawnSyncOk(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the built CLI (`node dist/cli/bin/blocksmith.js ...args`) with pipes for
 * stdout/stderr (so not a TTY). `prefix` runs it through another program
 * (setpriv ...). Never rejects on a non-zero exit.
 */
export function runCli(
  args: string[],
  opts: { prefix?: string[]; onSpawn?: (pid: number) => void; timeoutMs?: number; env?: SpawnOptions['env'] } = {},
): Promise<CliResult> {
  const argv = [...(opts.prefix ?? []), process.execPath, cliPath, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], cwd: repoRoot, env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('spawn', () => opts.onSpawn?.(child.pid!));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** The lines of a CLI's stderr (without the final newline). */
export function lines(text: string): string[] {
  return text.replace(/\n$/, '').split('\n');
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Resolves once process `pid` has `path` open (polls /proc/PID/fd), or rejects after `timeoutMs`. */
export async function waitForOpen(pid: number, path: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      // not started yet, or already gone
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === path) return;
      } catch {
        // closed meanwhile
      }
    }
    if (Date.now() > deadline) throw new Error(`process ${pid} did not open ${path} within ${timeoutMs} ms`);
    await sleep(5);
  }
}
