// Raw image <-> Ceph RBD through librbd (loaded at run time), on the same
// pipeline as sparsify: holes and zero blocks are never written.
import { InvalidArgumentError } from './errors.js';
import { runJob, type JobOptions } from '../seam/job.js';
import {
  native,
  type NativeRbdExportOptions,
  type NativeRbdExportReport,
  type NativeRbdImportOptions,
  type NativeRbdImportReport,
  type NativeRbdInfo,
  type NativeRbdSparsifyOptions,
  type NativeRbdSparsifyReport,
  type NativeRbdTarget,
  type NativeRbdCluster,
} from '../seam/native.js';
import { blockSizeOption, parseSizeIn, type SizesAsText } from './units.js';
import { parseAllowBacking, parseImageFormat } from './image-format.js';

export type RbdTarget = NativeRbdTarget;

/** True for qemu-style "rbd:..." strings. */
export function isRbdSpec(s: string): boolean {
  return s.startsWith('rbd:');
}

/** Applies qemu's ":id=USER:conf=PATH:keyring=PATH" options (after the path) to `t`. */
function applyRbdOptions(t: RbdTarget, opts: string[], spec: string): void {
  for (const opt of opts) {
    const eq = opt.indexOf('=');
    const key = eq < 0 ? opt : opt.slice(0, eq);
    const value = eq < 0 ? '' : opt.slice(eq + 1);
    if (!value) throw new InvalidArgumentError(`'${spec}': option '${opt}' needs a value`);
    if (key === 'id') t.user = value;
    else if (key === 'conf') t.conf = value;
    else if (key === 'keyring') t.keyring = value;
    else throw new InvalidArgumentError(`'${spec}': unknown option '${key}' (known: id, conf, keyring)`);
  }
}

/**
 * Parses qemu's syntax: rbd:pool[/namespace]/image[:id=USER][:conf=PATH][:keyring=PATH]
 * (also accepts "pool/image" without the prefix).
 */
export function parseRbdSpec(spec: string): RbdTarget {
  const body = spec.startsWith('rbd:') ? spec.slice(4) : spec;
  const [path, ...opts] = body.split(':');
  const parts = (path ?? '').split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === '')) {
    throw new InvalidArgumentError(`'${spec}' is not an RBD image: expected rbd:pool[/namespace]/image[:id=USER][:conf=PATH][:keyring=PATH]`);
  }
  const t: RbdTarget = parts.length === 3 ? { pool: parts[0]!, namespace: parts[1]!, image: parts[2]! } : { pool: parts[0]!, image: parts[1]! };
  applyRbdOptions(t, opts, spec);
  return t;
}

/** An RBD pool (where new images go): rbd:pool[/namespace][:id=USER][:conf=PATH][:keyring=PATH]; `image` is ''. */
export function parseRbdPoolSpec(spec: string): RbdTarget {
  const body = spec.startsWith('rbd:') ? spec.slice(4) : spec;
  const [path, ...opts] = body.split(':');
  const parts = (path ?? '').split('/');
  if (parts.length > 2 || parts.some((p) => p === '')) {
    throw new InvalidArgumentError(`'${spec}' is not an RBD pool: expected rbd:pool[/namespace][:id=USER][:conf=PATH][:keyring=PATH]`);
  }
  const t: RbdTarget = parts.length === 2 ? { pool: parts[0]!, namespace: parts[1]!, image: '' } : { pool: parts[0]!, image: '' };
  applyRbdOptions(t, opts, spec);
  return t;
}

export function formatRbdSpec(t: RbdTarget): string {
  return `rbd:${t.pool}/${t.namespace ? `${t.namespace}/` : ''}${t.image}`;
}

export interface CopyToRbdOptions extends JobOptions, SizesAsText<NativeRbdImportOptions, 'blockSize' | 'objectSize' | 'writeSize'> {}

export interface CopyFromRbdOptions extends JobOptions, SizesAsText<NativeRbdExportOptions, 'blockSize'> {}

export interface RbdImportReport extends NativeRbdImportReport {
  bytesPerSecond: number;
}

export async function copyToRbd(source: string, target: RbdTarget | string, options: CopyToRbdOptions = {}): Promise<RbdImportReport> {
  const t = typeof target === 'string' ? parseRbdSpec(target) : target;
  const blockSize = blockSizeOption(options.blockSize);
  const parallel = options.parallel;
  if (parallel !== undefined && (!Number.isInteger(parallel) || parallel < 1 || parallel > 1024))
    throw new InvalidArgumentError(`--parallel must be an integer from 1 to 1024, got ${options.parallel}`);
  const objectSize = options.objectSize === undefined ? undefined : parseSizeIn(options.objectSize, 'object size', { min: 4096, max: 2 ** 30, powerOfTwo: true });
  const writeSize = options.writeSize === undefined ? undefined : parseSizeIn(options.writeSize, 'write size', { min: 4096, max: 32 * 1024 * 1024, powerOfTwo: true });
  const allowBacking = parseAllowBacking(options.allowBacking);
  const r = await runJob(
    (onProgress) =>
      native.rbdImport(
        source,
        t,
        {
          blockSize,
          seekHole: options.seekHole,
          parallel,
          objectSize,
          writeSize,
          features: options.features,
          dataPool: options.dataPool,
          overwrite: options.overwrite,
          keepPartial: options.keepPartial,
          verify: options.verify,
          force: options.force,
          format: parseImageFormat(options.format),
          allowBacking,
        },
        onProgress,
      ),
    options,
  );
  return { ...r, bytesPerSecond: r.seconds > 0 ? Math.round(r.size / r.seconds) : 0 };
}

