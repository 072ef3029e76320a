#!/usr/bin/env node
// `blocksmith migrate` (issue 18) against the admins' manual recipe: a shut-off
// libvirt domain with an 8 GiB VM-like raw disk and a 4 GiB qcow2 disk moved
// onto Ceph RBD; and the live path (`--live`) against the offline one.
//
//   node bench/migrate.bench.js [--reps 3] [--live-reps 1] [--fill 0.25] [--no-live] [--no-check] [--no-wait]
//
// Needs root (drop_caches, the cluster), libvirtd answering on
// qemu:///system, qemu-img with the rbd driver (qemu-block-extra).
//
// Inputs (bench/work/, gitignored), made once:
//   migrate-vda.raw    8 GiB: bench/make-images.js's makeVm (ext4 by `mke2fs -t ext4 -d` from real /usr
//                      trees, ~--fill of it file data), then `cp --sparse=never` (every block allocated)
//   migrate-vdb.qcow2  `qemu-img convert -f raw -O qcow2` of a 4 GiB makeVm image (migrate-vdb-src.raw):
//                      holds only its data clusters
// Their raw contents' sha256 (the qcow2 through `qemu-img convert -O raw`) and
// data bytes (`blocksmith info`) go to bench/work/migrate-images.json.
//
// Cluster: a throwaway single-node cluster (test/ceph/cluster.sh) started for
// the run and stopped at the end; a key `client.libvirt` (mon 'profile rbd',
// osd 'profile rbd pool=rbd') in a keyring file, and a libvirt secret of usage
// type ceph holding it. Its usage name does not say `client.libvirt`, so that
// no other secret lookup on this libvirtd picks it up; the runs name it with
// --secret-uuid (the machine may hold another `client.libvirt` secret).
//
// Domain: `migbench-vm`, type 'qemu' (TCG), 128 MiB, no network, vda (raw,
// virtio) and vdb (qcow2, virtio), defined on the main libvirtd.
//
// Offline runs, each cold (`sync; echo 3 > /proc/sys/vm/drop_caches`), the
// order rotating each repetition; between runs the domain is defined on its
// files again and the images are removed:
//   A   blocksmith migrate migbench-vm --to rbd:rbd:id=libvirt:conf=C:keyring=K --secret-uuid U
//       --save-dir DIR --json -q      (verify on: each image read back and compared)
//   A2  the same with --no-verify
//   B   the manual recipe: qemu-img convert -f raw -O rbd vda rbd:rbd/IMG:id=libvirt:keyring=K:conf=C,
//       the same with -f qcow2 for vdb, then `virsh define` of the edited XML (network disks,
//       one <host> per monitor, <auth> with the secret)
//   B2  the same with `qemu-img convert -W -m 16` (qemu-img's best tuning)
// Per run: wall seconds (and the client's CPU seconds, python3 wrapper as in
// rbd.bench.js), `rbd du` used bytes per image; on the first repetition
// `rbd export` of each image must equal its source. blocksmith's own report
// gives each disk's import (+ verify) seconds: the rest of its wall time is
// the checks before, the define and the used-bytes reads after.
//
// Live: the domain started (it sits in the BIOS under TCG), then
//   blocksmith migrate migbench-vm --to ... --live --json -q
// (virsh blockcopy of each disk onto an image of its size, pivot, the saved
// config switched, then the zeros the mirror wrote reclaimed): total wall
// time, used bytes after the reclaim (and before it, from the report).
//
// Goals (issue 18): offline migrate time <= 0.5x the manual recipe's, with
// the same used bytes or fewer (per image, summed). Information: against B2,
// verify's share (A - A2), live time and used bytes against offline (the
// tests' bound: used after the reclaim <= 1.02x offline).
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  GiB,
  MiB,
  ROOT,
  WORK_DIR,
  aptInstall,
  commandString,
  cpuMonitor,
  machineInfo,
  median,
  parseArgs,
  provenance,
  round,
  summarize,
  waitForQuiet,
  timeChild,
  writeResult,
} from './lib.js';
import { makeVm } from './make-images.js';

