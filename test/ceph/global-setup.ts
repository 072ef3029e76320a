// vitest globalSetup: one throwaway Ceph cluster per `vitest run`, for the
// RBD suites. It is started in the background (cluster.sh, ~5 s) so files
// that do not use Ceph never wait for it; RBD suites wait for it through
// cephConf() in test/helpers/ceph.ts, which fails them with the reason when
// the cluster did not start (never a silent skip). Teardown stops it.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Directory of this run's cluster start: cluster/ (the cluster), start.out, start.err, start.status. */
    cephBase: string;
  }
}

// The daemons never run under the ASan runtime `npm run test:asan` preloads for node.
function withoutPreload(): NodeJS.ProcessEnv {
  const { LD_PRELOAD: _preload, ...env } = process.env;
  return env;
}

const script = join(dirname(fileURLToPath(import.meta.url)), 'cluster.sh');

export default function setup(project: TestProject): () => Promise<void> {
  // bluestore needs O_DIRECT: /var/tmp, never tmpfs.
  const base = mkdtempSync('/var/tmp/blocksmith-ceph-');
  // QEMU started by libvirt runs as libvirt-qemu: a domain whose RBD source
  // names this cluster's ceph.conf (<config file=...>) must be able to reach
  // it (keyrings stay 0600 root; QEMU gets its key from a libvirt secret).
  chmodSync(base, 0o755);
  const out = openSync(join(base, 'start.out'), 'w');
  const err = openSync(join(base, 'start.err'), 'w');
  const child = spawn('bash', [script, 'start', join(base, 'cluster')], { stdio: ['ignore', out, err], env: withoutPreload() });
  closeSync(out);
  closeSync(err);
  const finished = new Promise<void>((resolve) => {
    const done = (status: string) => {
      writeFileSync(join(base, 'start.status'), status);
      resolve();
    };
    child.on('error', (e) => done(`error: ${e.message}`));
    child.on('close', (code, signal) => done(code === 0 ? '0' : `exited ${code ?? signal}`));
  });
  project.provide('cephBase', base);

  return async () => {
    // A start still running (a short run, or apt installing) is waited for, so
    // its daemons are known by their pid files and stopped, never orphaned.
    await finished;
    spawnSync('bash', [script, 'stop', join(base, 'cluster')], { stdio: 'inherit', env: withoutPreload() });
    rmSync(base, { recursive: true, force: true });
  };
}
