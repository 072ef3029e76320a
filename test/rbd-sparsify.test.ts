// In-place sparsify of an RBD image (`sparsify rbd:POOL/IMG`): the objects
// that hold only zeros are freed, content never changes. The images hold
// written zeros (`rbd import --sparse-size 0` stores every object, as a live
// blockcopy's mirror does); Ceph's own tools check the outcome: `rbd export`
// byte for byte, `rbd diff --whole-object` for the objects left, `rbd du`
// against Ceph's sparse import of the same file.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AbortError, sparsifyRbd, type RbdSparsifyReport } from '../src/index.js';
import { formatBytes } from '../src/api/units.js';
import { imageName, rbd, rbdDu, rbdExportSha256, rbdObjects, removeImage, useCephCluster } from './helpers/ceph.js';
import { KiB, MiB, blocksmithCli, data, isOneLine, makeTempDir, removeDir, run, runCli, toolEnv, waitFor, writeImage } from './helpers/sparsify.js';

let conf: string;
let dir: string;
let src: string;
let big: string;
const made: string[] = [];

const cluster = useCephCluster(); // sets CEPH_CONF for the CLI children and library calls

// 40 MiB, ten 4 MiB objects: object 0 holds 1 MiB of data then zeros, object
// 3 one 4 KiB block at 14 MiB, object 8 is all data; the other seven are
// zeros. A sparse import keeps objects 0, 3 and 8.
const SIZE = 40 * MiB;
const DATA = [data(0, 1 * MiB), data(14 * MiB, 4 * KiB), data(32 * MiB, 4 * MiB)];
const DATA_BYTES = 1 * MiB + 4 * KiB + 4 * MiB;
const KEPT_OBJECTS = [0, 12 * MiB, 32 * MiB];

beforeAll(async () => {
  conf = cluster.conf();
  dir = makeTempDir('rbd-sparsify', '/var/tmp');
  src = join(dir, 'disk.raw');
  writeImage(src, SIZE, DATA);
  big = join(dir, 'big.raw');
  writeImage(big, 128 * MiB, [data(0, 4 * KiB), data(127 * MiB, 4 * KiB)]);
});
afterAll(() => {
  for (const img of made) removeImage(conf, img);
  removeDir(dir);
});

/** An image holding every byte of `file` as written data, zeros included (all objects exist). */
function zeroFilledImage(prefix: string, file = src): string {
  const name = imageName(prefix);
  made.push(name);
  rbd(conf, ['import', '--no-progress', '--sparse-size', '0', file, `rbd/${name}`]);
  return name;
}

let reference: { used: number; objects: number[] } | undefined;
/** What Ceph's own sparse import of the same file uses. */
function sparseImport(): { used: number; objects: number[] } {
  if (!reference) {
    const name = imageName('sparsify-ref');
    made.push(name);
    rbd(conf, ['import', '--no-progress', src, `rbd/${name}`]);
    reference = { used: rbdDu(conf, name).used, objects: rbdObjects(conf, name) };
  }
  return reference;
}

const sparsifyCli = (args: string[]) => runCli(args, { timeoutMs: 120_000 });
const bs = (args: string[]) => runCli(args, { cli: blocksmithCli, timeoutMs: 120_000 });

/**
 * `rbd watch POOL/IMG`: another client holding the image open until stopped.
 * stop() presses enter, as its prompt asks, so it unwatches at once (a
 * killed client's watch lingers for osd_client_watch_timeout, 30 s).
 */