const usage = `usage: node bench/migrate.bench.js [--reps 3] [--live-reps 1] [--fill 0.25] [--no-live] [--no-check] [--no-wait]`;
const opts = parseArgs(
  process.argv.slice(2),
  {
    reps: { type: 'number', default: 3 },
    liveReps: { type: 'number', default: 1, min: 0 },
    fill: { type: 'number', default: 0.25, min: 0.01 },
    noLive: { type: 'boolean', default: false },
    noCheck: { type: 'boolean', default: false },
    noWait: { type: 'boolean', default: false },
  },
  usage,
);

const log = (msg) => process.stderr.write(`[migrate-bench] ${new Date().toISOString().slice(11, 19)} ${msg}\n`);
const CLI = path.join(ROOT, 'dist/cli/bin/blocksmith.js');
const DOMAIN = 'migbench-vm';
const URI = 'qemu:///system';

function run(cmd, args, { env = process.env, allowFail = false, input } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, input, maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  if (r.status !== 0 && !allowFail) throw new Error(`${commandString([cmd, ...args])} exited ${r.status}: ${(r.stderr || r.stdout).trim().slice(-2000)}`);
  return r;
}

const sha256File = (file) => run('sha256sum', [file]).stdout.split(/\s+/)[0];

// ---------------------------------------------------------------- inputs

const vda = path.join(WORK_DIR, 'migrate-vda.raw');
const vdbSrc = path.join(WORK_DIR, 'migrate-vdb-src.raw');
const vdb = path.join(WORK_DIR, 'migrate-vdb.qcow2');
const manifestPath = path.join(WORK_DIR, 'migrate-images.json');

