// `blocksmith migrate`: real libvirt (started by the test setup), real QEMU
// (TCG; the guests sit in their BIOS), the run's throwaway Ceph cluster. Each
// move is checked with the peers' own tools: `virsh domblklist`, `virsh
// start`, `virt-xml-validate`, `rbd export` against the original disks
// (qcow2 through `qemu-img convert`), `rbd du`.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ceph, imageExists, listImages, rbd, rbdDu, rbdExportSha256, removeImage, useCephCluster } from './helpers/ceph.js';
import { MiB, isOneLine, makeTempDir, removeDir, run, runCli, startCli, blocksmithCli, sha256 } from './helpers/sparsify.js';
import { cephLibvirtUser, defineCephSecret, defineDomain, destroyAndUndefine, startSecondNode, testDomainName, useLibvirt, virsh, type SecondNode } from './helpers/libvirt.js';

const cluster = useCephCluster();
useLibvirt();
let conf: string;
let dir: string;
let user: { user: string; keyring: string; key: string };
let secretUuid: string;
const images: string[] = [];
const domains: { name: string; uri?: string }[] = [];

beforeAll(async () => {
  conf = cluster.conf();
  dir = makeTempDir('migrate', '/var/tmp');
  user = cephLibvirtUser(conf, 'rbd');
  secretUuid = defineCephSecret(user.key);
});
afterEach(() => {
  for (const d of domains.splice(0)) destroyAndUndefine(d.name, d.uri);
});
afterAll(() => {
  for (const img of images) if (imageExists(conf, img)) removeImage(conf, img);
  removeDir(dir);
});

/** vda's block backend, for HMP qemu-io (the guest's writes, made by QEMU's block layer). */
const DISK0 = '/machine/peripheral/virtio-disk0/virtio-backend';

const cli = (args: string[]) => runCli(args, { cli: blocksmithCli, timeoutMs: 180_000 });
const to = () => `rbd:rbd:id=${user.user}:keyring=${user.keyring}`;

/** A raw disk (random data at two places, zeros elsewhere) and a qcow2 disk with a pattern, in a new directory. */
function makeDisks(name: string): { raw: string; qcow2: string; qcow2Raw: string; work: string } {
  const work = makeTempDir(name, dir);
  const raw = join(work, 'disk0.raw');
  run('truncate', ['-s', String(24 * MiB), raw]);
  // Fully allocated, as a VM's raw disk after a convert: zeros are data on disk.
  run('dd', ['if=/dev/zero', `of=${raw}`, 'bs=1M', 'count=24', 'conv=notrunc', 'status=none']);
  writeFileSync(join(work, 'a.bin'), randomBytes(3 * MiB));
  run('dd', [`if=${join(work, 'a.bin')}`, `of=${raw}`, 'bs=1M', 'seek=5', 'conv=notrunc', 'status=none']);
  run('dd', [`if=${join(work, 'a.bin')}`, `of=${raw}`, 'bs=64K', 'seek=300', 'count=3', 'conv=notrunc', 'status=none']);
  const qcow2 = join(work, 'disk1.qcow2');
  run('qemu-img', ['create', '-q', '-f', 'qcow2', qcow2, String(16 * MiB)]);
  run('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a 1M 2M', '-c', 'write -P 0x17 9M 64k', qcow2]);
  const qcow2Raw = join(work, 'disk1.as-raw');
  run('qemu-img', ['convert', '-O', 'raw', qcow2, qcow2Raw]);
  return { raw, qcow2, qcow2Raw, work };
}

function newDomain(extraDisks = ''): { name: string; raw: string; qcow2: string; qcow2Raw: string; work: string } {
  const name = testDomainName();
  const disks = makeDisks(name);
  domains.push({ name });
  defineDomain({
    name,
    disks: [
      { path: disks.raw, format: 'raw', dev: 'vda', serial: 'serial-one', bootOrder: 1, cache: 'none', io: 'native', discard: 'unmap' },
      { path: disks.qcow2, format: 'qcow2', dev: 'vdb' },
    ],
    extraDiskXml: `<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><target dev='hdc' bus='ide'/><readonly/></disk>${extraDisks}`,
  });
  for (const dev of ['vda', 'vdb']) images.push(`${name}-${dev}`);
  return { name, ...disks };
}

function blkSources(name: string, uri?: string): Record<string, string> {
  const out = virsh(['domblklist', name], { uri }).stdout;
  const map: Record<string, string> = {};
  for (const line of out.split('\n').slice(2)) {
    const [dev, src] = line.trim().split(/\s+/);
    if (dev) map[dev] = src ?? '';
  }
  return map;
}