async function watch(image: string): Promise<{ stop: () => Promise<void> }> {
  const before = watchers(image);
  const child: ChildProcess = spawn('rbd', ['-c', conf, 'watch', `rbd/${image}`], { stdio: ['pipe', 'ignore', 'ignore'], env: toolEnv() });
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  await waitFor(() => watchers(image) === before + 1, `a watcher on ${image}`, 30_000, 100);
  return {
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.stdin!.end('\n');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * A QEMU process with the image as a drive (no guest: -machine none, paused),
 * driven through its human monitor: `qemu-io d0 "write ..."` writes as the
 * VM would, through QEMU's librbd, which then owns the exclusive lock.
 */
async function startQemu(image: string): Promise<{ hmp: (cmd: string) => Promise<string>; quit: () => Promise<void> }> {
  const sock = join(dir, `qemu-${image}.sock`);
  const child = spawn(
    'qemu-system-x86_64',
    ['-machine', 'none', '-display', 'none', '-S', '-monitor', `unix:${sock},server,nowait`, '-drive', `file=rbd:rbd/${image}:conf=${conf},format=raw,if=none,id=d0,cache=none`],
    { stdio: 'ignore', env: toolEnv() },
  );
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  await waitFor(() => watchers(image) === 1, `QEMU opening ${image}`, 30_000, 100);
  const conn = connect(sock);
  let text = '';
  conn.setEncoding('utf8').on('data', (d: string) => (text += d));
  await waitFor(() => text.includes('(qemu)'), 'the QEMU monitor prompt', 10_000, 20);
  const hmp = async (cmd: string): Promise<string> => {
    text = '';
    conn.write(`${cmd}\n`);
    await waitFor(() => text.includes('\r\n(qemu)'), `QEMU answering ${cmd}`, 30_000, 20);
    return text;
  };
  return {
    hmp,
    quit: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      conn.write('quit\n');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
      conn.destroy();
    },
  };
}

function sha256Of(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

function watchers(image: string): number {
  return (JSON.parse(rbd(conf, ['status', '--format', 'json', `rbd/${image}`]).stdout) as { watchers: unknown[] }).watchers.length;
}

describe('sparsify rbd:POOL/IMG in place, nobody else has it open', () => {
  it('discards the zero objects under the exclusive lock: same bytes, the objects of a sparse import', async () => {
    const image = zeroFilledImage('sparsify-discard');
    const before = await rbdExportSha256(conf, image);
    expect(rbdDu(conf, image).used).toBe(SIZE);

    const r = await sparsifyCli(['--json', `rbd:rbd/${image}`]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.stdout) as RbdSparsifyReport;
    expect(rep).toMatchObject({
      image: `rbd:rbd/${image}`,
      size: SIZE,
      objectSize: 4 * MiB,
      usedBefore: SIZE,
      usedAfter: 12 * MiB,
      method: 'discard',
      watchers: [],
      warnings: [],
      dryRun: false,
      dataBytes: DATA_BYTES,
      zeroBytes: SIZE - DATA_BYTES,
      holeBytes: 0,
      // [1M,4M) [4M,12M) [12M,14M) | [14M+4K,16M) [16M,32M) | [36M,40M)
      discards: 6,
      discardedBytes: SIZE - DATA_BYTES,
    });

    expect(await rbdExportSha256(conf, image)).toEqual(before);
    expect(rbdObjects(conf, image)).toEqual(KEPT_OBJECTS);
    expect(rbdObjects(conf, image)).toEqual(sparseImport().objects);
    expect(rbdDu(conf, image).used).toBe(sparseImport().used);
    expect(watchers(image)).toBe(0); // lock released, image closed
  });

  it('blocksmith sparsify prints used before -> after, the method and the time', async () => {
    const image = zeroFilledImage('sparsify-text');
    const r = await bs(['sparsify', `rbd:rbd/${image}`]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const lines = r.stdout.trimEnd().split('\n');
    const f = formatBytes;
    expect(lines[0]).toBe(`rbd:rbd/${image} (${f(SIZE)}, objects of ${f(4 * MiB)})`);
    expect(lines[1]).toBe(`  used: ${f(SIZE)} -> ${f(12 * MiB)} (reclaimed ${f(28 * MiB)})`);
    expect(lines[2]).toBe(`  method: discard (read here, zero runs discarded under the exclusive lock): 6 discards over ${f(SIZE - DATA_BYTES)}`);
    expect(lines[3]).toBe(`  data: ${f(DATA_BYTES)}; zero blocks: ${f(SIZE - DATA_BYTES)}; already holes: 0 B`);
    expect(lines[4]).toMatch(/^ {2}time: \d+\.\d\d s$/);
    expect(lines).toHaveLength(5);
    expect(rbdDu(conf, image).used).toBe(12 * MiB);
  });

  it('--dry-run reads and counts, changes nothing', async () => {
    const image = zeroFilledImage('sparsify-dry');
    const before = await rbdExportSha256(conf, image);
    const r = await sparsifyCli(['--dry-run', '--json', `rbd:rbd/${image}`]);
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.stdout) as RbdSparsifyReport;
    expect(rep).toMatchObject({ dryRun: true, method: 'discard', usedBefore: SIZE, usedAfter: 12 * MiB, discards: 6, discardedBytes: SIZE - DATA_BYTES, dataBytes: DATA_BYTES });
    expect(rbdDu(conf, image).used).toBe(SIZE);
    expect(rbdObjects(conf, image)).toHaveLength(10);
    expect(await rbdExportSha256(conf, image)).toEqual(before);
  });

  it('an abort partway leaves the content unchanged (only what was read as zeros was discarded)', async () => {
    const image = zeroFilledImage('sparsify-abort', big);
    const before = await rbdExportSha256(conf, image);
    const ac = new AbortController();
    let progressed = 0;
    const p = sparsifyRbd({ pool: 'rbd', image }, {
      parallel: 1,
      signal: ac.signal,
      onProgress: (pr) => {
        if (pr.bytesDone > 0 && progressed++ === 0) ac.abort();
      },
    });
    await expect(p).rejects.toBeInstanceOf(AbortError);
    const used = rbdDu(conf, image).used;
    expect(used).toBeLessThanOrEqual(128 * MiB);
    expect(used).toBeGreaterThan(8 * MiB); // stopped partway, not finished
    expect(await rbdExportSha256(conf, image)).toEqual(before);
    expect(watchers(image)).toBe(0);
    // A second run finishes the job.
    const rep = await sparsifyRbd(`rbd:rbd/${image}`);
    expect(rep.usedAfter).toBe(8 * MiB);
    expect(await rbdExportSha256(conf, image)).toEqual(before);
  });

  it('a clone: zeros written over its parent\'s data stay zeros (no parent byte shows through), nothing else is touched', async () => {
    const parent = imageName('sparsify-parent');
    const clone = imageName('sparsify-clone');
    rbd(conf, ['import', '--no-progress', src, `rbd/${parent}`]);
    try {
      rbd(conf, ['snap', 'create', `rbd/${parent}@base`]);
      rbd(conf, ['snap', 'protect', `rbd/${parent}@base`]);
      rbd(conf, ['clone', `rbd/${parent}@base`, `rbd/${clone}`]);
      // The clone overwrites the parent's data with zeros: object 8 whole, the 1 MiB of object 0.
      run('qemu-io', ['-f', 'raw', '-c', 'write -P 0 32M 4M', '-c', 'write -P 0 0 1M', `rbd:rbd/${clone}:conf=${conf}`]);
      const before = await rbdExportSha256(conf, clone);
      expect(before).not.toEqual(await rbdExportSha256(conf, parent)); // a parent byte showing through would show
      const objects = rbdObjects(conf, clone);
      const rep = await sparsifyRbd({ pool: 'rbd', image: clone });
      expect(rep.method).toBe('discard');
      // Both objects now hold only zeros: each discarded whole (librbd keeps them, truncated, over the parent).
      expect(rep).toMatchObject({ discards: 2, discardedBytes: 8 * MiB });
      expect(await rbdExportSha256(conf, clone)).toEqual(before);
      expect(rbdObjects(conf, clone)).toEqual(objects);
      expect(rbdObjects(conf, parent)).toEqual(KEPT_OBJECTS);
    } finally {
      removeImage(conf, clone);
      rbd(conf, ['snap', 'unprotect', `rbd/${parent}@base`], { allowFail: true });
      rbd(conf, ['snap', 'purge', '--no-progress', `rbd/${parent}`], { allowFail: true });
      removeImage(conf, parent);
    }
  });
});

describe('sparsify rbd:POOL/IMG while other clients have it open', () => {
  it('refuses with EBUSY, one line naming the image and the watcher, and changes nothing', async () => {
    const image = zeroFilledImage('sparsify-busy');
    const w = await watch(image);
    try {
      const status = JSON.parse(rbd(conf, ['status', '--format', 'json', `rbd/${image}`]).stdout) as { watchers: { address: string; client: number }[] };
      const addr = status.watchers[0]!.address;
      const r = await sparsifyCli([`rbd:rbd/${image}`]);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(isOneLine(r.stderr)).toBe(true);
      expect(r.stderr).toContain(`rbd:rbd/${image} is open by 1 other client (${addr} (client.${status.watchers[0]!.client})): stop it first, or use --force`);
      expect(r.stderr).toContain('EBUSY');
      expect(rbdDu(conf, image).used).toBe(SIZE);
    } finally {
      await w.stop();
    }
  });

  it('--force runs Ceph\'s own sparsify (atomic per object): says so, same bytes, zero objects freed', async () => {
    const image = zeroFilledImage('sparsify-force');
    const before = await rbdExportSha256(conf, image);
    const w = await watch(image);
    try {
      const dry = await sparsifyCli(['--force', '--dry-run', '--json', `rbd:rbd/${image}`]);
      expect(dry.code).toBe(0);
      expect(JSON.parse(dry.stdout)).toMatchObject({ method: 'ceph-sparsify', dryRun: true, usedBefore: SIZE, usedAfter: 12 * MiB, dataBytes: DATA_BYTES, discards: 6 });
      expect(dry.stderr).toContain('sparsify: warning: dry run: the figures are what a discard run would free');
      expect(rbdDu(conf, image).used).toBe(SIZE);

      const r = await sparsifyCli(['--force', '--json', `rbd:rbd/${image}`]);
      expect(r.code).toBe(0);
      const rep = JSON.parse(r.stdout) as RbdSparsifyReport;
      expect(rep).toMatchObject({ method: 'ceph-sparsify', usedBefore: SIZE, usedAfter: 12 * MiB, dryRun: false });
      expect(rep.watchers).toHaveLength(1);
      const warnings = r.stderr.trimEnd().split('\n');
      expect(warnings[0]).toBe(`sparsify: warning: --force: rbd:rbd/${image} is sparsified even if other clients have it open (then by Ceph's own sparsify, atomic per object)`);
      expect(warnings[1]).toContain(`sparsify: warning: rbd:rbd/${image} is open by ${rep.watchers[0]}: reclaimed by Ceph's own sparsify`);
      expect(warnings).toHaveLength(2);
      expect(await rbdExportSha256(conf, image)).toEqual(before);
      expect(rbdObjects(conf, image)).toEqual(KEPT_OBJECTS);
    } finally {
      await w.stop();
    }
  });

  it('a running VM that owns the exclusive lock: Ceph\'s sparsify through it, its writes before and after kept', async () => {
    const image = zeroFilledImage('sparsify-vm');
    const qemu = await startQemu(image);
    try {
      // The VM writes into object 4, which held zeros: QEMU's librbd takes the lock.
      await qemu.hmp('qemu-io d0 "write -P 0x55 16M 4k"'); // synchronous; its message goes to QEMU's stdout
      const lockers = JSON.parse(rbd(conf, ['lock', 'ls', '--format', 'json', `rbd/${image}`]).stdout) as unknown[];
      expect(lockers).toHaveLength(1);
      const expected = readFileSync(src);
      expected.fill(0x55, 16 * MiB, 16 * MiB + 4 * KiB);

      const rep = await sparsifyRbd({ pool: 'rbd', image }, { allowWatchers: 1 });
      expect(rep).toMatchObject({ method: 'ceph-sparsify', usedBefore: SIZE, usedAfter: 16 * MiB });
      expect(rbdObjects(conf, image)).toEqual([0, 12 * MiB, 16 * MiB, 32 * MiB]);
      expect(await rbdExportSha256(conf, image)).toEqual({ sha256: sha256Of(expected), bytes: SIZE });

      // The VM still owns the lock and writes on, into a freed object.
      await qemu.hmp('qemu-io d0 "write -P 0x66 24M 4k"');
      expected.fill(0x66, 24 * MiB, 24 * MiB + 4 * KiB);
      expect(await rbdExportSha256(conf, image)).toEqual({ sha256: sha256Of(expected), bytes: SIZE });
    } finally {
      await qemu.quit();
    }
  });

  it('an abort stops Ceph\'s sparsify at the next object: content unchanged', async () => {
    const image = zeroFilledImage('sparsify-vm-abort', big);
    const before = await rbdExportSha256(conf, image);
    const w = await watch(image);
    try {
      const ac = new AbortController();
      const p = sparsifyRbd({ pool: 'rbd', image }, { allowWatchers: 1, signal: ac.signal, onProgress: () => ac.abort() });
      await expect(p).rejects.toBeInstanceOf(AbortError);
      const used = rbdDu(conf, image).used;
      expect(used).toBeGreaterThan(8 * MiB); // stopped partway
      expect(await rbdExportSha256(conf, image)).toEqual(before);
    } finally {
      await w.stop();
    }
  });

  it('the library call allows exactly allowWatchers others (migrate passes 1, the VM)', async () => {
    const image = zeroFilledImage('sparsify-allow');
    const before = await rbdExportSha256(conf, image);
    const w1 = await watch(image);
    const w2 = await watch(image);
    try {
      const refused = await sparsifyRbd({ pool: 'rbd', image }, { allowWatchers: 1 }).catch((e: Error & { code?: string }) => e);
      expect(refused).toBeInstanceOf(Error);
      expect((refused as { code?: string }).code).toBe('EBUSY');
      expect((refused as Error).message).toContain('is open by 2 other clients');
      expect(rbdDu(conf, image).used).toBe(SIZE);
      await w2.stop();
      await waitFor(() => watchers(image) === 1, 'one watcher left', 60_000, 200);
      const rep = await sparsifyRbd({ pool: 'rbd', image }, { allowWatchers: 1 });
      expect(rep.method).toBe('ceph-sparsify');
      expect(rep.usedAfter).toBe(12 * MiB);
      expect(await rbdExportSha256(conf, image)).toEqual(before);
    } finally {
      await w1.stop();
      await w2.stop();
    }
  });
});

describe('sparsify rbd:POOL/IMG refusals', () => {
  it('a missing image: ENOENT, one line, non-zero exit', async () => {
    const r = await sparsifyCli(['rbd:rbd/no-such-image-here']);
    expect(r.code).toBe(1);
    expect(isOneLine(r.stderr)).toBe(true);
    expect(r.stderr).toContain("image 'rbd:rbd/no-such-image-here' does not exist");
    expect(r.stderr).toContain('ENOENT');
  });
});
