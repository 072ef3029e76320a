// `blocksmith migrate`: a libvirt domain's file and block disks onto Ceph RBD
// in one command, the admins' recipe end to end. Offline: the sparse,
// verified import of each disk, then the domain redefined with RBD network
// disks (same UUID). Live on one host: `virsh blockcopy` onto images of the
// same size, pivot, then the zero regions QEMU's mirror wrote are reclaimed.
// Live to another node: `virsh migrate --copy-storage-all` onto the images.
// Every check comes before the first change; the old XML is saved first and
// the old files are never touched.
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { AbortError, BlocksmithError, InvalidArgumentError } from './errors.js';
import { info } from './extents.js';
import { parseAllowBacking, type AllowBacking } from './image-format.js';
import {
  copyToRbd,
  createRbdImage,
  formatRbdSpec,
  monitorsFromMonmap,
  parseMonHosts,
  parseRbdPoolSpec,
  rbdCluster,
  rbdInfo,
  removeRbdImage,
  sparsifyRbd,
  type RbdTarget,
} from './rbd.js';
import type { Progress } from '../seam/job.js';
import { writeNewFile } from '../output/output-file.js';
import {
  cloneDomain,
  driverAttributes,
  rbdDiskXml,
  domainDisks,
  parseDomainXml,
  planDisk,
  rewriteDiskToRbd,
  serializeDomain,
  type DomainDisk,
  type DomainXml,
  type RbdDiskSource,
} from '../libvirt/domain-xml.js';
import { lineDiff } from '../libvirt/line-diff.js';
import { cephSecrets, cephSecretUsage, createCephSecret, findCephSecrets, keyFromKeyrings, secretValue } from '../libvirt/ceph-secret.js';
import { jobPercent, virsh } from '../libvirt/virsh.js';

/** Progress of the disk being worked on (bytesDone of bytesTotal), and which of how many it is. */
export interface MigrateProgress extends Progress {
  /** Target dev (vda); '*' while `virsh migrate` copies all disks at once. */
  disk: string;
  /** 1-based. */
  diskNumber: number;
  diskCount: number;
  step: 'import' | 'copy' | 'migrate' | 'reclaim';
}

export interface MigrateOptions {
  /** Where the images go: rbd:POOL[/NAMESPACE][:id=USER][:conf=PATH][:keyring=PATH], or the parsed form (image ''). */
  to: string | RbdTarget;
  /** libvirt connection URI. Default: virsh's ($LIBVIRT_DEFAULT_URI). */
  uri?: string;
  /** Read the domain's XML from this file instead of libvirt (it is still defined through libvirt). */
  xmlFile?: string;
  /** Move a running domain without stopping it (virsh blockcopy, or virsh migrate with destUri). */
  live?: boolean;
  /** With live: migrate to this libvirt node (virsh migrate --live --persistent --copy-storage-all). */
  destUri?: string;
  /** With destUri: virsh migrate's --migrateuri and --listen-address. */
  migrateUri?: string;
  listenAddress?: string;
  /** Print the plan, change nothing. */
  dryRun?: boolean;
  /** New image names by target dev (default DOMAIN-DEV). */
  names?: Record<string, string>;
  /** The image name when exactly one disk moves. */
  bareName?: string;
  /** Create the libvirt secret from the client's keyring when none exists. */
  createSecret?: boolean;
  /** Use this libvirt secret (usage type ceph). */
  secretUuid?: string;
  /** Write <config file=PATH/> into the disks instead of one <host> per monitor. */
  cephConfigFile?: string;
  /** Directory for the saved old XML. Default: the working directory. */
  saveDir?: string;
  /** Offline: read each image back and compare (default true). */
  verify?: boolean;
  /** Offline: RBD writes in flight per import. */
  parallel?: number;
  /** qcow2 disks: which backing files may be followed (see AllowBacking). */
  allowBacking?: AllowBacking;
  signal?: AbortSignal;
  onProgress?: (p: MigrateProgress) => void;
}