async function fileSha(path: string): Promise<string> {
  return sha256(path);
}

describe('offline: a shut-off domain', () => {
  it('imports every file disk (raw and qcow2), redefines it on RBD with the same UUID and devices, and it starts', async () => {
    const d = newDomain();
    const before = { raw: await fileSha(d.raw), qcow2: await fileSha(d.qcow2), xml: virsh(['dumpxml', '--inactive', d.name]).stdout, uuid: virsh(['domuuid', d.name]).stdout.trim() };
    const r = await cli(['migrate', d.name, '--to', to(), '--save-dir', d.work, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep.mode).toBe('offline');
    expect(rep.secret).toMatchObject({ uuid: secretUuid, created: false });
    expect(rep.disks.map((x: { target: string; image: string; verified: boolean; size: number }) => [x.target, x.image, x.verified, x.size])).toEqual([
      ['vda', `rbd:rbd/${d.name}-vda`, true, 24 * MiB],
      ['vdb', `rbd:rbd/${d.name}-vdb`, true, 16 * MiB],
    ]);
    expect(rep.leftAlone).toEqual([{ target: 'hdc', device: 'cdrom', type: 'file', reason: 'a cdrom, not a disk' }]);

    // libvirt's view: RBD sources, the same UUID, target/serial/boot/cache kept, valid XML.
    expect(blkSources(d.name)).toEqual({ vda: `rbd/${d.name}-vda`, vdb: `rbd/${d.name}-vdb`, hdc: '-' });
    expect(virsh(['domuuid', d.name]).stdout.trim()).toBe(before.uuid);
    const xml = virsh(['dumpxml', '--inactive', d.name]).stdout;
    expect(xml).toContain('<serial>serial-one</serial>');
    expect(xml).toMatch(/<boot order='1'\/>/);
    expect(xml).toMatch(/<driver name='qemu' type='raw' cache='none' io='native' discard='unmap'\/>/);
    expect(xml).toContain(`<secret type='ceph' uuid='${secretUuid}'/>`);
    const xmlFile = join(d.work, 'after.xml');
    writeFileSync(xmlFile, xml);
    expect(run('virt-xml-validate', [xmlFile, 'domain']).code).toBe(0);

    // The bytes: each image equals its disk as the guest saw it.
    expect((await rbdExportSha256(conf, `${d.name}-vda`)).sha256).toBe(before.raw);
    expect((await rbdExportSha256(conf, `${d.name}-vdb`)).sha256).toBe(await fileSha(d.qcow2Raw));
    // Sparse: only objects with data were written (vda: data in objects 1 and 4; vdb: 0 and 2).
    expect(rbdDu(conf, `${d.name}-vda`).used).toBe(2 * 4 * MiB);
    expect(rbdDu(conf, `${d.name}-vdb`).used).toBe(2 * 4 * MiB);

    // The old disks and the old XML are kept.
    expect(await fileSha(d.raw)).toBe(before.raw);
    expect(await fileSha(d.qcow2)).toBe(before.qcow2);
    expect(readFileSync(rep.savedXml, 'utf8')).toContain(d.raw);
    expect(rep.savedXml.startsWith(d.work)).toBe(true);

    // QEMU opens the images through libvirt's secret and the monitors in the XML.
    virsh(['start', d.name]);
    expect(virsh(['domstate', d.name]).stdout.trim()).toBe('running');
  });

  it('--dry-run prints the plan and the XML diff and changes nothing', async () => {
    const d = newDomain();
    const xmlBefore = virsh(['dumpxml', '--inactive', d.name]).stdout;
    const imagesBefore = listImages(conf);
    const r = await cli(['migrate', d.name, '--to', to(), '--dry-run', '--save-dir', d.work]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`would move domain ${d.name} to RBD pool rbd, offline`);
    expect(r.stdout).toContain(`vda: ${d.raw} (raw, 24.0 MiB) -> rbd:rbd/${d.name}-vda`);
    expect(r.stdout).toContain('data: 3.19 MiB');
    expect(r.stdout).toContain(`-      <source file="${d.raw}"/>`);
    expect(r.stdout).toContain(`+      <source protocol="rbd" name="rbd/${d.name}-vda">`);
    expect(r.stdout).toContain('hdc: left alone: a cdrom, not a disk');
    expect(virsh(['dumpxml', '--inactive', d.name]).stdout).toBe(xmlBefore);
    expect(listImages(conf)).toEqual(imagesBefore);
    expect(readdirSync(d.work).filter((f) => f.endsWith('.xml'))).toEqual([]);
  });

  it('--rollback defines the saved XML again; the images stay', async () => {
    const d = newDomain();
    const r = await cli(['migrate', d.name, '--to', to(), '--save-dir', d.work, '-q']);
    expect(r.code).toBe(0);
    const back = await cli(['migrate', d.name, '--rollback', '--save-dir', d.work]);
    expect(back.code).toBe(0);
    expect(back.stdout).toMatch(/^defined .* again from .*before-rbd\..*\.xml\n  the disks are the old files as they were when moved: what the domain wrote on RBD since is only in the RBD images \(kept\)\n$/);
    expect(blkSources(d.name)).toEqual({ vda: d.raw, vdb: d.qcow2, hdc: '-' });
    expect(imageExists(conf, `${d.name}-vda`)).toBe(true);
  });
});

describe('the libvirt secret', () => {
  it('none for the client: refused, or --create-secret makes one from the keyring (the key never printed) and QEMU connects with it', async () => {
    const other = cephLibvirtUser(conf, 'rbd', `bs-mig-${randomBytes(3).toString('hex')}`);
    const otherId = other.user;
    try {
      const d = newDomain();
      const spec = `rbd:rbd:id=${otherId}:keyring=${other.keyring}`;
      const r1 = await cli(['migrate', d.name, '--to', spec, '--save-dir', d.work]);
      expect(r1.code).toBe(1);
      expect(r1.stderr).toBe(`blocksmith: libvirt has no secret of usage type ceph for client.${otherId}: --create-secret makes one from the keyring, or give --secret-uuid (ENOENT)\n`);
      expect(listImages(conf).filter((i) => i.startsWith(d.name))).toEqual([]);

      const r2 = await cli(['migrate', d.name, '--to', spec, '--save-dir', d.work, '--create-secret', '--json']);
      expect(r2.code).toBe(0);
      const rep = JSON.parse(r2.stdout);
      expect(rep.secret.created).toBe(true);
      expect(rep.secret.usage).toBe(`client.${otherId} secret`);
      expect(r2.stdout + r2.stderr).not.toContain(other.key);
      try {
        expect(virsh(['secret-list']).stdout).toContain(rep.secret.uuid);
        virsh(['start', d.name]);
        expect(virsh(['domstate', d.name]).stdout.trim()).toBe('running');
      } finally {
        virsh(['destroy', d.name], { allowFail: true });
        virsh(['secret-undefine', rep.secret.uuid], { allowFail: true });
      }
    } finally {
      ceph(conf, ['auth', 'del', `client.${otherId}`]);
    }
  });
});

describe('interrupted', () => {
  it('Ctrl-C during an import: exit 130, the images made so far removed, the domain as it was', async () => {
    const d = newDomain();
    // A larger first disk with data everywhere, written one object at a time: the import takes a while
    // (320 MiB and a short wait once its image exists, so it is still running when the signal comes on a
    // quiet machine too, where copies to RBD have become faster).
    run('dd', ['if=/dev/urandom', `of=${d.raw}`, 'bs=1M', 'count=320', 'status=none']);
    const xmlBefore = virsh(['dumpxml', '--inactive', d.name]).stdout;
    const child = startCli(['migrate', d.name, '--to', to(), '--save-dir', d.work, '--parallel', '1'], { cli: blocksmithCli, timeoutMs: 180_000 });
    const t0 = Date.now();
    while (child.running() && !imageExists(conf, `${d.name}-vda`) && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 50));
    expect(child.running()).toBe(true);
    child.child.kill('SIGINT');
    const r = await child.done;
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/^\ninterrupted: stopping cleanly \(Ctrl-C again to quit at once\)\nblocksmith: stopped\n$/);
    expect(listImages(conf).filter((i) => i.startsWith(d.name))).toEqual([]);
    expect(virsh(['dumpxml', '--inactive', d.name]).stdout).toBe(xmlBefore);
    expect(readdirSync(d.work).filter((f) => f.endsWith('.xml'))).toEqual([]);
  });
});

