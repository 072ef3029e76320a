// The libvirt secret (usage type ceph) that holds a Ceph client's key for
// QEMU: found among the defined secrets, or created from the client's
// keyring. The key goes to libvirt through a private temporary file, never a
// command line (where `ps` shows it) and never our output.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlocksmithError } from '../api/errors.js';
import { virsh } from './virsh.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The usage name blocksmith gives the secrets it creates (the one libvirt's documentation uses). */
export function cephSecretUsage(user: string): string {
  return `client.${user} secret`;
}

export interface CephSecret {
  uuid: string;
  usage: string;
}

/** Defined secrets of usage type ceph, from `virsh secret-list`. */
export async function cephSecrets(uri?: string): Promise<CephSecret[]> {
  const out = await virsh(['secret-list'], { uri });
  const found: CephSecret[] = [];
  for (const line of out.split('\n')) {
    const m = /^\s*([0-9a-f-]{36})\s+ceph\s+(.*?)\s*$/i.exec(line);
    if (m && UUID.test(m[1]!)) found.push({ uuid: m[1]!.toLowerCase(), usage: m[2]! });
  }
  return found;
}

/** The secrets whose usage names client.USER (as a whole word), in libvirt's order. */
export async function findCephSecrets(user: string, uri?: string): Promise<CephSecret[]> {
  const word = new RegExp(`(^|[^\\w.])client\\.${user.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[^\\w.])`);
  return (await cephSecrets(uri)).filter((s) => word.test(s.usage));
}

/** The value libvirt holds for a secret (base64), or undefined when it has none. Never printed. */
export async function secretValue(uuid: string, uri?: string): Promise<string | undefined> {
  try {
    return (await virsh(['secret-get-value', uuid], { uri, subject: uuid })).trim();
  } catch {
    return undefined;
  }
}

/**
 * The key of `client.USER` from the first keyring file in `searchPath` (the
 * config's comma/semicolon/space separated list) that has its section.
 */
export async function keyFromKeyrings(user: string, searchPath: string): Promise<{ key: string; file: string } | undefined> {
  for (const file of searchPath.split(/[,;\s]+/).filter((f) => f !== '')) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      continue;
    }
    let inSection = false;
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      const section = /^\[(.+)\]$/.exec(line);
      if (section) {
        inSection = section[1]!.trim() === `client.${user}`;
        continue;
      }
      const kv = /^key\s*=\s*(\S+)$/.exec(line);
      if (inSection && kv) return { key: kv[1]!, file };
    }
  }
  return undefined;
}

/** Defines a ceph secret for client.USER holding `key`; returns its UUID. */
export async function createCephSecret(user: string, key: string, uri?: string): Promise<string> {
  if (!/^[A-Za-z0-9+/=]+$/.test(key)) throw new BlocksmithError(`the keyring's key for client.${user} is not base64`, { code: 'EINVAL' });
  const dir = await mkdtemp(join(tmpdir(), 'blocksmith-secret-'));
  try {
    const xml = join(dir, 'secret.xml');
    const value = join(dir, 'value');
    await writeFile(xml, `<secret ephemeral='no' private='yes'>\n  <usage type='ceph'>\n    <name>${cephSecretUsage(user)}</name>\n  </usage>\n</secret>\n`, { mode: 0o600, flag: 'wx' });
    await writeFile(value, key, { mode: 0o600, flag: 'wx' });
    const out = await virsh(['secret-define', xml], { uri, subject: cephSecretUsage(user) });
    const uuid = /([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/i.exec(out)?.[1];
    if (!uuid) throw new BlocksmithError(`virsh secret-define printed no UUID: ${out.trim()}`, { code: 'ERR_LIBVIRT' });
    try {
      await virsh(['secret-set-value', uuid, '--file', value], { uri, subject: uuid });
    } catch (err) {
      await virsh(['secret-undefine', uuid], { uri }).catch(() => undefined);
      throw err;
    }
    return uuid.toLowerCase();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