export interface MigratedDisk {
  /** Target dev (vda). */
  target: string;
  /** The file or block device it was on. */
  source: string;
  format: 'raw' | 'qcow2';
  /** Virtual size in bytes (the image's size). */
  size: number;
  /** rbd:POOL/[NS/]IMAGE */
  image: string;
  /** Offline: bytes written; dry run: data bytes found in the source. */
  dataBytes?: number;
  /** Offline: the image was read back and equals the source. */
  verified?: boolean;
  /** RBD bytes used by the image when done (existing objects). */
  usedBytes?: number;
  /** Live: how the zero regions the copy wrote were given back. */
  reclaim?: { method: string; usedBefore: number; usedAfter: number };
  seconds?: number;
}

export interface DiskLeftAlone {
  target: string;
  device: string;
  type: string;
  source?: string;
  reason: string;
}

export interface MigrateReport {
  domain: string;
  uuid: string;
  mode: 'offline' | 'live' | 'live-to-node';
  dryRun: boolean;
  pool: string;
  namespace?: string;
  /** Ceph client id (without "client.") the disks authenticate as. */
  user: string;
  /** The libvirt secret the disks name; created: made by this run (dry run: would be). */
  secret: { uuid: string; usage: string; created: boolean };
  /** <host> lines written (empty with configFile). */
  monitors: { name: string; port: number }[];
  configFile?: string;
  disks: MigratedDisk[];
  leftAlone: DiskLeftAlone[];
  /** The domain's XML before the move (absent in a dry run). */
  savedXml?: string;
  /** The domain XML's changes, unified-diff style. */
  xmlDiff: string;
  destUri?: string;
  seconds: number;
  warnings: string[];
}

const IMAGE_NAME = /^[A-Za-z0-9_.+-][A-Za-z0-9_.+=-]*$/;

function refuse(message: string, code: string, path?: string): never {
  throw new BlocksmithError(message, { code, path });
}

// --- Reading the domain -------------------------------------------------------

interface LoadedDomain {
  /** The persistent definition (or the file's XML). */
  config: DomainXml;
  /** As it runs now (live moves), with the running disks' sources. */
  running?: DomainXml;
  /** virsh domstate; undefined when libvirt has no such domain (an XML file not defined yet). */
  state?: string;
  persistent: boolean;
}

async function domainState(name: string, uri?: string): Promise<string | undefined> {
  try {
    return (await virsh(['domstate', name], { uri, subject: name })).trim();
  } catch (err) {
    if (/failed to get domain|Domain not found/i.test((err as Error).message)) return undefined;
    throw err;
  }
}

async function loadDomain(domain: string, o: MigrateOptions): Promise<LoadedDomain> {
  let config: DomainXml;
  if (o.xmlFile) {
    let text: string;
    try {
      text = await readFile(o.xmlFile, 'utf8');
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      refuse(`cannot read the domain XML '${o.xmlFile}': ${e.code ?? e.message}`, e.code ?? 'EIO', o.xmlFile);
    }
    config = parseDomainXml(text, o.xmlFile);
    if (config.name !== domain) refuse(`${o.xmlFile} defines domain '${config.name}', not '${domain}'`, 'EINVAL', o.xmlFile);
  } else {
    config = parseDomainXml(await virsh(['dumpxml', '--inactive', domain], { uri: o.uri, subject: domain }), domain);
  }
  const state = await domainState(domain, o.uri);
  let persistent = true;
  let running: DomainXml | undefined;
  if (state !== undefined && state !== 'shut off') {
    const dominfo = await virsh(['dominfo', domain], { uri: o.uri, subject: domain });
    persistent = /^Persistent:\s+yes/m.test(dominfo);
    if (o.live) running = parseDomainXml(await virsh(['dumpxml', ...(o.destUri ? ['--migratable'] : []), domain], { uri: o.uri, subject: domain }), domain);
  }
  return { config, running, state, persistent };
}

// --- The plan -----------------------------------------------------------------------

interface PlannedDisk {
  disk: DomainDisk;
  target: RbdTarget;
  format: 'raw' | 'qcow2';
}

interface Move extends PlannedDisk {
  /** Virtual size: known from QEMU (live), or once imported. */
  size: () => number;
}

