// Helpers shared by the recovery suites (undelete.bench.js, ext-undelete.bench.js):
// hashing, walking a tool's output, timing a tool, and unique JPEG copies.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readSync } from 'node:fs';
import { join } from 'node:path';

export const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

/** Every regular file under dir (recursively), as full paths; [] when dir does not exist. */
export function filesUnder(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath ?? e.path, e.name));
}

/** The tools' own bookkeeping in their output directories (reports, logs, thumbnails): not recovered files. */
export function isToolBookkeeping(rel) {
  return rel === 'report.json' || rel === 'index.html' || rel.endsWith('report.xml') || rel.endsWith('audit.txt') || rel.endsWith('.log') || rel.startsWith('thumbnails');
}

/**
 * Runs argv to completion, stdout discarded, and times it from spawn to exit.
 * Returns the exit status, the last lines of stderr, and whether the timeout killed it.
 */
export function timeOf(argv, { env, cwd, timeoutMs } = {}) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(argv[0], argv.slice(1), {
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
    env: { ...process.env, ...env },
    cwd,
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
    maxBuffer: 256 * 1024 * 1024,
  });
  return {
    seconds: Number(process.hrtime.bigint() - t0) / 1e9,
    status: r.status,
    signal: r.signal,
    timedOut: r.error?.code === 'ETIMEDOUT',
    stderr: (r.stderr || '').trim().split('\n').slice(-3).join(' | '),
  };
}

/** Cold start for the next tool: dirty pages written, the page cache dropped (root). */
export function dropCaches() {
  execFileSync('sync', []);
  execFileSync('sh', ['-c', 'echo 3 > /proc/sys/vm/drop_caches']);
}

/**
 * A JPEG made unique by a COM segment holding `text`, put after its first APPn
 * segment so that the file still starts the way cameras write it (FF D8 FF
 * E0/E1: what header-matching carvers look for).
 */
export function jpegWithComment(src, text) {
  const body = Buffer.from(text);
  const com = Buffer.concat([Buffer.from([0xff, 0xfe, (body.length + 2) >> 8, (body.length + 2) & 0xff]), body]);
  const app = src[2] === 0xff && src[3] >= 0xe0 && src[3] <= 0xef ? 4 + src.readUInt16BE(4) : 2;
  return Buffer.concat([src.subarray(0, app), com, src.subarray(app)]);
}

/** sha256 of a file read in 8 MiB pieces (tools may write outputs of gigabytes). */
export function sha256File(path) {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(8 * 1024 * 1024);
  const fd = openSync(path, 'r');
  try {
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}
