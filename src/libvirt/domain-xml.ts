// A libvirt domain's XML: which disks it has, which of them `migrate` moves
// to RBD (and why the others stay), and the rewrite of a file or block disk
// into an RBD network disk that keeps everything else the guest sees
// (target, bus, address, boot order, serial, cache/io/discard settings).
import { DOMParser, XMLSerializer, type Document, type Element } from '@xmldom/xmldom';
import { BlocksmithError } from '../api/errors.js';
import { parseMonHosts, type RbdTarget } from '../api/rbd.js';

export interface DomainXml {
  doc: Document;
  name: string;
  uuid: string;
}

export interface DomainDisk {
  element: Element;
  /** <disk type=...>: file, block, network, volume, ... */
  type: string;
  /** <disk device=...>: disk, cdrom, floppy, lun. */
  device: string;
  /** <target dev=...>, e.g. vda. */
  target: string;
  /** The file or block device (type file/block), or the network name (type network). */
  source?: string;
  /** <driver type=...>: raw, qcow2, ... */
  format?: string;
}

export interface DiskPlanEntry {
  disk: DomainDisk;
  /** Why the disk stays where it is; undefined when it moves. */
  leftBecause?: string;
}

function fail(message: string, path?: string): never {
  throw new BlocksmithError(message, { code: 'ERR_DOMAIN_XML', path });
}

function child(e: Element, tag: string): Element | undefined {
  for (let n = e.firstChild; n; n = n.nextSibling) if (n.nodeType === 1 && (n as Element).tagName === tag) return n as Element;
  return undefined;
}

function children(e: Element, tag: string): Element[] {
  const out: Element[] = [];
  for (let n = e.firstChild; n; n = n.nextSibling) if (n.nodeType === 1 && (n as Element).tagName === tag) out.push(n as Element);
  return out;
}

/** Parses a domain's XML; `where` names it in errors (a file, or the domain). */
export function parseDomainXml(xml: string, where: string): DomainXml {
  let doc: Document;
  try {
    doc = new DOMParser({ onError: (level, msg) => { if (level !== 'warning') throw new Error(msg); } }).parseFromString(xml, 'text/xml');
  } catch (err) {
    fail(`${where}: not well-formed XML: ${(err as Error).message.split('\n')[0]}`, where);
  }
  const root = doc.documentElement;
  if (!root || root.tagName !== 'domain') fail(`${where}: not a libvirt domain (the root element is <${root?.tagName ?? ''}>, not <domain>)`, where);
  const name = child(root, 'name')?.textContent?.trim() ?? '';
  if (name === '') fail(`${where}: the domain has no <name>`, where);
  return { doc, name, uuid: child(root, 'uuid')?.textContent?.trim() ?? '' };
}

/** The <disk> elements of <devices>, in document order. */
export function domainDisks(d: DomainXml): DomainDisk[] {
  const devices = child(d.doc.documentElement!, 'devices');
  if (!devices) return [];
  return children(devices, 'disk').map((element) => {
    const source = child(element, 'source');
    const type = element.getAttribute('type') ?? 'file';
    return {
      element,
      type,
      device: element.getAttribute('device') ?? 'disk',
      target: child(element, 'target')?.getAttribute('dev') ?? '',
      source: source?.getAttribute(type === 'block' ? 'dev' : type === 'network' ? 'name' : 'file') ?? undefined,
      format: child(element, 'driver')?.getAttribute('type') ?? undefined,
    };
  });
}

/** Whether `migrate` moves a disk, and if not, why (in words for the plan). */
export function planDisk(disk: DomainDisk): DiskPlanEntry {
  const e = disk.element;
  const why = (leftBecause: string): DiskPlanEntry => ({ disk, leftBecause });
  if (disk.device !== 'disk') return why(`a ${disk.device}, not a disk`);
  if (disk.type === 'network') {
    const protocol = child(e, 'source')?.getAttribute('protocol') ?? '';
    return why(`already on the network (${protocol}${disk.source ? ` ${disk.source}` : ''})`);
  }
  if (disk.type !== 'file' && disk.type !== 'block') return why(`a disk of type '${disk.type}' (only file and block disks move)`);
  if (!disk.source) return why('has no source (an empty drive)');
  if (child(e, 'readonly')) return why('read-only');
  if (child(e, 'shareable')) return why('shared with other domains (<shareable/>)');
  if (child(e, 'transient')) return why('transient (its writes are thrown away)');
  if (disk.target === '') return why('has no <target dev>');
  const format = disk.format ?? 'raw';
  if (format !== 'raw' && format !== 'qcow2') return why(`format '${format}' (only raw and qcow2 move)`);
  return { disk };
}

export interface RbdDiskSource {
  /** pool[/namespace]/image, as libvirt writes it. */
  name: string;
  /** One <host> per monitor; or, with configFile, <config file=...> instead. */
  hosts: { name: string; port: number }[];
  configFile?: string;
  /** Ceph client id without "client.". */
  user: string;
  secretUuid: string;
}

function textIndentOf(e: Element): string {
  const prev = e.previousSibling;
  if (prev && prev.nodeType === 3) {
    const m = /\n([ \t]*)$/.exec(prev.nodeValue ?? '');
    if (m) return m[1]!;
  }
  return '';
}

