// Helpers for the libvirt suites (blocksmith migrate, test/libvirt-*.test.ts):
// this host's libvirtd (made sure of by test/libvirt/global-setup.ts), a
// second libvirt node for live migrations (test/libvirt/node.sh), test
// domains named with this run's prefix, and the Ceph client and libvirt
// secret a <disk type='network'> RBD disk needs. Keys never reach a command
// line or the output.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { beforeAll, beforeEach, inject } from 'vitest';
import { ceph } from './ceph.js';
import { repoRoot, sleep, toolEnv } from './sparsify.js';

export const MAIN_URI = 'qemu:///system';
export const nodeScript = join(repoRoot, 'test', 'libvirt', 'node.sh');

function tail(path: string, lines = 10): string {
  try {
    return readFileSync(path, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Waits for the global setup's libvirt check; throws with host.sh's reason when libvirt is not there. */
export async function libvirtReady(timeoutMs = 120_000): Promise<void> {
  const base = inject('libvirtBase');
  if (!base) throw new Error('no libvirt: test/libvirt/global-setup.ts is not registered in vitest.config.ts');
  const status = join(base, 'start.status');
  const t0 = Date.now();
  while (!existsSync(status)) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`libvirtd did not answer within ${timeoutMs / 1000} s (host.sh in ${base})`);
    await sleep(50);
  }
  const result = readFileSync(status, 'utf8');
  if (result !== '0') throw new Error(`libvirt is not available (host.sh ${result}): ${tail(join(base, 'start.err'))}`);
}

/**
 * For a libvirt test file: waits for the global setup in beforeAll and sets
 * LIBVIRT_DEFAULT_URI=qemu:///system for the children of this fork. When
 * libvirt did not start, every test of the file fails with the reason.
 */
export function useLibvirt(): void {
  let failure: Error | undefined;
  beforeAll(async () => {
    try {
      await libvirtReady();
      process.env.LIBVIRT_DEFAULT_URI = MAIN_URI;
    } catch (err) {
      failure = err as Error;
    }
  });
  beforeEach(() => {
    if (failure) throw failure;
  });
}

/** A fresh domain name of this run ("bs-test-<run>-TAG-<hex>"); teardown removes leftovers by the run's prefix. */
export function testDomainName(tag = 'vm'): string {
  const prefix = inject('libvirtDomainPrefix') ?? 'bs-test-';
  return `${prefix}${tag}-${randomBytes(3).toString('hex')}`;
}

export interface VirshResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `virsh -c URI ARGS` (default qemu:///system); throws on a non-zero exit unless allowFail. */
export function virsh(args: string[], opts: { uri?: string; allowFail?: boolean; timeoutMs?: number } = {}): VirshResult {
  const uri = opts.uri ?? MAIN_URI;
  const r = spawnSync('virsh', ['-c', uri, ...args], { encoding: 'utf8', timeout: opts.timeoutMs ?? 120_000, maxBuffer: 16 << 20, env: toolEnv() });
  if (r.error) throw new Error(`virsh -c ${uri} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0 && !opts.allowFail) throw new Error(`virsh -c ${uri} ${args.join(' ')} exited ${r.status}: ${r.stderr.trim()}`);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `virsh domstate NAME` ("running", "shut off", ...), or undefined when the domain does not exist there. */
export function domainState(name: string, uri?: string): string | undefined {
  const r = virsh(['domstate', name], { uri, allowFail: true });
  return r.code === 0 ? r.stdout.trim() : undefined;
}

const xmlEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');

export interface TestDisk {
  /** Image file, or a block device with type 'block'. */
  path: string;
  format: 'raw' | 'qcow2';
  /** Target dev: vda, vdb, sda, hdc ... */
  dev: string;
  /** Target bus; default from dev: vd* virtio, sd* scsi, hd* ide. */
  bus?: 'virtio' | 'scsi' | 'ide' | 'sata';
  type?: 'file' | 'block';
  device?: 'disk' | 'cdrom';
  readonly?: boolean;
  shareable?: boolean;
  serial?: string;
  bootOrder?: number;
  /** <driver> attributes, e.g. cache='none' io='native' discard='unmap'. */
  cache?: string;
  io?: string;
  discard?: 'unmap' | 'ignore';
  detectZeroes?: 'off' | 'on' | 'unmap';
}

export interface DomainSpec {
  name: string;
  disks: TestDisk[];
  memoryMiB?: number;
  /** Raw <disk> (or other device) elements appended inside <devices>. */
  extraDiskXml?: string;
  /** A VNC display on 127.0.0.1 (off by default: the tests need no display). */
  vnc?: boolean;
  uri?: string;
}

function busOf(dev: string): string {
  if (dev.startsWith('vd')) return 'virtio';
  if (dev.startsWith('sd')) return 'scsi';
  if (dev.startsWith('hd')) return 'ide';
  throw new Error(`no default bus for target dev ${dev}`);
}

export function diskXml(d: TestDisk): string {
  const type = d.type ?? 'file';
  const device = d.device ?? 'disk';
  const drv = [`name='qemu'`, `type='${d.format}'`];
  if (d.cache) drv.push(`cache='${d.cache}'`);
  if (d.io) drv.push(`io='${d.io}'`);
  if (d.discard) drv.push(`discard='${d.discard}'`);
  if (d.detectZeroes) drv.push(`detect_zeroes='${d.detectZeroes}'`);
  const src = type === 'block' ? `dev='${xmlEscape(d.path)}'` : `file='${xmlEscape(d.path)}'`;
  return [
    `    <disk type='${type}' device='${device}'>`,
    `      <driver ${drv.join(' ')}/>`,
    `      <source ${src}/>`,
    `      <target dev='${d.dev}' bus='${d.bus ?? busOf(d.dev)}'/>`,
    d.readonly ? '      <readonly/>' : '',
    d.shareable ? '      <shareable/>' : '',
    d.serial ? `      <serial>${xmlEscape(d.serial)}</serial>` : '',
    d.bootOrder ? `      <boot order='${d.bootOrder}'/>` : '',
    '    </disk>',
  ]
    .filter(Boolean)
    .join('\n');
}

/** The XML of a small TCG domain (type 'qemu', no network): it sits in the BIOS when started. */
export function domainXml(spec: DomainSpec): string {
  const scsi = spec.disks.some((d) => (d.bus ?? busOf(d.dev)) === 'scsi') ? "    <controller type='scsi' model='virtio-scsi'/>\n" : '';
  return `<domain type='qemu'>
  <name>${xmlEscape(spec.name)}</name>
  <memory unit='MiB'>${spec.memoryMiB ?? 128}</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
${spec.disks.map(diskXml).join('\n')}
${scsi}${spec.extraDiskXml ?? ''}${spec.vnc ? "    <graphics type='vnc' listen='127.0.0.1' autoport='yes'/>\n" : ''}    <memballoon model='none'/>
  </devices>
</domain>
`;
}

/** Defines the domain (`virsh define`) and returns the XML it defined. */
export function defineDomain(spec: DomainSpec): string {
  const xml = domainXml(spec);
  const dir = mkdtempSync(join(tmpdir(), 'blocksmith-domain-'));
  try {
    const file = join(dir, `${spec.name}.xml`);
    writeFileSync(file, xml);
    virsh(['define', file], { uri: spec.uri });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return xml;
}

/**
 * Cleanup for afterEach: destroys the domain if it runs and undefines it
 * (with its NVRAM, managed save and snapshot metadata). Only test domains
 * ("bs-test-..."): never another domain of the host. Never throws when the
 * domain is already gone.
 */
export function destroyAndUndefine(name: string, uri?: string): void {
  if (!name.startsWith('bs-test-')) throw new Error(`destroyAndUndefine: ${name} is not a test domain (bs-test-...)`);
  if (domainState(name, uri) === undefined) return;
  virsh(['destroy', name], { uri, allowFail: true });
  const r = virsh(['undefine', '--nvram', '--managed-save', '--snapshots-metadata', '--checkpoints-metadata', name], { uri, allowFail: true });
  if (r.code !== 0 && domainState(name, uri) !== undefined && !/not persistent|transient/i.test(r.stderr)) {
    throw new Error(`virsh undefine ${name}: ${r.stderr.trim()}`);
  }
}

export interface CephLibvirtUser {
  /** "libvirt": the <auth username=...>. */
  user: string;
  /** A keyring file holding only client.libvirt (mode 0600). */
  keyring: string;
  /** The base64 key; never print it. */
  key: string;
}

/**
 * client.libvirt on the test cluster with `mon 'profile rbd' osd 'profile rbd
 * pool=POOL'` (created once; a later call with another pool adds it).
 */
export function cephLibvirtUser(conf: string, pool: string, id = 'libvirt'): CephLibvirtUser {
  const entity = `client.${id}`;
  const exists = spawnSync('ceph', ['-c', conf, 'auth', 'get', entity, '--format', 'json'], { encoding: 'utf8', timeout: 60_000, env: toolEnv() });
  if (exists.status !== 0) {
    ceph(conf, ['auth', 'get-or-create', entity, 'mon', 'profile rbd', 'osd', `profile rbd pool=${pool}`]);
  } else {
    const caps = (JSON.parse(exists.stdout) as { caps: Record<string, string> }[])[0]?.caps ?? {};
    const osd = caps.osd ?? '';
    const pools = osd.split(',').map((s) => s.trim()).filter(Boolean);
    if (!pools.includes(`profile rbd pool=${pool}`)) {
      ceph(conf, ['auth', 'caps', entity, 'mon', 'profile rbd', 'osd', [...pools, `profile rbd pool=${pool}`].join(', ')]);
    }
  }
  const key = ceph(conf, ['auth', 'get-key', entity]).trim();
  // Beside the cluster's conf; written whole then renamed (parallel files write the same content).
  const keyring = join(dirname(conf), `${entity}.keyring`);
  const tmp = `${keyring}.${process.pid}.tmp`;
  writeFileSync(tmp, `[${entity}]\n\tkey = ${key}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, keyring);
  return { user: id, keyring, key };
}

export interface SecretOptions {
  uri?: string;
  /** Define it with this UUID (the same secret on both nodes of a migration). */
  uuid?: string;
  /** Usage name; default 'client.libvirt secret bs-test-RUN' (this run's). */
  usage?: string;
}

/**
 * A libvirt secret of usage type ceph holding `key` (base64, as `ceph auth
 * get-key` prints it); returns its UUID. An existing secret of the same usage
 * name (by default one this run created) is reused and its value replaced. The value goes through a 0600 temp
 * file (`secret-set-value --file`), never a command line.
 */
export function defineCephSecret(key: string, opts: SecretOptions | string = {}): string {
  const o: SecretOptions = typeof opts === 'string' ? { uri: opts } : opts;
  // Per run by default: libvirtd is shared with other runs (and admins), and
  // a secret of the same usage name holding another cluster's key must not
  // be overwritten.
  const usage = o.usage ?? `client.libvirt secret ${(inject('libvirtDomainPrefix') ?? 'bs-test-').replace(/-$/, '')}`;
  const dir = mkdtempSync(join(tmpdir(), 'blocksmith-secret-'));
  try {
    let uuid = virsh(['secret-list'], { uri: o.uri })
      .stdout.split('\n')
      .map((l) => l.trim().match(/^([0-9a-f-]{36})\s+ceph\s+(.*)$/))
      .find((m) => m && m[2]!.trim() === usage)?.[1];
    if (uuid && o.uuid && uuid !== o.uuid) throw new Error(`a ceph secret named '${usage}' exists with another UUID (${uuid})`);
    if (!uuid) {
      const file = join(dir, 'secret.xml');
      const uuidXml = o.uuid ? `  <uuid>${o.uuid}</uuid>\n` : '';
      writeFileSync(file, `<secret ephemeral='no' private='no'>\n${uuidXml}  <usage type='ceph'>\n    <name>${xmlEscape(usage)}</name>\n  </usage>\n</secret>\n`);
      const out = virsh(['secret-define', file], { uri: o.uri }).stdout;
      uuid = out.match(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/)?.[0];
      if (!uuid) throw new Error(`virsh secret-define printed no UUID: ${out.trim()}`);
      // Secrets this run created on the main node: the global teardown removes them.
      const base = inject('libvirtBase');
      if ((o.uri ?? MAIN_URI) === MAIN_URI && base) appendFileSync(join(base, 'secrets'), `${uuid}\n`);
    }
    const valueFile = join(dir, 'value');
    writeFileSync(valueFile, key, { mode: 0o600 });
    virsh(['secret-set-value', uuid, '--file', valueFile], { uri: o.uri });
    return uuid;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Removes a secret (cleanup; never throws). */
export function undefineSecret(uuid: string, uri?: string): void {
  virsh(['secret-undefine', uuid], { uri, allowFail: true });
}

/** The monitors' v1 (msgr1) addresses from a ceph.conf's `mon host` ("[v2:IP:P2,v1:IP:P1]"). */
export function monV1Hosts(conf: string): { host: string; port: number }[] {
  const line = readFileSync(conf, 'utf8').split('\n').find((l) => /^\s*mon[ _]host\s*=/.test(l));
  if (!line) throw new Error(`${conf}: no mon host`);
  return [...line.matchAll(/v1:([0-9.]+):(\d+)/g)].map((m) => ({ host: m[1]!, port: Number(m[2]) }));
}

/**
 * A <disk type='network'> for rbd POOL/IMAGE with cephx auth, and one <host>
 * per monitor, or <config file=...> (a conf QEMU, running as libvirt-qemu,
 * can read).
 */
export function rbdDiskXml(opts: { pool: string; image: string; hosts?: { host: string; port: number }[]; configFile?: string; user: string; secretUuid: string; dev: string; bus?: string }): string {
  return [
    `    <disk type='network' device='disk'>`,
    `      <driver name='qemu' type='raw'/>`,
    `      <auth username='${xmlEscape(opts.user)}'>`,
    `        <secret type='ceph' uuid='${opts.secretUuid}'/>`,
    `      </auth>`,
    `      <source protocol='rbd' name='${xmlEscape(`${opts.pool}/${opts.image}`)}'>`,
    ...(opts.hosts ?? []).map((h) => `        <host name='${h.host}' port='${h.port}'/>`),
    ...(opts.configFile ? [`        <config file='${xmlEscape(opts.configFile)}'/>`] : []),
    `      </source>`,
    `      <target dev='${opts.dev}' bus='${opts.bus ?? busOf(opts.dev)}'/>`,
    `    </disk>`,
    '',
  ].join('\n');
}

/** A second libvirt node (test/libvirt/node.sh): its own libvirtd, reachable at `uri`. */
export interface SecondNode {
  /** qemu+tcp://127.0.0.1:PORT/system */
  uri: string;
  /** Its private state (node.sh's DIR); logs under log/. */
  dir: string;
  /** Destroys its domains, kills exactly its daemons and QEMUs, removes its dirs. */
  stop(): void;
}

export async function startSecondNode(): Promise<SecondNode> {
  const base = mkdtempSync('/var/tmp/blocksmith-libvirt-node-');
  const dir = join(base, 'node');
  const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn('bash', [nodeScript, 'start', dir], { stdio: ['ignore', 'pipe', 'pipe'], env: toolEnv() });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (e) => resolve({ code: -1, stdout, stderr: e.message }));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  const stop = () => {
    spawnSync('bash', [nodeScript, 'stop', dir], { stdio: 'ignore', timeout: 60_000, env: toolEnv() });
    rmSync(base, { recursive: true, force: true });
  };
  if (r.code !== 0) {
    stop();
    throw new Error(`a second libvirt node could not start: ${r.stderr.trim()}`);
  }
  return { uri: r.stdout.trim().split('\n').pop()!, dir, stop };
}