export async function copyFromRbd(
  source: RbdTarget | string,
  target: string,
  options: CopyFromRbdOptions = {},
): Promise<NativeRbdExportReport> {
  const s = typeof source === 'string' ? parseRbdSpec(source) : source;
  const blockSize = blockSizeOption(options.blockSize);
  return runJob((onProgress) => native.rbdExport(s, target, { blockSize, overwrite: options.overwrite }, onProgress), options);
}

export type RbdInfo = NativeRbdInfo;

/** Provisioned size and used bytes (existing objects) of an RBD image. */
export async function rbdInfo(target: RbdTarget | string, options: JobOptions = {}): Promise<RbdInfo> {
  const t = typeof target === 'string' ? parseRbdSpec(target) : target;
  return runJob((onProgress) => native.rbdInfo(t, onProgress), options);
}

export interface SparsifyRbdOptions extends JobOptions, SizesAsText<NativeRbdSparsifyOptions, 'blockSize'> {}

export type RbdSparsifyReport = NativeRbdSparsifyReport;

/**
 * Frees, in place, the objects of an RBD image that hold only zeros (e.g. after a live blockcopy, whose mirror
 * writes zero regions as data); content never changes. `allowWatchers`: how many other clients may have it open
 * (a running VM: 1; `Infinity`: any); with none, zero runs found by reading are discarded under the image's
 * exclusive lock, with some, Ceph's own sparsify runs (checked and zeroed per object on the OSDs). More: EBUSY.
 */
export async function sparsifyRbd(target: RbdTarget | string, options: SparsifyRbdOptions = {}): Promise<RbdSparsifyReport> {
  const t = typeof target === 'string' ? parseRbdSpec(target) : target;
  const blockSize = blockSizeOption(options.blockSize);
  const aw = options.allowWatchers;
  if (aw !== undefined && !(aw === Infinity || (Number.isInteger(aw) && aw >= 0)))
    throw new InvalidArgumentError(`allowWatchers must be a non-negative integer or Infinity, got ${aw}`);
  const parallel = options.parallel;
  if (parallel !== undefined && (!Number.isInteger(parallel) || parallel < 1 || parallel > 1024))
    throw new InvalidArgumentError(`--parallel must be an integer from 1 to 1024, got ${options.parallel}`);
  const allowWatchers = aw === undefined ? undefined : Math.min(aw, 0xffffffff);
  return runJob((onProgress) => native.rbdSparsify(t, { blockSize, dryRun: options.dryRun, allowWatchers, parallel }, onProgress), options);
}

/** Monitor addresses from a ceph.conf mon_host value, v1 (legacy) addresses preferred. */
export function parseMonHosts(monHost: string): { name: string; port: number }[] {
  const hosts: { name: string; port: number }[] = [];
  // Groups look like [v2:1.2.3.4:3300,v1:1.2.3.4:6789] or plain host[:port], separated by , ; or space.
  const groups = monHost.match(/\[[^\]]*\]|[^,;\s[\]]+/g) ?? [];
  for (const g of groups) {
    const addrs = g.replace(/^\[|\]$/g, '').split(',');
    const pick = addrs.find((a) => a.startsWith('v1:')) ?? addrs.find((a) => !a.startsWith('v2:')) ?? addrs[0];
    if (!pick) continue;
    const plain = pick.replace(/^v[12]:/, '').replace(/\/\d+$/, '');
    const m = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(plain);
    if (!m) continue;
    const defaultPort = pick.startsWith('v2:') ? 3300 : 6789;
    hosts.push({ name: m[1]!, port: m[2] ? Number(m[2]) : defaultPort });
  }
  return hosts;
}

export type RbdCluster = NativeRbdCluster;

/** Connects as `target` says (its pool must open) and tells which of `imageNames` exist there, with the cluster's facts. */
export async function rbdCluster(target: RbdTarget, imageNames: string[], options: JobOptions = {}): Promise<RbdCluster> {
  return runJob((onProgress) => native.rbdCluster(target, imageNames, onProgress), options);
}

/** Creates an empty image of exactly `size` bytes (never over an existing one: EEXIST). */
export async function createRbdImage(target: RbdTarget | string, size: number, options: JobOptions = {}): Promise<void> {
  const t = typeof target === 'string' ? parseRbdSpec(target) : target;
  await runJob((onProgress) => native.rbdCreate(t, size, onProgress), options);
}

/** Removes an image. */
export async function removeRbdImage(target: RbdTarget | string, options: JobOptions = {}): Promise<void> {
  const t = typeof target === 'string' ? parseRbdSpec(target) : target;
  await runJob((onProgress) => native.rbdRemove(t, onProgress), options);
}

/** The monitors of a `mon dump` (JSON), one address each, v1 preferred as QEMU's librbd reaches a bare host:port over v1. */
export function monitorsFromMonmap(json: string): { name: string; port: number }[] {
  let map: { mons?: { public_addrs?: { addrvec?: { type?: string; addr?: string }[] }; addr?: string }[] };
  try {
    map = JSON.parse(json) as typeof map;
  } catch {
    return [];
  }
  const hosts: { name: string; port: number }[] = [];
  for (const mon of map.mons ?? []) {
    const vec = mon.public_addrs?.addrvec ?? [];
    const addr = vec.find((a) => a.type === 'v1')?.addr ?? mon.addr?.replace(/\/\d+$/, '');
    const m = addr ? /^\[?([^\]]+?)\]?:(\d+)$/.exec(addr) : null;
    if (m) hosts.push({ name: m[1]!, port: Number(m[2]) });
  }
  return hosts;
}
