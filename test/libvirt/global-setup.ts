// vitest globalSetup: this host's libvirt (qemu:///system) for the migrate
// suites. host.sh starts virtlogd and libvirtd only when virsh does not
// answer (CI: a fresh machine without systemd), in the background so files
// that do not use libvirt never wait; suites wait through useLibvirt() in
// test/helpers/libvirt.ts, which fails them with the reason when libvirt is
// not there (never a silent skip). Teardown removes this run's leftover test
// domains (named with this run's prefix only) and the Ceph secrets the run
// created, and stops only the daemons
// host.sh started, by pid.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Directory of this run's libvirt check: start.out, start.err, start.status, started. */
    libvirtBase: string;
    /** Prefix of every test domain of this run ("bs-test-<hex>-"): teardown removes only these. */
    libvirtDomainPrefix: string;
  }
}

function withoutPreload(): NodeJS.ProcessEnv {
  const { LD_PRELOAD: _preload, ...env } = process.env;
  return env;
}

const script = join(dirname(fileURLToPath(import.meta.url)), 'host.sh');
const URI = 'qemu:///system';

function virsh(args: string[]): { status: number | null; stdout: string } {
  const r = spawnSync('virsh', ['-c', URI, ...args], { encoding: 'utf8', timeout: 30_000, env: withoutPreload() });
  return { status: r.status, stdout: r.stdout ?? '' };
}

export default function setup(project: TestProject): () => Promise<void> {
  const base = mkdtempSync('/tmp/blocksmith-libvirt-');
  const prefix = `bs-test-${randomBytes(3).toString('hex')}-`;
  const out = openSync(join(base, 'start.out'), 'w');
  const err = openSync(join(base, 'start.err'), 'w');
  const child = spawn('bash', [script, 'start', base], { stdio: ['ignore', out, err], env: withoutPreload() });
  closeSync(out);
  closeSync(err);
  let ok = false;
  const finished = new Promise<void>((resolve) => {
    const done = (status: string) => {
      ok = status === '0';
      writeFileSync(join(base, 'start.status'), status);
      resolve();
    };
    child.on('error', (e) => done(`error: ${e.message}`));
    child.on('close', (code, signal) => done(code === 0 ? '0' : `exited ${code ?? signal}`));
  });
  project.provide('libvirtBase', base);
  project.provide('libvirtDomainPrefix', prefix);

  return async () => {
    await finished;
    if (ok) {
      // Domains a failed test left behind: only this run's, by their prefix.
      const names = virsh(['list', '--all', '--name']).stdout.split('\n').map((s) => s.trim());
      for (const name of names.filter((n) => n.startsWith(prefix))) {
        virsh(['destroy', name]);
        virsh(['undefine', '--nvram', '--managed-save', '--snapshots-metadata', '--checkpoints-metadata', name]);
      }
      // Ceph secrets defineCephSecret() created in this run (test/helpers/libvirt.ts).
      let secrets: string[] = [];
      try {
        secrets = readFileSync(join(base, 'secrets'), 'utf8').split('\n').filter(Boolean);
      } catch {
        // none created
      }
      for (const uuid of new Set(secrets)) virsh(['secret-undefine', uuid]);
    }
    spawnSync('bash', [script, 'stop', base], { stdio: 'inherit', env: withoutPreload() });
    rmSync(base, { recursive: true, force: true });
  };
}