describe('block devices', () => {
  it("a <disk type='block'> on a loop device is imported from the device and becomes an RBD disk", async () => {
    const name = testDomainName();
    domains.push({ name });
    const work = makeTempDir(name, dir);
    const backing = join(work, 'lv.raw');
    writeFileSync(backing, Buffer.concat([Buffer.alloc(2 * MiB), randomBytes(1 * MiB), Buffer.alloc(5 * MiB)]));
    const loop = run('losetup', ['-f', '--show', backing]).stdout.trim();
    images.push(`${name}-vdc`);
    try {
      defineDomain({ name, disks: [], extraDiskXml: `<disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='${loop}'/><target dev='vdc' bus='virtio'/></disk>` });
      const r = await cli(['migrate', name, '--to', to(), '--save-dir', work, '-q']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(blkSources(name)).toEqual({ vdc: `rbd/${name}-vdc` });
      expect((await rbdExportSha256(conf, `${name}-vdc`)).sha256).toBe(await fileSha(backing));
      expect(rbdDu(conf, `${name}-vdc`).used).toBe(4 * MiB);
    } finally {
      run('losetup', ['-d', loop], { allowFail: true });
    }
  });
});

describe('refusals: one line, nothing created, the domain unchanged', () => {
  async function refused(args: string[], d: { name: string }, message: RegExp): Promise<void> {
    const xmlBefore = virsh(['dumpxml', '--inactive', d.name]).stdout;
    const imagesBefore = listImages(conf);
    const r = await cli(['migrate', d.name, ...args]);
    expect(r.code).toBe(1);
    expect(isOneLine(r.stderr)).toBe(true);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
    expect(listImages(conf)).toEqual(imagesBefore);
    expect(virsh(['dumpxml', '--inactive', d.name]).stdout).toBe(xmlBefore);
  }

  it('a running domain without --live', async () => {
    const d = newDomain();
    virsh(['start', d.name]);
    await refused(['--to', to(), '--save-dir', d.work], d, new RegExp(`^blocksmith: domain ${d.name} is running: shut it down first, or move it while it runs with --live \\(EBUSY\\)\\n$`));
  });

  it('a pool that does not exist', async () => {
    const d = newDomain();
    await refused(['--to', `rbd:nosuchpool:id=${user.user}:keyring=${user.keyring}`, '--save-dir', d.work], d, /pool 'nosuchpool' does not exist.*\(ENOENT\)/);
  });

  it('a key the cluster refuses', async () => {
    const d = newDomain();
    const bad = join(d.work, 'bad.keyring');
    writeFileSync(bad, `[client.${user.user}]\n\tkey = ${run('ceph-authtool', ['--gen-print-key']).stdout.trim()}\n`);
    await refused(['--to', `rbd:rbd:id=${user.user}:keyring=${bad}`, '--save-dir', d.work], d, /^blocksmith: cannot connect to the Ceph cluster: permission denied \(check the client id and keyring: the cluster refused the key\) \(EACCES\)\n$/);
  });

  it('a domain whose only disk is already on RBD', async () => {
    const name = testDomainName();
    domains.push({ name });
    const img = `${name}-existing`;
    images.push(img);
    rbd(conf, ['create', '--size', '8M', `rbd/${img}`]);
    defineDomain({
      name,
      disks: [],
      extraDiskXml: `<disk type='network' device='disk'><driver name='qemu' type='raw'/><source protocol='rbd' name='rbd/${img}'><host name='127.0.0.1' port='6789'/></source><target dev='vda' bus='virtio'/></disk>`,
    });
    await refused(['--to', to(), '--save-dir', dir], { name }, new RegExp(`has no disk to move: vda is already on the network \\(rbd rbd/${img}\\) \\(ENOENT\\)`));
  });

  it('an image name that exists (its content is not touched)', async () => {
    const d = newDomain();
    rbd(conf, ['create', '--size', '4M', `rbd/${d.name}-vdb`]);
    const sum = (await rbdExportSha256(conf, `${d.name}-vdb`)).sha256;
    await refused(['--to', to(), '--save-dir', d.work], d, new RegExp(`image rbd:rbd/${d.name}-vdb already exists: choose other names with --name DEV=IMAGE, or remove it \\(EEXIST\\)`));
    expect((await rbdExportSha256(conf, `${d.name}-vdb`)).sha256).toBe(sum);
  });
});

describe('live, on this host (virsh blockcopy)', () => {
  it('moves a running domain without stopping it; writes made during the copy are kept; zeros reclaimed to what an offline import uses', async () => {
    const d = newDomain();
    virsh(['start', d.name]);
    const id = virsh(['domid', d.name]).stdout.trim();
    // Guest writes during the copy, through QEMU's own block layer (HMP qemu-io).
    const child = startCli(['migrate', d.name, '--live', '--to', to(), '--save-dir', d.work, '--json'], { cli: blocksmithCli, timeoutMs: 180_000 });
    const written: number[] = [];
    for (let i = 0; child.running() && i < 200; i++) {
      const off = (i % 20) * MiB + 512 * 1024;
      // qemu-io's own report goes to QEMU's stdout (the domain log), not the monitor: a write that failed shows as a content mismatch below.
      const w = virsh(['qemu-monitor-command', d.name, '--hmp', `qemu-io -d ${DISK0} "write -P 0x${(0x40 + (i % 32)).toString(16)} ${off} 4096"`], { allowFail: true });
      if (w.code === 0) written.push(i);
    }
    const r = await child.done;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep.mode).toBe('live');
    expect(virsh(['domid', d.name]).stdout.trim()).toBe(id);
    expect(virsh(['domstate', d.name]).stdout.trim()).toBe('running');
    expect(blkSources(d.name)).toEqual({ vda: `rbd/${d.name}-vda`, vdb: `rbd/${d.name}-vdb`, hdc: '-' });
    // The saved config (next boot) is on RBD too.
    expect(virsh(['dumpxml', '--inactive', d.name]).stdout).toContain(`name='rbd/${d.name}-vda'`);

    // One more write after the pivot lands in RBD.
    virsh(['qemu-monitor-command', d.name, '--hmp', `qemu-io -d ${DISK0} "write -P 0x7e ${20 * MiB} 4096"`]);
    virsh(['destroy', d.name]);
    const expected = readFileSync(d.raw);
    for (const i of written) expected.fill(0x40 + (i % 32), (i % 20) * MiB + 512 * 1024, (i % 20) * MiB + 512 * 1024 + 4096);
    expected.fill(0x7e, 20 * MiB, 20 * MiB + 4096);
    const exported = join(d.work, 'vda.exported');
    rbd(conf, ['export', `rbd/${d.name}-vda`, exported]);
    expect(createHash('sha256').update(readFileSync(exported)).digest('hex')).toBe(createHash('sha256').update(expected).digest('hex'));
    expect((await rbdExportSha256(conf, `${d.name}-vdb`)).sha256).toBe(await fileSha(d.qcow2Raw));

    // Reclaimed: no more than 1.02x what an offline (sparse) import of the same bytes uses.
    const offline = `${d.name}-offline`;
    images.push(offline);
    expect((await cli(['rbd', 'import', exported, `rbd:rbd/${offline}:id=${user.user}:keyring=${user.keyring}`, '-q'])).code).toBe(0);
    const vda = rep.disks.find((x: { target: string }) => x.target === 'vda');
    expect(vda.reclaim.method).toBe('ceph-sparsify');
    expect(vda.reclaim.usedBefore).toBeGreaterThan(vda.reclaim.usedAfter);
    expect(rbdDu(conf, `${d.name}-vda`).used).toBeLessThanOrEqual(1.02 * rbdDu(conf, offline).used);
    expect(rbdDu(conf, `${d.name}-vdb`).used).toBe(2 * 4 * MiB);
  });
});

