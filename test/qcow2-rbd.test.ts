// qcow2 -> Ceph RBD through the same pipeline: `sparsify IMG.qcow2
// rbd:pool/image` and `blocksmith rbd import --verify`, on the run's shared
// throwaway cluster (test/ceph/global-setup.ts). What `rbd export` reads
// back equals `qemu-img convert -f qcow2 -O raw` byte for byte, and only the
// data was written. An image whose backing file leads out of its directory
// (a device, a host file) is refused before any RBD image is created, as
// `sparsify` and `info` refuse it (test/qcow2-backing.test.ts).
import { realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageExists, imageName, rbdExportSha256, removeImage, useCephCluster } from './helpers/ceph.js';
import { KiB, MiB, attachLoop, blocksmithCli, dataBytes, detachLoop, isOneLine, makeTempDir, removeDir, run, runCli, sha256 } from './helpers/sparsify.js';

let dir: string;
let conf: string;
let loop: string | undefined;
const made: string[] = [];

const cluster = useCephCluster(); // sets CEPH_CONF for the CLI children
beforeAll(() => {
  conf = cluster.conf();
  dir = realpathSync(makeTempDir('qcow2-rbd'));
});
afterAll(() => {
  detachLoop(loop);
  for (const img of made) removeImage(conf, img);
  removeDir(dir);
});

function newImage(prefix: string): string {
  const name = imageName(prefix);
  made.push(name);
  return name;
}
function qemuImg(...args: string[]): void {
  run('qemu-img', args);
}
function qemuIo(image: string, cmds: string[]): void {
  run('qemu-io', ['-f', 'qcow2', ...cmds.flatMap((c) => ['-c', c]), image]);
}

async function expectRbdEqualsQemuRaw(image: string, rbdName: string): Promise<void> {
  const ref = join(dir, `${rbdName}.ref.raw`);
  qemuImg('convert', '-O', 'raw', image, ref);
  expect((await rbdExportSha256(conf, rbdName)).sha256).toBe(await sha256(ref));
}

describe('qcow2 -> RBD', () => {
  it('sparsify IMG.qcow2 rbd:rbd/IMAGE writes only the data; rbd export equals qemu-img convert; the report names the chain', async () => {
    const base = join(dir, 'base.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', base, '64M');
    qemuIo(base, ['write -P 0xab 1M 3M', 'write -z 2M 512k', 'write -P 0x11 20M 64k']);
    const top = join(dir, 'top.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', top);
    qemuIo(top, ['write -P 0xcd 30M 1M', 'write -z 1M 64k']);
    const name = newImage('q-top');
    const r = await runCli(['sparsify', '--json', top, `rbd:rbd/${name}`], { cli: blocksmithCli });
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout) as { format: string; size: number; dataBytes: number; backingChain: unknown };
    expect(rep.format).toBe('qcow2');
    expect(rep.size).toBe(64 * MiB);
    expect(rep.dataBytes).toBe(3 * MiB - 512 * KiB - 64 * KiB + 64 * KiB + MiB);
    expect(rep.backingChain).toEqual([{ name: 'base.qcow2', path: base, format: 'qcow2' }]);
    await expectRbdEqualsQemuRaw(top, name);
  });

  it('rbd import of a compressed (zstd) qcow2 with --verify', async () => {
    const src = join(dir, 'plain.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', src, '40M');
    qemuIo(src, ['write -P 0x5a 0 8M', 'write -P 0x6b 33M 4k']);
    const z = join(dir, 'z.qcow2');
    qemuImg('convert', '-c', '-f', 'qcow2', '-O', 'qcow2', '-o', 'compression_type=zstd', src, z);
    const name = newImage('q-zstd');
    const r = await runCli(['rbd', 'import', '--json', '--verify', z, `rbd/${name}`], { cli: blocksmithCli });
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout) as { format: string; verified: boolean; dataBytes: number; backingChain: unknown };
    expect(rep).toMatchObject({ format: 'qcow2', verified: true, dataBytes: 8 * MiB + 4 * KiB, backingChain: [] });
    await expectRbdEqualsQemuRaw(z, name);
  });
});

describe('qcow2 with a hostile backing file -> RBD', () => {
  it('backing file = a loop device or a host file: rbd import and sparsify rbd: refuse, no RBD image is created (a VMDK neither); --allow-backing imports it', async () => {
    const elsewhere = realpathSync(makeTempDir('qcow2-rbd-host'));
    try {
      const secret = join(elsewhere, 'secret.raw');
      writeFileSync(secret, dataBytes(MiB, 21));
      loop = attachLoop(secret, { readOnly: true });
      const evil = join(dir, 'evil.qcow2');
      qemuImg('create', '-q', '-u', '-f', 'qcow2', '-b', loop, '-F', 'raw', evil, '8M');
      const hostFile = join(dir, 'host-file.qcow2');
      qemuImg('create', '-q', '-u', '-f', 'qcow2', '-b', secret, '-F', 'raw', hostFile, '8M');
      const cases = [
        [evil, `'${evil}' has backing file '${loop}', a block device: refused (a backing file must be a regular file; --allow-backing follows it anyway)`],
        [
          hostFile,
          `'${hostFile}' has backing file '${secret}', which resolves to ${secret}, outside ${dir} (the directory of '${hostFile}'): refused (--allow-backing-dir DIR allows another directory; --allow-backing follows it anyway)`,
        ],
      ] as const;
      for (const [image, message] of cases) {
        const name = newImage('q-evil');
        for (const [args, prog] of [
          [['rbd', 'import', image, `rbd/${name}`], 'blocksmith'],
          [['sparsify', image, `rbd:rbd/${name}`], 'blocksmith'],
        ] as const) {
          const r = await runCli([...args], { cli: blocksmithCli });
          expect(r.code, r.stderr).toBe(1);
          expect(isOneLine(r.stderr), r.stderr).toBe(true);
          expect(r.stderr).toBe(`${prog}: ${message} (ERR_BACKING_REFUSED)\n`);
          expect(imageExists(conf, name)).toBe(false);
        }
      }
      // A container we do not read is refused the same way.
      const vmdk = join(dir, 'disk.vmdk');
      qemuImg('create', '-q', '-f', 'vmdk', vmdk, '8M');
      const vname = newImage('q-vmdk');
      const v = await runCli(['rbd', 'import', vmdk, `rbd/${vname}`], { cli: blocksmithCli });
      expect(v.code).toBe(1);
      expect(v.stderr).toMatch(/^blocksmith: '.*disk\.vmdk' is a VMDK \(VMware\) image, which blocksmith does not read: .* \(ERR_UNSUPPORTED_FORMAT\)\n$/);
      expect(imageExists(conf, vname)).toBe(false);

      const name = newImage('q-evil-allowed');
      const r = await runCli(['rbd', 'import', '--json', '--allow-backing', evil, `rbd/${name}`], { cli: blocksmithCli });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).backingChain).toEqual([{ name: loop, path: loop, format: 'raw' }]);
      await expectRbdEqualsQemuRaw(evil, name);
    } finally {
      removeDir(elsewhere);
    }
  });
});
