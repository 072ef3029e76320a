// qcow2 -> Ceph RBD through the same pipeline: `sparsify IMG.qcow2
// rbd:pool/image` and `blocksmith rbd import --verify`, on a throwaway
// single-node cluster (test/ceph/cluster.sh). What `rbd export` reads back
// equals `qemu-img convert -f qcow2 -O raw` byte for byte, and only the data
// was written.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KiB, MiB, blocksmithCli, makeTempDir, removeDir, repoRoot, run, runCli, sha256, toolEnv } from './helpers/sparsify.js';

let dir: string;
let clusterDir: string;
let conf: string;

function qemuImg(...args: string[]): void {
  run('qemu-img', args);
}
function qemuIo(image: string, cmds: string[]): void {
  run('qemu-io', ['-f', 'qcow2', ...cmds.flatMap((c) => ['-c', c]), image]);
}

beforeAll(() => {
  dir = makeTempDir('qcow2-rbd');
  clusterDir = join(dir, 'ceph');
  const r = spawnSync('bash', [join(repoRoot, 'test/ceph/cluster.sh'), 'start', clusterDir], {
    encoding: 'utf8',
    env: { ...toolEnv(), STORE: 'memstore', OSD_BYTES: String(2 * 1024 * MiB) },
  });
  if (r.status !== 0) throw new Error(`the test Ceph cluster did not start: ${r.stderr.trim()}`);
  conf = r.stdout.trim().split('\n').pop()!;
}, 180_000);

afterAll(() => {
  if (clusterDir) spawnSync('bash', [join(repoRoot, 'test/ceph/cluster.sh'), 'stop', clusterDir], { env: toolEnv() });
  removeDir(dir);
});

async function expectRbdEqualsQemuRaw(image: string, rbdName: string): Promise<void> {
  const back = join(dir, `${rbdName}.raw`);
  const ref = join(dir, `${rbdName}.ref.raw`);
  run('rbd', ['-c', conf, 'export', `rbd/${rbdName}`, back]);
  qemuImg('convert', '-f', 'qcow2', '-O', 'raw', image, ref);
  expect(await sha256(back)).toBe(await sha256(ref));
}

describe('qcow2 -> RBD', () => {
  it('sparsify IMG.qcow2 rbd:rbd/IMAGE writes only the data; rbd export equals qemu-img convert', async () => {
    const base = join(dir, 'base.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', base, '64M');
    qemuIo(base, ['write -P 0xab 1M 3M', 'write -z 2M 512k', 'write -P 0x11 20M 64k']);
    const top = join(dir, 'top.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', top);
    qemuIo(top, ['write -P 0xcd 30M 1M', 'write -z 1M 64k']);
    const r = await runCli(['sparsify', '--json', top, `rbd:rbd/q-top:conf=${conf}`], { cli: blocksmithCli });
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout) as { format: string; size: number; dataBytes: number };
    expect(rep.format).toBe('qcow2');
    expect(rep.size).toBe(64 * MiB);
    expect(rep.dataBytes).toBe(3 * MiB - 512 * KiB - 64 * KiB + 64 * KiB + MiB);
    await expectRbdEqualsQemuRaw(top, 'q-top');
  });

  it('rbd import of a compressed (zstd) qcow2 with --verify', async () => {
    const src = join(dir, 'plain.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', src, '40M');
    qemuIo(src, ['write -P 0x5a 0 8M', 'write -P 0x6b 33M 4k']);
    const z = join(dir, 'z.qcow2');
    qemuImg('convert', '-c', '-f', 'qcow2', '-O', 'qcow2', '-o', 'compression_type=zstd', src, z);
    const r = await runCli(['rbd', 'import', '--json', '--verify', '--conf', conf, z, 'rbd/q-zstd'], { cli: blocksmithCli });
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout) as { format: string; verified: boolean; dataBytes: number };
    expect(rep).toMatchObject({ format: 'qcow2', verified: true, dataBytes: 8 * MiB + 4 * KiB });
    await expectRbdEqualsQemuRaw(z, 'q-zstd');
  });
});
