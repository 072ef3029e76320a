// Helpers for the RBD suites (test/rbd*.test.ts): the run's shared Ceph
// cluster (started by test/ceph/global-setup.ts), a private cluster for
// tests that stop daemons, and checks through Ceph's own `rbd` tool.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, beforeEach, inject } from 'vitest';
import { repoRoot, sleep, toolEnv } from './sparsify.js';

export const clusterScript = join(repoRoot, 'test', 'ceph', 'cluster.sh');

function tail(path: string, lines = 15): string {
  try {
    return readFileSync(path, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/**
 * The ceph.conf of this run's cluster, once it is up (waits for the
 * background start). Throws with cluster.sh's reason when it did not start:
 * RBD tests then fail, they are never skipped.
 */
export async function cephConf(timeoutMs = 240_000): Promise<string> {
  const base = inject('cephBase');
  if (!base) throw new Error('no Ceph cluster: test/ceph/global-setup.ts is not registered in vitest.config.ts');
  const status = join(base, 'start.status');
  const t0 = Date.now();
  while (!existsSync(status)) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`the test Ceph cluster did not start within ${timeoutMs / 1000} s (log: ${base})`);
    await sleep(50);
  }
  const result = readFileSync(status, 'utf8');
  if (result !== '0') {
    throw new Error(`the test Ceph cluster could not start (cluster.sh ${result}):\n${tail(join(base, 'start.err'))}\n${tail(join(base, 'cluster', 'log', 'setup.log'))}`);
  }
  const lines = readFileSync(join(base, 'start.out'), 'utf8').trim().split('\n');
  return lines[lines.length - 1]!;
}

/**
 * For an RBD test file: waits for the run's cluster in beforeAll and sets
 * CEPH_CONF (for the CLI children and library calls of this fork). When the
 * cluster did not start, every test of the file fails with the reason (a
 * failing beforeAll would only mark them skipped).
 */
export function useCephCluster(): { conf: () => string } {
  let conf: string | undefined;
  let failure: Error | undefined;
  beforeAll(async () => {
    try {
      conf = await cephConf();
      process.env.CEPH_CONF = conf;
    } catch (err) {
      failure = err as Error;
    }
  });
  beforeEach(() => {
    if (failure) throw failure;
  });
  // '' when the cluster failed: the file's own hooks go on, its tests fail in beforeEach.
  return { conf: () => conf ?? '' };
}

/** A private cluster in its own directory, for tests that stop its daemons. */
export interface OwnCluster {
  dir: string;
  conf: string;
  osdPid(): number;
  /** Starts the OSD again after it was killed (same data, same id). */
  restartOsd(): void;
  monPid(): number;
  /** Starts the monitor again after it was killed (same store, same address). */
  restartMon(): void;
  stop(): void;
}

export async function startOwnCluster(): Promise<OwnCluster> {
  const base = mkdtempSync('/var/tmp/blocksmith-ceph-own-');
  const dir = join(base, 'cluster');
  const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn('bash', [clusterScript, 'start', dir], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...toolEnv(), OSD_BYTES: String(8 * 1024 ** 3) } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  const stop = () => {
    spawnSync('bash', [clusterScript, 'stop', dir], { stdio: 'ignore', env: toolEnv() });
    rmSync(base, { recursive: true, force: true });
  };
  if (r.code !== 0) {
    stop();
    throw new Error(`a private Ceph cluster could not start: ${r.stderr.trim()}`);
  }
  const conf = r.stdout.trim().split('\n').pop()!;
  return {
    dir,
    conf,
    osdPid: () => Number(readFileSync(join(dir, 'run', 'osd.0.pid'), 'utf8').trim()),
    restartOsd: () => {
      const s = spawnSync('ceph-osd', ['-c', conf, '-i', '0'], { encoding: 'utf8', env: toolEnv() });
      if (s.status !== 0) throw new Error(`ceph-osd restart: ${s.stderr}`);
    },
    monPid: () => Number(readFileSync(join(dir, 'run', 'mon.a.pid'), 'utf8').trim()),
    restartMon: () => {
      const s = spawnSync('ceph-mon', ['-c', conf, '-i', 'a'], { encoding: 'utf8', env: toolEnv() });
      if (s.status !== 0) throw new Error(`ceph-mon restart: ${s.stderr}`);
    },
    stop,
  };
}

/** Runs Ceph's `rbd` tool against `conf`; throws on failure. */
export function rbd(conf: string, args: string[], opts: { allowFail?: boolean; timeoutMs?: number } = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync('rbd', ['-c', conf, ...args], { encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 << 20, env: toolEnv() });
  if (r.error) throw new Error(`rbd ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0 && !opts.allowFail) throw new Error(`rbd ${args.join(' ')} exited ${r.status}: ${r.stderr.trim()}`);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs Ceph's `ceph` tool against `conf`; throws on failure. */
export function ceph(conf: string, args: string[], opts: { timeoutMs?: number } = {}): string {
  const r = spawnSync('ceph', ['-c', conf, ...args], { encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000, env: toolEnv() });
  if (r.error) throw new Error(`ceph ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`ceph ${args.join(' ')} exited ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** A fresh image name for this test (pool "rbd"). */
export function imageName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/** Images in pool "rbd". */
export function listImages(conf: string): string[] {
  return (JSON.parse(rbd(conf, ['ls', '--format', 'json', 'rbd']).stdout) as string[]).sort();
}

export function imageExists(conf: string, image: string): boolean {
  return listImages(conf).includes(image);
}

/** Removes an image if it exists; never throws (for finally blocks). */
export function removeImage(conf: string, image: string): void {
  spawnSync('rbd', ['-c', conf, 'rm', '--no-progress', `rbd/${image}`], { stdio: 'ignore', timeout: 60_000, env: toolEnv() });
}

/** sha256 and length of `rbd export IMAGE -` (Ceph's own reader, not ours). */
export async function rbdExportSha256(conf: string, image: string): Promise<{ sha256: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn('rbd', ['-c', conf, 'export', '--no-progress', `rbd/${image}`, '-'], { stdio: ['ignore', 'pipe', 'pipe'], env: toolEnv() });
    const hash = createHash('sha256');
    let bytes = 0;
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      hash.update(d);
      bytes += d.length;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve({ sha256: hash.digest('hex'), bytes }) : reject(new Error(`rbd export rbd/${image} exited ${code}: ${stderr}`))));
  });
}

/** Offsets of the image's existing objects (`rbd diff --whole-object`), sorted. */
export function rbdObjects(conf: string, image: string): number[] {
  const list = JSON.parse(rbd(conf, ['diff', '--whole-object', '--format', 'json', `rbd/${image}`]).stdout) as { offset: number; length: number; exists: string }[];
  return list.filter((e) => e.exists === 'true').map((e) => e.offset).sort((a, b) => a - b);
}

/** `rbd du` of one image: provisioned and used bytes (used counts whole objects). */
export function rbdDu(conf: string, image: string): { provisioned: number; used: number } {
  const j = JSON.parse(rbd(conf, ['du', '--format', 'json', `rbd/${image}`]).stdout) as { images: { name: string; provisioned_size: number; used_size: number }[] };
  const e = j.images.find((i) => i.name === image);
  if (!e) throw new Error(`rbd du: no image ${image}`);
  return { provisioned: e.provisioned_size, used: e.used_size };
}

/** `rbd info --format json`. */
export function rbdInfoJson(conf: string, image: string): { size: number; order: number; object_size: number; features: string[] } {
  return JSON.parse(rbd(conf, ['info', '--format', 'json', `rbd/${image}`]).stdout);
}

/** What a source holds, read independently of blocksmith (Buffer.equals against zeros). */
export interface SourceFacts {
  size: number;
  sha256: string;
  /** Bytes in 4 KiB blocks with a non-zero byte (the last block may be short). */
  dataBytes: number;
  /** Offsets of the objects (of `objectSize`) holding a non-zero byte. */
  objects: number[];
}

export async function sourceFacts(path: string, objectSize = 4 * 1024 * 1024): Promise<SourceFacts> {
  const { open } = await import('node:fs/promises');
  const fh = await open(path, 'r');
  try {
    const hash = createHash('sha256');
    const buf = Buffer.alloc(objectSize);
    const zero = Buffer.alloc(objectSize);
    let off = 0;
    let dataBytes = 0;
    const objects: number[] = [];
    for (;;) {
      let n = 0;
      while (n < objectSize) {
        const { bytesRead } = await fh.read(buf, n, objectSize - n, off + n);
        if (bytesRead === 0) break;
        n += bytesRead;
      }
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      if (!buf.subarray(0, n).equals(zero.subarray(0, n))) {
        objects.push(off);
        for (let b = 0; b < n; b += 4096) {
          const end = Math.min(b + 4096, n);
          if (!buf.subarray(b, end).equals(zero.subarray(b, end))) dataBytes += end - b;
        }
      }
      off += n;
      if (n < objectSize) break;
    }
    return { size: off, sha256: hash.digest('hex'), dataBytes, objects };
  } finally {
    await fh.close();
  }
}
