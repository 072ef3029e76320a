// The libvirt parts the migrate suites stand on, with real daemons: this
// host's libvirtd (test/libvirt/global-setup.ts), a second libvirt node in
// its own mount namespace (test/libvirt/node.sh) that a running TCG domain
// migrates to live with its storage, and a QEMU started by libvirt that opens
// an RBD image of the test cluster with cephx (qemu-block-extra's rbd module).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { imageName, rbd, removeImage, useCephCluster } from './helpers/ceph.js';
import {
  cephLibvirtUser,
  defineCephSecret,
  defineDomain,
  destroyAndUndefine,
  domainState,
  monV1Hosts,
  rbdDiskXml,
  startSecondNode,
  testDomainName,
  useLibvirt,
  virsh,
} from './helpers/libvirt.js';
import { MiB, makeTempDir, removeDir, run } from './helpers/sparsify.js';

useLibvirt();
const cluster = useCephCluster();

let dir: string;
const domains: { name: string; uri?: string }[] = [];
beforeAll(() => {
  dir = makeTempDir('libvirt');
});
afterEach(() => {
  for (const d of domains.splice(0)) destroyAndUndefine(d.name, d.uri);
});
afterAll(() => removeDir(dir));

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
// A killed daemon stays a zombie until init reaps it: that is not alive.
const pidAlive = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0] !== 'Z';
  } catch {
    return false;
  }
};

describe('a second libvirt node', () => {
  it('takes a running domain live with its disk (virsh migrate --copy-storage-all), and stop() ends exactly its processes', async () => {
    const t0 = Date.now();
    const node = await startSecondNode();
    const tStarted = Date.now();
    try {
      expect(node.uri).toMatch(/^qemu\+tcp:\/\/127\.0\.0\.1:\d+\/system$/);
      // Its own host UUID: libvirt refuses a migration to the same host.
      const hostUuid = (uri?: string) => virsh(['capabilities'], { uri }).stdout.match(/<uuid>([^<]+)<\/uuid>/)![1];
      expect(hostUuid(node.uri)).not.toBe(hostUuid());

      const src = join(dir, 'src.raw');
      const dst = join(dir, 'dst.raw');
      run('truncate', ['-s', String(16 * MiB), src]);
      run('dd', ['if=/dev/urandom', `of=${src}`, 'bs=1M', 'seek=3', 'count=2', 'conv=notrunc', 'status=none']);
      // The destination's disk: same size, another path (both QEMUs run on this host).
      run('truncate', ['-s', String(16 * MiB), dst]);
      const name = testDomainName('mig');
      domains.push({ name }, { name, uri: node.uri });
      defineDomain({ name, disks: [{ path: src, format: 'raw', dev: 'vda' }] });
      virsh(['start', name]);
      expect(domainState(name)).toBe('running');

      const destXml = join(dir, 'dest.xml');
      writeFileSync(destXml, virsh(['dumpxml', '--migratable', name]).stdout.replace(`file='${src}'`, `file='${dst}'`));
      const tMig = Date.now();
      virsh(['migrate', '--live', '--persistent', '--undefinesource', '--copy-storage-all', '--migrateuri', 'tcp://127.0.0.1', '--listen-address', '127.0.0.1', '--xml', destXml, name, node.uri]);
      const tDone = Date.now();

      expect(domainState(name, node.uri)).toBe('running');
      expect(virsh(['dominfo', name], { uri: node.uri }).stdout).toMatch(/^Persistent:\s+yes$/m);
      expect(domainState(name)).toBeUndefined(); // gone from the main node
      expect(virsh(['domblklist', name], { uri: node.uri }).stdout).toContain(dst);
      expect(sha256(dst)).toBe(sha256(src));

      // The node's QEMU and daemons, as the node knows them.
      const qemuPid = Number(readFileSync(join(node.dir, 'run', 'qemu', `${name}.pid`), 'utf8'));
      const daemonPids = ['libvirtd.pid', 'virtlogd.pid'].map((f) => Number(readFileSync(join(node.dir, f), 'utf8')));
      expect(readFileSync(`/proc/${qemuPid}/cmdline`, 'utf8')).toContain(`guest=${name}`);
      const mainAnswers = () => virsh(['version']).code;
      node.stop();
      expect([qemuPid, ...daemonPids].filter(pidAlive)).toEqual([]);
      expect(existsSync(node.dir)).toBe(false);
      expect(mainAnswers()).toBe(0);
      console.log(`second node: start ${tStarted - t0} ms, migrate ${tDone - tMig} ms, whole test ${Date.now() - t0} ms`);
    } finally {
      node.stop();
    }
  });
});

describe('QEMU through libvirt on the test Ceph cluster', () => {
  let image: string;
  afterAll(() => {
    if (image) removeImage(cluster.conf(), image);
  });

  it("starts a domain whose <disk type='network'> is an RBD image (hosts from the conf, or the conf itself; cephx secret) and writes to it", async () => {
    const conf = cluster.conf();
    const user = cephLibvirtUser(conf, 'rbd');
    expect(readFileSync(user.keyring, 'utf8')).toBe(`[client.libvirt]\n\tkey = ${user.key}\n`);
    const uuid = defineCephSecret(user.key);
    expect(defineCephSecret(user.key)).toBe(uuid); // reused, not a second secret
    image = imageName('libvirt');
    rbd(conf, ['create', '--size', '64M', `rbd/${image}`]);

    const name = testDomainName('rbd');
    domains.push({ name });
    const hosts = monV1Hosts(conf);
    expect(hosts).toHaveLength(1);
    defineDomain({ name, disks: [], extraDiskXml: rbdDiskXml({ pool: 'rbd', image, hosts, user: user.user, secretUuid: uuid, dev: 'vda' }) });
    virsh(['start', name]);
    expect(domainState(name)).toBe('running');
    expect(virsh(['domblklist', name]).stdout).toMatch(new RegExp(`vda\\s+rbd/${image}`));
    expect(virsh(['domblkinfo', name, 'vda']).stdout).toMatch(new RegExp(`^Capacity:\\s+${64 * MiB}$`, 'm'));

    // QEMU writes through its rbd driver (HMP qemu-io on the guest's disk); Ceph's own export shows it.
    // (Its report goes to QEMU's stdout, not the monitor: the export is the check.)
    virsh(['qemu-monitor-command', name, '--hmp', 'qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend "write -P 0xab 1M 1M"']);
    virsh(['destroy', name]);
    const out = join(dir, 'export.raw');
    rbd(conf, ['export', '--no-progress', `rbd/${image}`, out]);
    const got = readFileSync(out);
    expect(got.length).toBe(64 * MiB);
    expect(got.subarray(MiB, 2 * MiB).equals(Buffer.alloc(MiB, 0xab))).toBe(true);
    expect(got.subarray(0, MiB).equals(Buffer.alloc(MiB))).toBe(true);
    expect(got.subarray(2 * MiB).equals(Buffer.alloc(62 * MiB))).toBe(true);

    // The same image named by the cluster's conf instead of <host> lines: QEMU reads the conf itself.
    destroyAndUndefine(name);
    defineDomain({ name, disks: [], extraDiskXml: rbdDiskXml({ pool: 'rbd', image, configFile: conf, user: user.user, secretUuid: uuid, dev: 'vda' }) });
    virsh(['start', name]);
    expect(virsh(['domblkinfo', name, 'vda']).stdout).toMatch(new RegExp(`^Capacity:\\s+${64 * MiB}$`, 'm'));
  });
});