function ensureInputs() {
  try {
    const m = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
    if (m.fill === opts.fill && fs.existsSync(vda) && fs.existsSync(vdb) && fs.statSync(vda).size === 8 * GiB) {
      log(`inputs present (${path.relative(ROOT, manifestPath)}), kept`);
      return m;
    }
  } catch {
    // none yet
  }
  fs.mkdirSync(WORK_DIR, { recursive: true });
  // Made earlier without a manifest (same recipe): described, not remade.
  const metaOf = (file) => {
    try {
      return JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch {
      return null;
    }
  };
  let vdaMeta = metaOf(path.join(WORK_DIR, 'migrate-vda.meta.json'));
  if (!vdaMeta || !fs.existsSync(vda) || fs.statSync(vda).size !== 8 * GiB) {
    log(`making ${path.relative(ROOT, vda)} (8 GiB, fill ${opts.fill})`);
    vdaMeta = makeVm(8 * GiB, opts.fill, vda);
  }
  let vdbMeta = metaOf(path.join(WORK_DIR, 'migrate-vdb.meta.json'));
  if (!vdbMeta || !fs.existsSync(vdb)) {
    log(`making ${path.relative(ROOT, vdb)} (4 GiB virtual)`);
    vdbMeta = makeVm(4 * GiB, opts.fill, vdbSrc);
    fs.rmSync(vdb, { force: true });
    run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', vdbSrc, vdb]);
  }
  // The qcow2's raw content, as the issue's check reads it.
  const tmp = fs.mkdtempSync('/var/tmp/migbench-raw-');
  let vdbSha;
  try {
    run('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', vdb, path.join(tmp, 'vdb.raw')]);
    vdbSha = sha256File(path.join(tmp, 'vdb.raw'));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const info = (file) => JSON.parse(run(process.execPath, [CLI, 'info', '--json', file]).stdout);
  const a = info(vda);
  const b = info(vdb);
  const m = {
    fill: opts.fill,
    made: new Date().toISOString(),
    vda: {
      path: path.relative(ROOT, vda),
      format: 'raw',
      size: fs.statSync(vda).size,
      allocated: fs.statSync(vda).blocks * 512,
      sha256: sha256File(vda),
      dataBytes: a.dataBytes,
      ...vdaMeta,
    },
    vdb: {
      path: path.relative(ROOT, vdb),
      format: 'qcow2',
      size: b.virtualSize,
      fileBytes: fs.statSync(vdb).size,
      sha256OfRaw: vdbSha,
      dataBytes: b.dataBytes,
      madeBy: `qemu-img convert -f raw -O qcow2 ${path.relative(ROOT, vdbSrc)} ${path.relative(ROOT, vdb)}`,
      ...vdbMeta,
    },
  };
  fs.writeFileSync(manifestPath, JSON.stringify(m, null, 2) + '\n');
  return m;
}

// ---------------------------------------------------------------- cluster, key, secret

function startCluster() {
  const dir = fs.mkdtempSync('/var/tmp/migbench-ceph-');
  const clusterDir = path.join(dir, 'cluster');
  const r = run('bash', [path.join(ROOT, 'test/ceph/cluster.sh'), 'start', clusterDir]);
  const conf = r.stdout.trim().split('\n').pop();
  const env = { ...process.env, CEPH_CONF: conf };
  const keyring = path.join(dir, 'client.libvirt.keyring');
  run('ceph', ['auth', 'get-or-create', 'client.libvirt', 'mon', 'profile rbd', 'osd', 'profile rbd pool=rbd', '-o', keyring], { env });
  const key = run('ceph', ['auth', 'print-key', 'client.libvirt'], { env }).stdout.trim();
  const monmap = JSON.parse(run('ceph', ['mon', 'dump', '--format', 'json'], { env }).stdout);
  // The v1 address of each monitor: what QEMU's <host> lines name.
  const monitors = monmap.mons.map((mon) => {
    const a = mon.public_addrs.addrvec.find((x) => x.type === 'v1').addr;
    const [, host, port] = /^\[?([^\]]+?)\]?:(\d+)$/.exec(a);
    return { host, port: Number(port) };
  });
  return {
    dir,
    conf,
    env,
    keyring,
    key,
    monitors,
    stop() {
      run('bash', [path.join(ROOT, 'test/ceph/cluster.sh'), 'stop', clusterDir], { allowFail: true });
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function defineSecret(key) {
  const dir = fs.mkdtempSync('/var/tmp/migbench-secret-');
  try {
    const usageName = `migbench-${process.pid} libvirt key`;
    // Our own UUID: known (and undefined at the end) whatever happens after the define.
    const uuid = randomUUID();
    fs.writeFileSync(path.join(dir, 's.xml'), `<secret ephemeral='no' private='yes'>\n  <uuid>${uuid}</uuid>\n  <usage type='ceph'>\n    <name>${usageName}</name>\n  </usage>\n</secret>\n`);
    fs.writeFileSync(path.join(dir, 'value'), key, { mode: 0o600 });
    virsh(['secret-define', path.join(dir, 's.xml')]);
    secret = { uuid, usageName };
    virsh(['secret-set-value', uuid, '--file', path.join(dir, 'value')]);
    return secret;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- the domain

const virshEnv = { ...process.env, LIBVIRT_DEFAULT_URI: URI };
const virsh = (args, o = {}) => run('virsh', ['-q', ...args], { env: virshEnv, ...o });
const DOMAIN_UUID = randomUUID();

function fileDisk(dev, file, format) {
  return `    <disk type='file' device='disk'>
      <driver name='qemu' type='${format}'/>
      <source file='${file}'/>
      <target dev='${dev}' bus='virtio'/>
    </disk>`;
}

/** The manual recipe's edit: what an admin writes per disk after `qemu-img convert -O rbd`. */
function rbdDisk(dev, image, cluster, secretUuid) {
  const hosts = cluster.monitors.map((m) => `        <host name='${m.host}' port='${m.port}'/>`).join('\n');
  return `    <disk type='network' device='disk'>
      <driver name='qemu' type='raw'/>
      <auth username='libvirt'>
        <secret type='ceph' uuid='${secretUuid}'/>
      </auth>
      <source protocol='rbd' name='rbd/${image}'>
${hosts}
      </source>
      <target dev='${dev}' bus='virtio'/>
    </disk>`;
}

function domainXml(disks) {
  return `<domain type='qemu'>
  <name>${DOMAIN}</name>
  <uuid>${DOMAIN_UUID}</uuid>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <boot dev='hd'/>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <devices>
${disks.join('\n')}
    <graphics type='vnc' autoport='yes' listen='127.0.0.1'/>
  </devices>
</domain>
`;
}

const IMAGES = { vda: `${DOMAIN}-vda`, vdb: `${DOMAIN}-vdb` };
let scratch; // a temp dir for XML files and saved XML

function domainState() {
  const r = virsh(['domstate', DOMAIN], { allowFail: true });
  return r.status === 0 ? r.stdout.trim() : null;
}

function rbdRm(env, image) {
  for (let i = 0; i < 30; i++) {
    const r = run('rbd', ['rm', '--no-progress', `rbd/${image}`], { env, allowFail: true });
    if (r.status === 0 || /No such file|does not exist/i.test(r.stderr)) return;
    // A watch of a QEMU just destroyed lingers until it times out.
    spawnSync('sleep', ['2']);
  }
  throw new Error(`cannot remove rbd/${image}`);
}

/** The domain on its files again, shut off; no images; no saved XML. */
function resetDomain(env) {
  const state = domainState();
  if (state !== null && state !== 'shut off') virsh(['destroy', DOMAIN]);
  if (state !== null) virsh(['undefine', DOMAIN]);
  const file = path.join(scratch, 'domain-files.xml');
  fs.writeFileSync(file, domainXml([fileDisk('vda', vda, 'raw'), fileDisk('vdb', vdb, 'qcow2')]));
  virsh(['define', file]);
  for (const image of Object.values(IMAGES)) rbdRm(env, image);
  const saved = path.join(scratch, 'saved');
  fs.rmSync(saved, { recursive: true, force: true });
  fs.mkdirSync(saved);
}

function cleanupDomain() {
  const state = domainState();
  if (state === null) return;
  if (state !== 'shut off') virsh(['destroy', DOMAIN], { allowFail: true });
  virsh(['undefine', DOMAIN], { allowFail: true });
}

// ---------------------------------------------------------------- measuring

const timed = (argv, env) => timeChild(argv, { env, stdout: true });

function dropCaches() {
  run('sync', []);
  fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
}

function usedBytes(env, image) {
  const j = JSON.parse(run('rbd', ['du', '--format', 'json', `rbd/${image}`], { env }).stdout);
  return j.images[0].used_size;
}

function exportSha(env, image) {
  const r = spawnSync('bash', ['-o', 'pipefail', '-c', `rbd export --no-progress rbd/${image} - | sha256sum`], { encoding: 'utf8', env });
  if (r.status !== 0) throw new Error(`rbd export rbd/${image}: ${r.stderr}`);
  return r.stdout.split(/\s+/)[0];
}

function domblklist() {
  return virsh(['domblklist', DOMAIN, '--inactive']).stdout.trim().split('\n').map((l) => l.trim().split(/\s+/));
}

// ---------------------------------------------------------------- the variants

function toSpec(cluster) {
  return `rbd:rbd:id=libvirt:conf=${cluster.conf}:keyring=${cluster.keyring}`;
}

function blocksmithArgv(cluster, secret, extra) {
  return [process.execPath, CLI, 'migrate', DOMAIN, '--to', toSpec(cluster), '--secret-uuid', secret.uuid, '--save-dir', path.join(scratch, 'saved'), ...extra, '--json', '-q'];
}

function qemuImgArgv(cluster, dev, tuned) {
  const src = dev === 'vda' ? vda : vdb;
  const fmt = dev === 'vda' ? 'raw' : 'qcow2';
  return ['qemu-img', 'convert', ...(tuned ? ['-W', '-m', '16'] : []), '-f', fmt, '-O', 'rbd', src, `rbd:rbd/${IMAGES[dev]}:id=libvirt:keyring=${cluster.keyring}:conf=${cluster.conf}`];
}

function runBlocksmith(cluster, secret, env, extra) {
  const t = timed(blocksmithArgv(cluster, secret, extra), env);
  const report = JSON.parse(t.stdout);
  const perDisk = Object.fromEntries(report.disks.map((d) => [d.target, { seconds: d.seconds, dataBytes: d.dataBytes, verified: d.verified, reportUsedBytes: d.usedBytes }]));
  const diskSeconds = report.disks.reduce((s, d) => s + (d.seconds ?? 0), 0);
  return {
    wall: t.wall,
    cpu: t.user + t.sys,
    steps: {
      importSeconds: diskSeconds,
      // checks before (domain, cluster, secret), saving the XML, define, domuuid, rbd info after; plus node's start
      restSeconds: t.wall - diskSeconds,
      reportSeconds: report.seconds,
    },
    perDisk,
    report,
  };
}

function runManual(cluster, secret, env, tuned) {
  const steps = {};
  let wall = 0;
  let cpu = 0;
  for (const dev of ['vda', 'vdb']) {
    const t = timed(qemuImgArgv(cluster, dev, tuned), env);
    steps[`convert ${dev}`] = t.wall;
    wall += t.wall;
    cpu += t.user + t.sys;
  }
  // The edited XML: written by hand in the recipe, here by the same template.
  const xmlFile = path.join(scratch, 'domain-rbd.xml');
  fs.writeFileSync(xmlFile, domainXml([rbdDisk('vda', IMAGES.vda, cluster, secret.uuid), rbdDisk('vdb', IMAGES.vdb, cluster, secret.uuid)]));
  const t = timed(['virsh', '-c', URI, 'define', xmlFile], env);
  steps.define = t.wall;
  wall += t.wall;
  cpu += t.user + t.sys;
  return { wall, cpu, steps };
}

const VARIANTS = {
  A: { label: 'blocksmith migrate (verify)', run: (c, s, e) => runBlocksmith(c, s, e, []) },
  B: { label: 'manual recipe: qemu-img convert x2 + virsh define', run: (c, s, e) => runManual(c, s, e, false) },
  A2: { label: 'blocksmith migrate --no-verify', run: (c, s, e) => runBlocksmith(c, s, e, ['--no-verify']) },
  B2: { label: 'manual recipe with qemu-img convert -W -m 16', run: (c, s, e) => runManual(c, s, e, true) },
};

function commandsOf(name) {
  const c = { conf: 'C', keyring: 'K' };
  const s = { uuid: 'SECRET-UUID' };
  const saved = scratch;
  scratch = 'DIR';
  try {
    if (name.startsWith('A')) return [commandString(blocksmithArgv(c, s, name === 'A2' ? ['--no-verify'] : [])).replace(process.execPath, 'node')];
    return [
      commandString(qemuImgArgv(c, 'vda', name === 'B2')),
      commandString(qemuImgArgv(c, 'vdb', name === 'B2')),
      `virsh define DOMAIN-RBD.xml   # the domain with both disks as <disk type='network'> rbd, <host> per monitor, <auth> + secret`,
    ];
  } finally {
    scratch = saved;
  }
}

/** After a run: used bytes per image; on the first repetition the images' content and the defined XML. */
function inspect(env, manifest, check) {
  const used = {};
  for (const [dev, image] of Object.entries(IMAGES)) used[dev] = usedBytes(env, image);
  const out = { used, usedTotal: used.vda + used.vdb };
  const list = domblklist();
  out.domblklist = list.map((l) => l.join(' '));
  out.definedOnRbd = ['vda', 'vdb'].every((dev) => list.some((l) => l[0] === dev && l[1] === `rbd/${IMAGES[dev]}`));
  if (check) {
    out.identical = {
      vda: exportSha(env, IMAGES.vda) === manifest.vda.sha256,
      vdb: exportSha(env, IMAGES.vdb) === manifest.vdb.sha256OfRaw,
    };
  }
  return out;
}

// ---------------------------------------------------------------- floors

/** What the disk and the cluster allow: a cold read of both inputs, and the cluster's write ceiling. */
function measureFloors(env) {
  const read = {};
  for (const [dev, file] of [['vda', vda], ['vdb', vdb]]) {
    dropCaches();
    read[dev] = timed(['dd', `if=${file}`, 'of=/dev/null', 'bs=4M', 'status=none'], env).wall;
  }
  const img = 'migbench-ceiling';
  run('rbd', ['create', '--size', String((4 * GiB) / MiB), `rbd/${img}`], { env });
  try {
    const total = 2 * GiB;
    const t = timed(['rbd', 'bench', '--io-type', 'write', '--io-size', '4M', '--io-threads', '16', '--io-total', String(total), `rbd/${img}`], env);
    return { coldReadSeconds: { ...read, total: read.vda + read.vdb }, writeCeilingBytesPerSecond: total / t.wall };
  } finally {
    rbdRm(env, img);
  }
}

// ---------------------------------------------------------------- main

if (process.getuid() !== 0) {
  console.error('migrate.bench.js needs root (drop_caches, the cluster, libvirt)');
  process.exit(2);
}
if (spawnSync('dpkg-query', ['-W', '-f=${Status}', 'qemu-block-extra'], { encoding: 'utf8' }).stdout?.includes('ok installed') !== true) {
  aptInstall(['qemu-block-extra'], log);
}
if (virsh(['version'], { allowFail: true }).status !== 0) {
  console.error(`libvirtd does not answer on ${URI} (start it: virtlogd -d; libvirtd -d)`);
  process.exit(2);
}
if (domainState() !== null) {
  console.error(`a domain ${DOMAIN} is defined already: undefine it first (it is this suite's)`);
  process.exit(2);
}

const manifest = ensureInputs();
log(`vda: ${manifest.vda.dataBytes} data bytes of ${manifest.vda.size}; vdb: ${manifest.vdb.dataBytes} of ${manifest.vdb.size} (qcow2 file ${manifest.vdb.fileBytes})`);
const cluster = startCluster();
const env = { ...virshEnv, CEPH_CONF: cluster.conf };
log(`cluster: ${cluster.conf}; monitors ${cluster.monitors.map((m) => `${m.host}:${m.port}`).join(', ')}`);
scratch = fs.mkdtempSync('/var/tmp/migbench-xml-');
let secret;
const runs = {};
const live = [];
const floors = [];
const t0 = Date.now();
let quiet = null;
try {
  secret = defineSecret(cluster.key);
  log(`libvirt secret ${secret.uuid} (${secret.usageName})`);
  quiet = opts.noWait ? null : await waitForQuiet({ maxBusy: 0.15, timeoutMs: 120_000, log });
  floors.push(measureFloors(env));
  log(`floors: ${JSON.stringify(floors[0])}`);
  const names = Object.keys(VARIANTS);
  for (let rep = 0; rep < opts.reps; rep++) {
    const order = names.map((_, i) => names[(i + rep) % names.length]);
    for (const name of order) {
      resetDomain(env);
      if (!opts.noWait) await waitForQuiet({ maxBusy: 0.15, timeoutMs: 15_000, log: () => {} });
      dropCaches();
      const mon = cpuMonitor();
      mon.start();
      const r = VARIANTS[name].run(cluster, secret, env);
      const noise = mon.stop();
      const seen = inspect(env, manifest, rep === 0 && !opts.noCheck);
      const entry = { rep, wallSeconds: r.wall, cpuSeconds: r.cpu, steps: r.steps, ...(r.perDisk ? { perDisk: r.perDisk } : {}), ...seen, ...noise };
      (runs[name] ??= []).push(entry);
      log(
        `rep ${rep} ${name}: ${r.wall.toFixed(2)} s (${Object.entries(r.steps).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}), used ${(seen.usedTotal / MiB).toFixed(1)} MiB` +
          `, on rbd: ${seen.definedOnRbd}` + (seen.identical ? `, identical: ${JSON.stringify(seen.identical)}` : ''),
      );
    }
  }
  floors.push(measureFloors(env));
  log(`floors: ${JSON.stringify(floors[1])}`);
  if (!opts.noLive) {
    for (let rep = 0; rep < opts.liveReps; rep++) {
      resetDomain(env);
      virsh(['start', DOMAIN]);
      // Let it reach the BIOS so the copy runs under a guest that is up.
      spawnSync('sleep', ['3']);
      dropCaches();
      const mon = cpuMonitor();
      mon.start();
      const r = runBlocksmith(cluster, secret, env, ['--live']);
      const noise = mon.stop();
      const state = domainState();
      const seen = inspect(env, manifest, false);
      const running = virsh(['domblklist', DOMAIN]).stdout.trim();
      const entry = {
        rep,
        wallSeconds: r.wall,
        cpuSeconds: r.cpu,
        stateAfter: state,
        runningDisks: running.split('\n').map((l) => l.trim().replace(/\s+/g, ' ')),
        reclaim: Object.fromEntries(r.report.disks.map((d) => [d.target, d.reclaim])),
        reportSeconds: r.report.seconds,
        ...seen,
        ...noise,
      };
      live.push(entry);
      log(`live rep ${rep}: ${r.wall.toFixed(2)} s, state after: ${state}, used ${(seen.usedTotal / MiB).toFixed(1)} MiB, reclaim ${JSON.stringify(entry.reclaim)}`);
      // The content, with the guest stopped (it sat in the BIOS and wrote nothing).
      if (rep === 0 && !opts.noCheck) {
        virsh(['destroy', DOMAIN]);
        entry.identical = {
          vda: exportSha(env, IMAGES.vda) === manifest.vda.sha256,
          vdb: exportSha(env, IMAGES.vdb) === manifest.vdb.sha256OfRaw,
        };
        log(`live rep ${rep}: identical ${JSON.stringify(entry.identical)}`);
      }
    }
  }
} finally {
  cleanupDomain();
  if (secret) virsh(['secret-undefine', secret.uuid], { allowFail: true });
  cluster.stop();
  fs.rmSync(scratch, { recursive: true, force: true });
}

// ---------------------------------------------------------------- results

const results = {};
for (const [name, list] of Object.entries(runs)) {
  const wall = summarize(list.map((r) => r.wallSeconds));
  const stepNames = Object.keys(list[0].steps);
  results[name] = {
    what: VARIANTS[name].label,
    commands: commandsOf(name),
    wall: Object.fromEntries(Object.entries(wall).map(([k, v]) => [k, round(v, 3)])),
    cpuSecondsMedian: round(median(list.map((r) => r.cpuSeconds)), 3),
    stepsMedianSeconds: Object.fromEntries(stepNames.map((s) => [s, round(median(list.map((r) => r.steps[s])), 3)])),
    usedBytes: { vda: Math.max(...list.map((r) => r.used.vda)), vdb: Math.max(...list.map((r) => r.used.vdb)), total: Math.max(...list.map((r) => r.usedTotal)) },
    definedOnRbd: list.every((r) => r.definedOnRbd),
    identical: list.find((r) => r.identical)?.identical ?? null,
    runs: list.map((r) => JSON.parse(JSON.stringify(r, (k, v) => (typeof v === 'number' ? round(v, 3) : v)))),
  };
}
const A = results.A;
// The least an offline move can take here: both inputs read cold, and the data written at the cluster's ceiling.
const dataBytes = manifest.vda.dataBytes + manifest.vdb.dataBytes;
const floorSummary = {
  what: 'cold dd of both inputs (bs=4M) before and after the repetitions; rbd bench --io-type write --io-size 4M --io-threads 16 --io-total 2G on a fresh image',
  coldReadSecondsMedian: round(median(floors.map((f) => f.coldReadSeconds.total)), 3),
  writeCeilingMiBPerSecondMedian: round(median(floors.map((f) => f.writeCeilingBytesPerSecond)) / MiB, 1),
  dataWriteSecondsAtCeiling: round(dataBytes / median(floors.map((f) => f.writeCeilingBytesPerSecond)), 3),
  runs: floors.map((f) => JSON.parse(JSON.stringify(f, (k, v) => (typeof v === 'number' ? round(v, 3) : v)))),
};
const B = results.B;
const ratio = (x, y) => round(x.wall.medianSeconds / y.wall.medianSeconds, 3);
const ratios = {
  'A/B time (goal <= 0.5)': ratio(A, B),
  'A/B2 time': ratio(A, results.B2),
  'A2/B time': ratio(results.A2, B),
  'A2/B2 time': ratio(results.A2, results.B2),
  'A/B used bytes': round(A.usedBytes.total / B.usedBytes.total, 4),
  'verify share of A (1 - A2/A)': round(1 - results.A2.wall.medianSeconds / A.wall.medianSeconds, 3),
};
const goals = [
  { name: 'offline migrate time / manual recipe time', target: '<= 0.5', value: ratios['A/B time (goal <= 0.5)'], met: ratios['A/B time (goal <= 0.5)'] <= 0.5 },
  { name: 'offline migrate used bytes <= manual recipe used bytes', target: `<= ${B.usedBytes.total}`, value: A.usedBytes.total, met: A.usedBytes.total <= B.usedBytes.total },
];
let liveSummary = null;
if (live.length > 0) {
  const wall = median(live.map((r) => r.wallSeconds));
  const used = Math.max(...live.map((r) => r.usedTotal));
  liveSummary = {
    command: commandsOf('A')[0].replace(' --json', ' --live --json'),
    wallSecondsMedian: round(wall, 3),
    usedBytesAfterReclaim: used,
    'live/offline time': round(wall / A.wall.medianSeconds, 3),
    'live/offline used bytes': round(used / A.usedBytes.total, 4),
    runs: live.map((r) => JSON.parse(JSON.stringify(r, (k, v) => (typeof v === 'number' ? round(v, 3) : v)))),
  };
  goals.push({
    name: 'live used bytes after the reclaim / offline used bytes (the tests\' bound)',
    target: '<= 1.02',
    value: liveSummary['live/offline used bytes'],
    met: liveSummary['live/offline used bytes'] <= 1.02,
  });
}

const result = {
  suite: 'migrate',
  ...provenance(),
  date: new Date().toISOString(),
  durationSeconds: round((Date.now() - t0) / 1000, 1),
  machine: machineInfo(),
  quietAtStart: quiet,
  cluster: 'test/ceph/cluster.sh: 1 mon, 1 bluestore OSD on a sparse file (same disk), cephx, 127.0.0.1, pool rbd size 1, 4 MiB objects; client.libvirt (profile rbd)',
  libvirt: `${URI}: domain ${DOMAIN}, type qemu (TCG), 128 MiB, vda raw + vdb qcow2 (virtio), no network`,
  secret: 'a libvirt ceph secret made for the run, named with --secret-uuid (its usage name avoids `client.libvirt`: another may exist)',
  inputs: manifest,
  cache: 'cold: sync + drop_caches before every run',
  floors: floorSummary,
  results,
  ratios,
  live: liveSummary,
  goals,
};
const file = writeResult('migrate', result);

console.log(`\nvariant  median s  (min-max)        CPU s   used MiB (vda+vdb)  identical`);
for (const name of Object.keys(VARIANTS)) {
  const r = results[name];
  console.log(
    `${name.padEnd(8)} ${r.wall.medianSeconds.toFixed(2).padStart(8)}  (${r.wall.minSeconds.toFixed(1)}-${r.wall.maxSeconds.toFixed(1)})`.padEnd(36) +
      `${r.cpuSecondsMedian.toFixed(2).padStart(6)}  ${(r.usedBytes.total / MiB).toFixed(1).padStart(10)}          ${JSON.stringify(r.identical)}   ${r.what}`,
  );
  console.log(`         steps: ${Object.entries(r.stepsMedianSeconds).map(([k, v]) => `${k} ${v}`).join(', ')}`);
}
console.log(`floors: cold read of both inputs ${floorSummary.coldReadSecondsMedian} s; write ceiling ${floorSummary.writeCeilingMiBPerSecondMedian} MiB/s (the data: ${floorSummary.dataWriteSecondsAtCeiling} s)`);
if (liveSummary) console.log(`live     ${liveSummary.wallSecondsMedian.toFixed(2).padStart(8)}  used after reclaim ${(liveSummary.usedBytesAfterReclaim / MiB).toFixed(1)} MiB`);
console.log('\nratios:', JSON.stringify(ratios, null, 1));
console.log('\ngoals:');
for (const g of goals) console.log(`  ${g.met ? 'met    ' : 'MISSED '} ${g.name}: ${g.value} (${g.target})`);
console.log(`\nwrote ${path.relative(ROOT, file)}`);