describe('live, to another node (virsh migrate --copy-storage-all)', () => {
  let node: SecondNode | undefined;
  beforeAll(async () => {
    node = await startSecondNode();
  });
  afterAll(() => node?.stop());

  it('the domain runs on the other node from RBD; the images equal the disks', async () => {
    const d = newDomain();
    virsh(['start', d.name]);
    domains.push({ name: d.name, uri: node!.uri });
    const destSecret = defineCephSecret(user.key, node!.uri);
    try {
      const r = await cli(['migrate', d.name, '--live', '--dest-uri', node!.uri, '--migrate-uri', 'tcp://127.0.0.1', '--listen-address', '127.0.0.1', '--to', to(), '--save-dir', d.work, '--json']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const rep = JSON.parse(r.stdout);
      expect(rep.mode).toBe('live-to-node');
      expect(rep.secret.uuid).toBe(destSecret);
      expect(virsh(['domstate', d.name], { uri: node!.uri }).stdout.trim()).toBe('running');
      expect(virsh(['domstate', d.name]).stdout.trim()).toBe('shut off');
      expect(blkSources(d.name, node!.uri)).toEqual({ vda: `rbd/${d.name}-vda`, vdb: `rbd/${d.name}-vdb`, hdc: '-' });
      virsh(['destroy', d.name], { uri: node!.uri });
      expect((await rbdExportSha256(conf, `${d.name}-vda`)).sha256).toBe(await fileSha(d.raw));
      expect((await rbdExportSha256(conf, `${d.name}-vdb`)).sha256).toBe(await fileSha(d.qcow2Raw));
      expect(rbdDu(conf, `${d.name}-vda`).used).toBe(2 * 4 * MiB);
    } finally {
      virsh(['secret-undefine', destSecret], { uri: node!.uri, allowFail: true });
    }
  });
});