/**
 * Turns a file/block <disk> into <disk type='network'> on RBD, in place:
 * the source, its backing chain and any old auth are replaced, the driver
 * becomes raw (the image holds the guest's bytes, whatever the file's format
 * was); every other child and attribute stays as it was.
 */
export function rewriteDiskToRbd(disk: DomainDisk, rbd: RbdDiskSource): void {
  const e = disk.element;
  const doc = e.ownerDocument!;
  const indent = textIndentOf(e) + '  ';
  e.setAttribute('type', 'network');
  const driver = child(e, 'driver');
  if (driver) driver.setAttribute('type', 'raw');
  const old = child(e, 'source');
  for (const tag of ['backingStore', 'auth']) for (const c of children(e, tag)) removeWithIndent(c);

  const source = doc.createElement('source');
  source.setAttribute('protocol', 'rbd');
  source.setAttribute('name', rbd.name);
  const add = (parent: Element, el: Element, depth: number) => {
    parent.appendChild(doc.createTextNode(`\n${indent}${'  '.repeat(depth)}`));
    parent.appendChild(el);
  };
  if (rbd.configFile) {
    const config = doc.createElement('config');
    config.setAttribute('file', rbd.configFile);
    add(source, config, 1);
  } else {
    for (const h of rbd.hosts) {
      const host = doc.createElement('host');
      host.setAttribute('name', h.name);
      host.setAttribute('port', String(h.port));
      add(source, host, 1);
    }
  }
  const auth = doc.createElement('auth');
  auth.setAttribute('username', rbd.user);
  const secret = doc.createElement('secret');
  secret.setAttribute('type', 'ceph');
  secret.setAttribute('uuid', rbd.secretUuid);
  add(auth, secret, 2);
  auth.appendChild(doc.createTextNode(`\n${indent}  `));
  add(source, auth, 1);
  source.appendChild(doc.createTextNode(`\n${indent}`));
  if (old) e.replaceChild(source, old);
  else {
    // After the driver (or first), on a line of its own.
    const at = driver ? driver.nextSibling : e.firstChild;
    e.insertBefore(doc.createTextNode(`\n${indent}`), at);
    e.insertBefore(source, at);
  }
}

function removeWithIndent(el: Element): void {
  const prev = el.previousSibling;
  if (prev && prev.nodeType === 3 && /^\s*$/.test(prev.nodeValue ?? '')) prev.parentNode?.removeChild(prev);
  el.parentNode?.removeChild(el);
}

/**
 * A <disk> on RBD standing alone: the element `virsh blockcopy --xml` takes,
 * and what `rbd import --libvirt-xml` prints. `driver`: the <driver>
 * attributes (type is raw whatever is given); `target`: <target dev bus>.
 */
export function rbdDiskXml(rbd: RbdDiskSource, options: { driver?: Record<string, string>; target?: { dev: string; bus: string } } = {}): string {
  const doc = new DOMParser().parseFromString("<disk type='file' device='disk'/>", 'text/xml');
  const e = doc.documentElement!;
  const driver = doc.createElement('driver');
  for (const [k, v] of Object.entries({ name: 'qemu', ...options.driver })) driver.setAttribute(k, v);
  e.appendChild(doc.createTextNode('\n  '));
  e.appendChild(driver);
  if (options.target) {
    const target = doc.createElement('target');
    target.setAttribute('dev', options.target.dev);
    target.setAttribute('bus', options.target.bus);
    e.appendChild(doc.createTextNode('\n  '));
    e.appendChild(target);
  }
  e.appendChild(doc.createTextNode('\n'));
  const disk: DomainDisk = { element: e, type: 'file', device: 'disk', target: options.target?.dev ?? '' };
  rewriteDiskToRbd(disk, rbd);
  return new XMLSerializer().serializeToString(e) + '\n';
}

/** The <driver> attributes of a disk, as written. */
export function driverAttributes(disk: DomainDisk): Record<string, string> {
  const driver = child(disk.element, 'driver');
  const out: Record<string, string> = {};
  if (!driver) return out;
  for (let i = 0; i < driver.attributes.length; i++) {
    const a = driver.attributes.item(i)!;
    out[a.name] = a.value;
  }
  return out;
}

export function serializeDomain(d: DomainXml): string {
  const s = new XMLSerializer().serializeToString(d.doc);
  return s.endsWith('\n') ? s : s + '\n';
}

/** A deep copy that can be rewritten without touching the original. */
export function cloneDomain(d: DomainXml): DomainXml {
  return parseDomainXml(serializeDomain(d), d.name);
}

/**
 * The libvirt <disk> element for an RBD image, ready for `virsh edit` or
 * `virsh attach-device` (`rbd import --libvirt-xml`): one <host> per monitor
 * of `monHost` (a ceph.conf mon_host value), cephx auth with the secret.
 */
export function libvirtDiskXml(t: RbdTarget, monHost: string, options: { user?: string; secretUuid?: string; dev?: string } = {}): string {
  return rbdDiskXml(
    {
      name: `${t.pool}/${t.namespace ? `${t.namespace}/` : ''}${t.image}`,
      hosts: parseMonHosts(monHost),
      user: (options.user || t.user || 'admin').replace(/^client\./, ''),
      secretUuid: options.secretUuid ?? 'REPLACE-WITH-LIBVIRT-SECRET-UUID',
    },
    { driver: { type: 'raw', cache: 'writeback', discard: 'unmap' }, target: { dev: options.dev ?? 'vda', bus: 'virtio' } },
  );
}