function planMoves(d: DomainXml, to: RbdTarget, names: Record<string, string>): { moves: PlannedDisk[]; leftAlone: DiskLeftAlone[] } {
  const moves: PlannedDisk[] = [];
  const leftAlone: DiskLeftAlone[] = [];
  const taken = new Map<string, string>();
  for (const entry of domainDisks(d).map(planDisk)) {
    const disk = entry.disk;
    if (entry.leftBecause) {
      leftAlone.push({ target: disk.target, device: disk.device, type: disk.type, source: disk.source, reason: entry.leftBecause });
      continue;
    }
    const image = names[disk.target] ?? `${d.name}-${disk.target}`;
    if (!IMAGE_NAME.test(image)) throw new InvalidArgumentError(`'${image}' is not a usable RBD image name (letters, digits, '_', '.', '+', '-', '=')`);
    const other = taken.get(image);
    if (other) throw new InvalidArgumentError(`disks ${other} and ${disk.target} would both go to image '${image}'`);
    taken.set(image, disk.target);
    moves.push({ disk, target: { ...to, image }, format: (disk.format ?? 'raw') as 'raw' | 'qcow2' });
  }
  for (const dev of Object.keys(names)) {
    if (!moves.some((m) => m.disk.target === dev)) throw new InvalidArgumentError(`--name ${dev}=...: the domain has no disk ${dev} that moves`);
  }
  return { moves, leftAlone };
}

function rbdName(t: RbdTarget): string {
  return `${t.pool}/${t.namespace ? `${t.namespace}/` : ''}${t.image}`;
}

// --- The secret ----------------------------------------------------------------------

interface SecretChoice {
  uuid: string;
  usage: string;
  /** Create it (with this key) before the disks need it. */
  create?: { key: string };
}

async function chooseSecret(user: string, keyringPath: string, o: MigrateOptions, uri: string | undefined): Promise<SecretChoice> {
  const keyring = await keyFromKeyrings(user, keyringPath);
  const candidates = o.secretUuid
    ? (await cephSecrets(uri)).filter((s) => s.uuid === o.secretUuid!.toLowerCase())
    : await findCephSecrets(user, uri);
  if (o.secretUuid && candidates.length === 0) refuse(`libvirt has no secret ${o.secretUuid} of usage type ceph${uri ? ` on ${uri}` : ''}`, 'ENOENT', o.secretUuid);
  if (candidates.length > 0) {
    // A secret must hold this client's key, or QEMU could not connect. With
    // the key at hand, the one holding it wins; a private secret cannot be
    // read back and is trusted; one that holds another key is never used.
    if (!keyring) return candidates[0]!;
    let wrong: { uuid: string; usage: string } | undefined;
    let unreadable: { uuid: string; usage: string } | undefined;
    for (const c of candidates) {
      const value = await secretValue(c.uuid, uri);
      if (value === keyring.key) return c;
      if (value === undefined) unreadable ??= c;
      else wrong ??= c;
    }
    if (unreadable) return unreadable;
    refuse(`libvirt secret ${wrong!.uuid} (${wrong!.usage}) holds another key than client.${user}'s in ${keyring.file}: QEMU could not connect with it`, 'EKEYREJECTED', wrong!.uuid);
  }
  if (!o.createSecret) {
    refuse(
      `libvirt${uri ? ` on ${uri}` : ''} has no secret of usage type ceph for client.${user}: --create-secret makes one from the keyring, or give --secret-uuid`,
      'ENOENT',
    );
  }
  if (!keyring) refuse(`--create-secret: no key for client.${user} in the keyring files (${keyringPath || 'none configured'})`, 'ENOENT');
  return { uuid: '', usage: cephSecretUsage(user), create: { key: keyring.key } };
}

async function ensureSecret(s: SecretChoice, user: string, uri: string | undefined): Promise<{ uuid: string; usage: string; created: boolean }> {
  if (!s.create) return { uuid: s.uuid, usage: s.usage, created: false };
  const uuid = await createCephSecret(user, s.create.key, uri);
  return { uuid, usage: s.usage, created: true };
}

// --- Steps that change things ------------------------------------------------------

function stamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/** Saves the domain's XML as it was, a new file (never over another). */
async function saveOldXml(d: DomainXml, saveDir: string): Promise<string> {
  const path = resolve(saveDir, `${d.name}.before-rbd.${stamp()}.xml`);
  await writeNewFile(path, serializeDomain(d), { what: 'saved domain XML' });
  return path;
}

async function withTempFile<T>(name: string, text: string, use: (path: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'blocksmith-migrate-'));
  try {
    const path = join(dir, name);
    await writeFile(path, text, { mode: 0o600, flag: 'wx' });
    return await use(path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `virsh define` of `d`; the domain keeps its UUID. */
async function defineDomain(d: DomainXml, uri: string | undefined): Promise<void> {
  await withTempFile(`${d.name}.xml`, serializeDomain(d), (path) => virsh(['define', path], { uri, subject: d.name }));
}

// --- The three ways --------------------------------------------------------------

interface Context {
  domain: string;
  o: MigrateOptions;
  loaded: LoadedDomain;
  moves: Move[];
  rbdSource: (m: PlannedDisk) => RbdDiskSource;
  report: MigrateReport;
  progress: (disk: string, step: MigrateProgress['step'], p: Progress) => void;
}

async function migrateOffline(c: Context): Promise<void> {
  const { o, report } = c;
  const created: RbdTarget[] = [];
  try {
    for (const m of c.moves) {
      const t0 = Date.now();
      const r = await copyToRbd(m.disk.source!, m.target, {
        format: m.format,
        verify: o.verify !== false,
        parallel: o.parallel,
        allowBacking: parseAllowBacking(o.allowBacking),
        signal: o.signal,
        onProgress: (p) => c.progress(m.disk.target, 'import', p),
      });
      created.push(m.target);
      const disk = diskOf(report, m);
      Object.assign(disk, { size: r.size, dataBytes: r.dataBytes, verified: r.verified, seconds: (Date.now() - t0) / 1000 });
      report.warnings.push(...r.warnings);
    }
  } catch (err) {
    // The domain was not changed: the images this run made go too.
    const { removed, left } = await removeImages(created);
    throw withNote(err, created.length === 0 ? undefined : left.length > 0 ? `could not remove ${left.join(', ')}` : `removed the images already imported (${removed.join(', ')})`);
  }
  const next = cloneDomain(c.loaded.config);
  for (const m of c.moves) rewriteDiskToRbd(domainDisks(next).find((d) => d.target === m.disk.target)!, c.rbdSource(m));
  try {
    report.savedXml = await saveOldXml(c.loaded.config, o.saveDir ?? '.');
    await defineDomain(next, o.uri);
  } catch (err) {
    // Not redefined: the domain is as it was, so the images go (a retry must not find them taken).
    const { removed, left } = await removeImages(created);
    throw withNote(err, `the domain was not changed; ${left.length > 0 ? `could not remove ${left.join(', ')}` : `removed ${removed.join(', ')}`}`);
  }
  await checkDefined(c.domain, c.loaded.config.uuid, o.uri);
}

async function checkDefined(domain: string, uuid: string, uri?: string): Promise<void> {
  if (!uuid) return;
  const now = (await virsh(['domuuid', domain], { uri, subject: domain })).trim();
  if (now.toLowerCase() !== uuid.toLowerCase()) refuse(`after define, domain ${domain} has UUID ${now}, not ${uuid}`, 'ERR_LIBVIRT', domain);
}

/** Removes images this run created (cleanup after a failure): which went, and which could not. */
async function removeImages(targets: RbdTarget[]): Promise<{ removed: string[]; left: string[] }> {
  const removed: string[] = [];
  const left: string[] = [];
  for (const t of targets) await removeRbdImage(t).then(() => removed.push(formatRbdSpec(t)), () => left.push(formatRbdSpec(t)));
  return { removed, left };
}

/** The report's entry of a moving disk. */
function diskOf(report: MigrateReport, m: PlannedDisk): MigratedDisk {
  return report.disks.find((d) => d.target === m.disk.target)!;
}

function withNote(err: unknown, note: string | undefined): unknown {
  if (!note) return err;
  if (err instanceof AbortError) return new AbortError('stopped', { note, cause: err.cause });
  if (err instanceof BlocksmithError) return new BlocksmithError(`${err.message}; ${note}`, { code: err.code, errno: err.errno, syscall: err.syscall, path: err.path });
  return err;
}

async function diskSize(domain: string, dev: string, uri?: string): Promise<number> {
  const out = await virsh(['domblkinfo', domain, dev], { uri, subject: `${domain} ${dev}` });
  const m = /^Capacity:\s+(\d+)/m.exec(out);
  if (!m) refuse(`virsh domblkinfo ${domain} ${dev} printed no capacity`, 'ERR_LIBVIRT', domain);
  return Number(m[1]);
}

/** The zero regions a live copy wrote as data, given back while the VM runs (its one watch is allowed). */
async function reclaim(c: Context, m: Move): Promise<void> {
  const r = await sparsifyRbd(m.target, {
    allowWatchers: 1,
    signal: c.o.signal,
    onProgress: (p) => c.progress(m.disk.target, 'reclaim', p),
  });
  const disk = diskOf(c.report, m);
  disk.reclaim = { method: r.method, usedBefore: r.usedBefore, usedAfter: r.usedAfter };
  disk.usedBytes = r.usedAfter;
  // Its warnings say why Ceph's own sparsify ran under the VM: the method field says that here.
}

async function migrateLiveHere(c: Context): Promise<void> {
  const { o, report, domain } = c;
  const running = c.loaded.running!;
  report.savedXml = await saveOldXml(c.loaded.persistent ? c.loaded.config : running, o.saveDir ?? '.');
  const pivoted: Move[] = [];
  let current: Move | undefined;
  try {
    for (const m of c.moves) {
      current = m;
      await createRbdImage(m.target, m.size(), { signal: o.signal });
      // What `virsh blockcopy --xml` reads: the type, the driver and the source.
      const xml = rbdDiskXml(c.rbdSource(m), { driver: driverAttributes(m.disk) });
      await withTempFile(`${m.disk.target}.xml`, xml, (path) =>
        virsh(['blockcopy', domain, m.disk.target, '--xml', path, '--reuse-external', '--wait', '--pivot', '--transient-job', '--verbose'], {
          uri: o.uri,
          subject: `${domain} ${m.disk.target}`,
          signal: o.signal,
          onLine: (line) => {
            const pct = jobPercent(line);
            if (pct !== undefined) c.progress(m.disk.target, 'copy', { bytesDone: Math.round((pct / 100) * m.size()), bytesTotal: m.size() });
          },
        }),
      );
      pivoted.push(m);
      current = undefined;
    }
  } catch (err) {
    const notes: string[] = [];
    if (current) {
      // The copy job of this disk may still run (Ctrl-C stops virsh, not the job).
      await virsh(['blockjob', domain, current.disk.target, '--abort'], { uri: o.uri }).catch(() => undefined);
      const { left } = await removeImages([current.target]);
      notes.push(left.length === 0 ? `${current.disk.target} stays on ${current.disk.source} (its image was removed)` : `could not remove ${left[0]}`);
    }
    if (pivoted.length > 0) {
      if (c.loaded.persistent) await switchConfig(c, pivoted).catch((e: Error) => notes.push(`the saved config was not switched: ${e.message}`));
      notes.push(`already on RBD: ${pivoted.map((m) => `${m.disk.target} (${formatRbdSpec(m.target)})`).join(', ')}`);
    }
    throw withNote(err, notes.join('; ') || undefined);
  }
  if (c.loaded.persistent) await switchConfig(c, pivoted);
  for (const m of c.moves) await reclaim(c, m);
}

/** The persistent definition gets the moved disks too, so the next boot uses RBD. */
async function switchConfig(c: Context, moved: Move[]): Promise<void> {
  const next = cloneDomain(c.loaded.config);
  for (const m of moved) {
    const disk = domainDisks(next).find((d) => d.target === m.disk.target);
    if (disk) rewriteDiskToRbd(disk, c.rbdSource(m));
  }
  await defineDomain(next, c.o.uri);
}

async function migrateLiveToNode(c: Context): Promise<void> {
  const { o, report, domain } = c;
  const running = c.loaded.running!;
  report.savedXml = await saveOldXml(c.loaded.persistent ? c.loaded.config : running, o.saveDir ?? '.');
  const dest = cloneDomain(running);
  for (const m of c.moves) rewriteDiskToRbd(domainDisks(dest).find((d) => d.target === m.disk.target)!, c.rbdSource(m));
  const created: RbdTarget[] = [];
  try {
    for (const m of c.moves) {
      await createRbdImage(m.target, m.size(), { signal: o.signal });
      created.push(m.target);
    }
    const total = c.moves.reduce((s, m) => s + m.size(), 0);
    await withTempFile(`${domain}.xml`, serializeDomain(dest), (path) =>
      virsh(
        [
          'migrate',
          '--live',
          '--persistent',
          '--copy-storage-all',
          '--verbose',
          '--xml',
          path,
          ...(o.migrateUri ? ['--migrateuri', o.migrateUri] : []),
          ...(o.listenAddress ? ['--listen-address', o.listenAddress] : []),
          domain,
          o.destUri!,
        ],
        {
          uri: o.uri,
          subject: domain,
          signal: o.signal,
          onLine: (line) => {
            const pct = jobPercent(line);
            if (pct !== undefined) c.progress('*', 'migrate', { bytesDone: Math.round((pct / 100) * total), bytesTotal: total });
          },
        },
      ),
    );
  } catch (err) {
    // Still running here on its files: the images were not used.
    const { removed, left } = await removeImages(created);
    throw withNote(err, left.length > 0 ? `could not remove ${left.join(', ')}` : removed.length > 0 ? `the domain still runs here on its files; removed ${removed.join(', ')}` : undefined);
  }
  for (const m of c.moves) await reclaim(c, m);
}

// --- Entry points ------------------------------------------------------------------

/** The modes' preconditions on the domain's state: one line when they do not hold. */
function checkState(domain: string, loaded: LoadedDomain, o: MigrateOptions): void {
  if (!o.live && loaded.state !== undefined && loaded.state !== 'shut off') {
    refuse(`domain ${domain} is ${loaded.state}: shut it down first, or move it while it runs with --live`, 'EBUSY', domain);
  }
  if (o.live && loaded.state !== 'running' && loaded.state !== 'paused') {
    refuse(`domain ${domain} is ${loaded.state ?? 'not defined'}: --live moves a running domain (run without --live for an offline import)`, 'EINVAL', domain);
  }
}

/** The disks that move (named) and those that stay; none to move is an error. */
function planDomain(domain: string, source: DomainXml, to: RbdTarget, o: MigrateOptions): { moves: PlannedDisk[]; leftAlone: DiskLeftAlone[] } {
  let planned = planMoves(source, to, o.names ?? {});
  if (o.bareName !== undefined) {
    if (planned.moves.length !== 1) throw new InvalidArgumentError(`--name ${o.bareName}: ${planned.moves.length} disks move; name each with --name DEV=IMAGE`);
    planned = planMoves(source, to, { [planned.moves[0]!.disk.target]: o.bareName });
  }
  if (planned.moves.length === 0) {
    const why = planned.leftAlone.map((l) => `${l.target || l.device} is ${l.reason}`).join('; ');
    refuse(`domain ${domain} has no disk to move: ${why || 'it has no disks'}`, 'ENOENT', domain);
  }
  return planned;
}

interface Preflight {
  user: string;
  monitors: { name: string; port: number }[];
  secret: SecretChoice;
}

/** Before anything changes: the pool opens with this key, no name is taken, the monitors are known, a secret is there. */
async function preflight(to: RbdTarget, moves: PlannedDisk[], o: MigrateOptions): Promise<Preflight> {
  const facts = await rbdCluster(to, moves.map((m) => m.target.image), { signal: o.signal });
  const taken = facts.existing;
  if (taken.length > 0) {
    const several = taken.length > 1;
    refuse(
      `image${several ? 's' : ''} ${taken.map((n) => formatRbdSpec({ ...to, image: n })).join(', ')} already exist${several ? '' : 's'}: choose other names with --name DEV=IMAGE, or remove ${several ? 'them' : 'it'}`,
      'EEXIST',
    );
  }
  const monitors = o.cephConfigFile ? [] : monitorsFromMonmap(facts.monmapJson);
  if (!o.cephConfigFile && monitors.length === 0) monitors.push(...parseMonHosts(facts.monHost));
  if (!o.cephConfigFile && monitors.length === 0) refuse("cannot tell the cluster's monitors (no mon dump, no mon_host): give --ceph-config FILE", 'ENOENT');
  const secret = await chooseSecret(facts.user, to.keyring || facts.keyring, o, o.destUri ?? o.uri);
  return { user: facts.user, monitors, secret };
}

/** Sizes known before the move: from QEMU (live), or a scan with the data bytes (dry run); offline ones come from the import. */
async function knownSizes(domain: string, moves: Move[], sizes: Map<string, number>, report: MigrateReport, o: MigrateOptions): Promise<void> {
  for (const m of moves) {
    const disk = diskOf(report, m);
    if (o.live) sizes.set(m.disk.target, await diskSize(domain, m.disk.target, o.uri));
    else if (o.dryRun) {
      const i = await info(m.disk.source!, { format: m.format, signal: o.signal });
      sizes.set(m.disk.target, i.virtualSize);
      disk.dataBytes = i.dataBytes;
    }
    disk.size = sizes.get(m.disk.target) ?? 0;
  }
}

/**
 * Moves the file and block disks of libvirt domain `domain` to RBD images in
 * `options.to`. See MigrateOptions; the report says what was done (or, with
 * dryRun, what would be).
 */
export async function migrate(domain: string, options: MigrateOptions): Promise<MigrateReport> {
  const t0 = Date.now();
  const o = options;
  if (!domain) throw new InvalidArgumentError('migrate needs a domain name');
  if (o.destUri && !o.live) throw new InvalidArgumentError('--dest-uri moves a running domain: it needs --live');
  if ((o.migrateUri || o.listenAddress) && !o.destUri) throw new InvalidArgumentError('--migrate-uri and --listen-address apply with --dest-uri only');
  const to: RbdTarget = typeof o.to === 'string' ? parseRbdPoolSpec(o.to) : { ...o.to, image: '' };
  if (o.signal?.aborted) throw new AbortError(undefined, { cause: o.signal.reason });

  const loaded = await loadDomain(domain, o);
  checkState(domain, loaded, o);
  const mode: MigrateReport['mode'] = o.live ? (o.destUri ? 'live-to-node' : 'live') : 'offline';
  const { moves: plain, leftAlone } = planDomain(domain, loaded.running ?? loaded.config, to, o);
  const pre = await preflight(to, plain, o);

  const sizes = new Map<string, number>();
  const moves: Move[] = plain.map((m) => ({ ...m, size: () => sizes.get(m.disk.target) ?? 0 }));
  const report: MigrateReport = {
    domain,
    uuid: loaded.config.uuid,
    mode,
    dryRun: !!o.dryRun,
    pool: to.pool,
    ...(to.namespace ? { namespace: to.namespace } : {}),
    user: pre.user,
    secret: { uuid: pre.secret.uuid || '(created by the move)', usage: pre.secret.usage, created: !!pre.secret.create },
    monitors: pre.monitors,
    ...(o.cephConfigFile ? { configFile: o.cephConfigFile } : {}),
    disks: moves.map((m) => ({ target: m.disk.target, source: m.disk.source!, format: m.format, size: 0, image: formatRbdSpec(m.target) })),
    leftAlone,
    xmlDiff: '',
    ...(o.destUri ? { destUri: o.destUri } : {}),
    seconds: 0,
    warnings: [],
  };
  await knownSizes(domain, moves, sizes, report, o);

  const rbdSourceWith = (uuid: string) => (m: PlannedDisk): RbdDiskSource => ({
    name: rbdName(m.target),
    hosts: pre.monitors,
    configFile: o.cephConfigFile,
    user: pre.user,
    secretUuid: uuid,
  });
  const diffWith = (uuid: string) => {
    const next = cloneDomain(loaded.config);
    for (const m of moves) {
      const disk = domainDisks(next).find((d) => d.target === m.disk.target);
      if (disk) rewriteDiskToRbd(disk, rbdSourceWith(uuid)(m));
    }
    return lineDiff(serializeDomain(loaded.config), serializeDomain(next), [`${domain} (now)`, `${domain} (on RBD)`]);
  };
  if (o.dryRun) {
    report.xmlDiff = diffWith(pre.secret.uuid || 'NEW-SECRET-UUID');
    report.seconds = (Date.now() - t0) / 1000;
    return report;
  }

  const secret = await ensureSecret(pre.secret, pre.user, o.destUri ?? o.uri);
  report.secret = secret;
  report.xmlDiff = diffWith(secret.uuid);
  const ctx: Context = {
    domain,
    o,
    loaded,
    moves,
    rbdSource: rbdSourceWith(secret.uuid),
    report,
    progress: (disk, step, p) => {
      const diskNumber = disk === '*' ? moves.length : moves.findIndex((m) => m.disk.target === disk) + 1;
      o.onProgress?.({ disk, diskNumber, diskCount: moves.length, step, bytesDone: p.bytesDone, bytesTotal: p.bytesTotal });
    },
  };
  if (mode === 'offline') {
    await migrateOffline(ctx);
    for (const m of moves) {
      const used = await rbdInfo(m.target);
      const disk = diskOf(report, m);
      disk.usedBytes = used.used;
      disk.size = used.size;
    }
  } else if (mode === 'live') {
    await migrateLiveHere(ctx);
  } else {
    await migrateLiveToNode(ctx);
  }
  report.seconds = (Date.now() - t0) / 1000;
  return report;
}

export interface RollbackReport {
  domain: string;
  /** The saved XML that was defined again. */
  savedXml: string;
  /** What the user must know: the old files hold the disks as they were when moved. */
  note: string;
  seconds: number;
}

/**
 * Defines a domain again from the XML migrate saved (the newest
 * DOMAIN.before-rbd.*.xml in saveDir, or `savedXml`). The domain must be shut
 * off; the RBD images stay (remove them with `rbd rm` when done).
 */
export async function rollbackMigration(domain: string, options: { savedXml?: string; saveDir?: string; uri?: string } = {}): Promise<RollbackReport> {
  const t0 = Date.now();
  let path = options.savedXml;
  if (!path) {
    const dir = resolve(options.saveDir ?? '.');
    const prefix = `${domain}.before-rbd.`;
    const saved = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.startsWith(prefix) && f.endsWith('.xml')).sort();
    if (saved.length === 0) refuse(`no saved XML of ${domain} (${prefix}*.xml) in ${dir}`, 'ENOENT', dir);
    path = join(dir, saved[saved.length - 1]!);
  }
  const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => refuse(`cannot read '${path}': ${err.code ?? err.message}`, err.code ?? 'EIO', path));
  const saved = parseDomainXml(text, path);
  if (saved.name !== domain) refuse(`${path} is domain '${saved.name}', not '${domain}'`, 'EINVAL', path);
  const state = await domainState(domain, options.uri);
  if (state !== undefined && state !== 'shut off') refuse(`domain ${domain} is ${state}: shut it down before going back to its files`, 'EBUSY', domain);
  if (state !== undefined && saved.uuid) {
    const uuid = (await virsh(['domuuid', domain], { uri: options.uri, subject: domain })).trim();
    if (uuid.toLowerCase() !== saved.uuid.toLowerCase()) refuse(`${path} has UUID ${saved.uuid}, but domain ${domain} is ${uuid}`, 'EINVAL', path);
  }
  await defineDomain(saved, options.uri);
  return {
    domain,
    savedXml: path,
    note: 'the disks are the old files as they were when moved: what the domain wrote on RBD since is only in the RBD images (kept)',
    seconds: (Date.now() - t0) / 1000,
  };
}
