#!/usr/bin/env node
// Raw image -> Ceph RBD, side by side with its peers (issue 4).
//
//   node bench/rbd.bench.js [--reps 5] [--size 4G] [--fill 0.15] [--parallel 16] [--no-verify] [--no-wait]
//                           [--osds 1] [--inputs sparse,full] [--tools NAME,...] [--ceiling-total 2G]
//                           [--before OTHER/dist/cli/bin/blocksmith.js] [--name rbd] [--concurrent-floor]
//                           [--floor-io-sizes 4M,2M]
//
// Issue 19 item 4 (16 GiB, 1 and 3 OSDs; the full twin does not fit the disk
// budget next to three replicas):
//   node bench/rbd.bench.js --size 16G --inputs sparse --ceiling-total 4G --reps 3 --name rbd-16g
//   node bench/rbd.bench.js --size 16G --inputs sparse --ceiling-total 4G --reps 3 --osds 3 --name rbd-16g-3osd
// and the one-OSD floor measured in the rotation (see concurrentFloor below):
//   node bench/rbd.bench.js --size 16G --inputs sparse --ceiling-total 4G --reps 5 --concurrent-floor \
//     --floor-io-sizes 4M,2M --tools blocksmith,qemu-img-W-m16 --name rbd-16g-floor
// With --name other than rbd, the goals are issue 19's (>= 0.9 of the
// ceiling, >= 1.1x qemu-img -W -m 16), else issue 4's.
//
// Inputs (bench/work/, not committed), made once by bench/make-images.js's makeVm:
//   sparse  a VM-like raw image: ext4 made by `mke2fs -t ext4 -d` from real /usr trees
//           (~--fill of the image is file data), as mke2fs wrote it (holes left as holes)
//   full    its non-sparse twin (`cp --sparse=never`): same bytes, every block allocated
//
// Cluster: a throwaway single-node cluster started for the run by
// test/ceph/cluster.sh (one mon, --osds bluestore OSDs on sparse files on the
// same disk, cephx, 127.0.0.1), stopped at the end. Pool "rbd", 4 MiB
// objects, min(3, --osds) replicas.
//
// Tools, each creating a new image (removed after its run):
//   blocksmith     node dist/cli/bin/blocksmith.js sparsify --quiet SRC rbd:rbd/IMG [--parallel N]
//   blocksmith-verify   the same with --verify (then reads source and image back and compares)
//   blocksmith-w1m, -w4m   with --write-size 1M / 4M (default 2M); -p8, -p32: --parallel 8 / 32 (default 16)
//   blocksmith-before   --before's CLI, as blocksmith (another build, for before/after in one run)
//   rbd-import     rbd import --image-format 2 --no-progress SRC rbd/IMG
//   qemu-img       qemu-img convert -f raw -O rbd SRC rbd:rbd/IMG
//   qemu-img-W-m16 qemu-img convert -f raw -O rbd -W -m 16 SRC rbd:rbd/IMG
// Every run is cold: `sync` and `echo 3 > /proc/sys/vm/drop_caches` first.
// The order of the tools rotates each repetition. Wall time and the client's
// CPU seconds come from a small python3 wrapper (time.monotonic around the
// child, getrusage(RUSAGE_CHILDREN)). After each run: `rbd du` used bytes;
// on the first repetition the image is also read back with `rbd export` and
// compared (sha256) with the source, unless --no-verify.
//
// Ceiling: `rbd bench --io-type write --io-size 4M --io-threads 16
// --io-total 2G` on a fresh image, three times (before, between and after
// the repetitions); its median bytes/s is this cluster's write ceiling.
// Data throughput of a tool = the source's data bytes (non-zero 4 KiB
// blocks, the bytes every tool has to write) / its median wall time.
//
// Goals (issue 4), per input: blocksmith data throughput >= 0.95 x ceiling;
// >= 1.3x faster than rbd-import and qemu-img (default); no slower than
// qemu-img-W-m16; used bytes <= the smallest peer's; client CPU <= the
// lowest peer's.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  GiB,
  aptInstall,
  MiB,
  ROOT,
  WORK_DIR,
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

const usage = `usage: node bench/rbd.bench.js [--reps 5] [--size 4G] [--fill 0.15] [--parallel 16] [--no-verify] [--no-wait]
       [--osds 1] [--inputs sparse,full] [--tools NAME,...] [--ceiling-total 2G] [--before OTHER/dist/cli/bin/blocksmith.js] [--name rbd]
       [--concurrent-floor] [--floor-io-sizes 4M,2M]`;
const opts = parseArgs(
  process.argv.slice(2),
  {
    reps: { type: 'number', default: 5 },
    size: { type: 'string', default: '4G' },
    fill: { type: 'number', default: 0.15, min: 0.01 },
    parallel: { type: 'number', default: 16 },
    noVerify: { type: 'boolean', default: false },
    noWait: { type: 'boolean', default: false },
    osds: { type: 'number', default: 1, min: 1 },
    inputs: { type: 'string', default: 'sparse,full' },
    tools: { type: 'string', default: '' },
    ceilingTotal: { type: 'string', default: '2G' },
    before: { type: 'string', default: '' },
    name: { type: 'string', default: 'rbd' },
    concurrentFloor: { type: 'boolean', default: false },
    floorIoSizes: { type: 'string', default: '4M' },
  },
  usage,
);

const log = (msg) => process.stderr.write(`[rbd-bench] ${msg}\n`);

function parseSize(s) {
  const m = /^(\d+(?:\.\d+)?)([KMGT]?)$/i.exec(String(s));
  if (!m) throw new Error(`bad size ${s}`);
  return Math.round(Number(m[1]) * { '': 1, K: 1024, M: MiB, G: GiB, T: 1024 * GiB }[m[2].toUpperCase()]);
}

function run(cmd, args, { env = process.env, allowFail = false } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  if (r.status !== 0 && !allowFail) throw new Error(`${commandString([cmd, ...args])} exited ${r.status}: ${r.stderr.trim().slice(-2000)}`);
  return r;
}

function sha256File(file) {
  return run('sha256sum', [file]).stdout.split(/\s+/)[0];
}

// ---------------------------------------------------------------- inputs

const size = parseSize(opts.size);
const wanted = opts.inputs.split(',').filter(Boolean);
for (const w of wanted) if (!['sparse', 'full'].includes(w)) throw new Error(`--inputs: unknown input ${w}`);
const full = path.join(WORK_DIR, 'rbd-vm-full.raw');
const sparse = path.join(WORK_DIR, 'rbd-vm-sparse.raw');
const manifestPath = path.join(WORK_DIR, 'rbd-images.json');

function ensureInputs() {
  let manifest = null;
  try {
    manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
  } catch {
    // none yet
  }
  const needFull = wanted.includes('full');
  const ok =
    manifest && manifest.size === size && manifest.fill === opts.fill && (!needFull || fs.existsSync(full)) && fs.existsSync(sparse) &&
    (!needFull || fs.statSync(full).size === size) && fs.statSync(sparse).size === size;
  if (ok) {
    log(`inputs present (${manifestPath}), kept`);
    return manifest;
  }
  fs.mkdirSync(WORK_DIR, { recursive: true });
  const filesOk =
    (!needFull || (fs.existsSync(full) && fs.statSync(full).size === size)) && fs.existsSync(sparse) && fs.statSync(sparse).size === size;
  // The full twin is made only when measured (a 16 GiB one would not fit the
  // disk budget next to the cluster's replicas).
  let meta = { kind: 'vm', description: 'made earlier by makeVm (no manifest was written)' };
  if (!filesOk || (manifest && manifest.fill !== opts.fill)) {
    log(`making the ${opts.size} VM-like image${needFull ? ' pair' : ' (sparse only)'} (fill ${opts.fill})`);
    fs.rmSync(full, { force: true });
    meta = makeVm(size, opts.fill, full, { keepSparse: sparse, sparseOnly: !needFull });
  } else {
    log('inputs present without a manifest: describing them');
  }
  const sha = sha256File(sparse);
  if (needFull && sha256File(full) !== sha) throw new Error('the sparse and full twins differ');
  const info = JSON.parse(run(process.execPath, [path.join(ROOT, 'dist/cli/bin/blocksmith.js'), 'info', '--json', sparse]).stdout);
  manifest = {
    size,
    fill: opts.fill,
    sha256: sha,
    // Non-zero 4 KiB blocks: the bytes every tool must write.
    dataBytes: info.dataBytes,
    allocated: { sparse: fs.statSync(sparse).blocks * 512, ...(needFull ? { full: fs.statSync(full).blocks * 512 } : {}) },
    made: new Date().toISOString(),
    ...meta,
  };
  fs.writeFileSync(manifestPath, JSON.stringify(manifest, null, 2) + '\n');
  return manifest;
}

// ---------------------------------------------------------------- cluster

function startCluster() {
  const dir = fs.mkdtempSync('/var/tmp/blocksmith-bench-ceph-');
  const r = run('bash', [path.join(ROOT, 'test/ceph/cluster.sh'), 'start', path.join(dir, 'cluster')], {
    env: { ...process.env, OSDS: String(opts.osds) },
  });
  const conf = r.stdout.trim().split('\n').pop();
  return {
    dir,
    conf,
    stop() {
      run('bash', [path.join(ROOT, 'test/ceph/cluster.sh'), 'stop', path.join(dir, 'cluster')], { allowFail: true });
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------- measuring

const timed = (argv, env, stdout = false) => timeChild(argv, { env, stdout });

function dropCaches() {
  run('sync', []);
  fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
}

let imageSeq = 0;
const newImage = (tag) => `bench-${tag}-${process.pid}-${imageSeq++}`;

function rbdCmd(env, args, o = {}) {
  return run('rbd', args, { env, ...o });
}

function usedBytes(env, image) {
  const j = JSON.parse(rbdCmd(env, ['du', '--format', 'json', `rbd/${image}`]).stdout);
  const exact = JSON.parse(rbdCmd(env, ['du', '--exact', '--format', 'json', `rbd/${image}`]).stdout);
  return { used: j.images[0].used_size, usedExact: exact.images[0].used_size };
}

function exportSha(env, image) {
  const r = spawnSync('bash', ['-o', 'pipefail', '-c', `rbd export --no-progress rbd/${image} - | sha256sum`], { encoding: 'utf8', env });
  if (r.status !== 0) throw new Error(`rbd export rbd/${image}: ${r.stderr}`);
  return r.stdout.split(/\s+/)[0];
}

const blocksmithArgv = (cli, extra) => (src, img) => [
  process.execPath,
  cli,
  'sparsify',
  '--quiet',
  '--parallel',
  String(opts.parallel),
  ...extra,
  src,
  `rbd:rbd/${img}`,
];
const beforeCli = opts.before ? path.resolve(opts.before) : null;
const ALL_TOOLS = {
  blocksmith: blocksmithArgv(path.join(ROOT, 'dist/cli/bin/blocksmith.js'), []),
  'blocksmith-verify': blocksmithArgv(path.join(ROOT, 'dist/cli/bin/blocksmith.js'), ['--verify']),
  // Tuning variants (issue 19 item 4): the largest write and the writes in flight.
  'blocksmith-w1m': blocksmithArgv(path.join(ROOT, 'dist/cli/bin/blocksmith.js'), ['--write-size', '1M']),
  'blocksmith-w4m': blocksmithArgv(path.join(ROOT, 'dist/cli/bin/blocksmith.js'), ['--write-size', '4M']),
  'blocksmith-p8': blocksmithArgv(path.join(ROOT, 'dist/cli/bin/blocksmith.js'), ['--parallel', '8']),
  'blocksmith-p32': blocksmithArgv(path.join(ROOT, 'dist/cli/bin/blocksmith.js'), ['--parallel', '32']),
  ...(beforeCli ? { 'blocksmith-before': blocksmithArgv(beforeCli, []) } : {}),
  'rbd-import': (src, img) => ['rbd', 'import', '--image-format', '2', '--no-progress', src, `rbd/${img}`],
  'qemu-img': (src, img) => ['qemu-img', 'convert', '-f', 'raw', '-O', 'rbd', src, `rbd:rbd/${img}`],
  'qemu-img-W-m16': (src, img) => ['qemu-img', 'convert', '-f', 'raw', '-O', 'rbd', '-W', '-m', '16', src, `rbd:rbd/${img}`],
};
const toolNames = opts.tools ? opts.tools.split(',').filter(Boolean) : Object.keys(ALL_TOOLS);
for (const t of toolNames) if (!ALL_TOOLS[t]) throw new Error(`--tools: unknown tool ${t} (${Object.keys(ALL_TOOLS).join(', ')})`);
if (!toolNames.includes('blocksmith')) throw new Error('--tools must include blocksmith');
const TOOLS = Object.fromEntries(toolNames.map((t) => [t, ALL_TOOLS[t]]));
const PEERS = ['rbd-import', 'qemu-img', 'qemu-img-W-m16'].filter((p) => TOOLS[p]);
const ceilingTotal = parseSize(opts.ceilingTotal);
const issue19 = opts.name !== 'rbd';

function rbdBench(env) {
  const img = newImage('ceiling');
  rbdCmd(env, ['create', '--size', String(Math.max(4 * GiB, ceilingTotal) / MiB), `rbd/${img}`]);
  try {
    const total = ceilingTotal;
    const t = timed(['rbd', 'bench', '--io-type', 'write', '--io-size', '4M', '--io-threads', '16', '--io-total', String(total), `rbd/${img}`], env);
    return { bytesPerSecond: total / t.wall, wallSeconds: t.wall, cpuSeconds: t.user + t.sys };
  } finally {
    rbdCmd(env, ['rm', '--no-progress', `rbd/${img}`], { allowFail: true });
  }
}

// The floors the copy cannot beat, measured in the same run: the cold
// sequential read of the source (dd, O_DIRECT: holes cost nothing), and our
// fixed cost (start-up, connecting, creating and closing an image) as the
// time to copy an empty sparse file of the same size.
function fixedCost(env) {
  const empty = path.join(WORK_DIR, 'rbd-empty.raw');
  fs.rmSync(empty, { force: true });
  fs.writeFileSync(empty, '');
  fs.truncateSync(empty, size);
  const img = newImage('fixed');
  try {
    dropCaches();
    const fixed = timed(TOOLS.blocksmith(empty, img), env);
    rbdCmd(env, ['rm', '--no-progress', `rbd/${img}`]);
    return fixed.wall;
  } finally {
    fs.rmSync(empty, { force: true });
  }
}

function floors(env) {
  dropCaches();
  const src = inputs.sparse ?? inputs.full;
  const read = timed(['dd', `if=${src}`, 'of=/dev/null', 'bs=4M', 'iflag=direct', 'status=none'], env);
  const out = { coldReadSeconds: round(read.wall, 3), fixedCostSeconds: round(fixedCost(env), 3) };
  if (opts.concurrentFloor) {
    // The concurrent floor's reader alone, to compare the pair with the sum of its parts.
    dropCaches();
    out.coldExtentReadSeconds = round(JSON.parse(timed(['/usr/bin/python3', '-c', EXTENT_READER, src], env, true).stdout).wall, 3);
  }
  return out;
}

// The concurrent floor (issue 19 item 4 on one OSD): the source's reads and
// the OSD's writes share one disk, so max(read, write) underestimates what
// the copy must pay. Measured instead by doing both at once, cold: an
// O_DIRECT read of the source's data extents only (SEEK_DATA/SEEK_HOLE, 4 MiB
// reads, one in flight like dd: what any copy must read) while `rbd bench`
// writes the data bytes, rounded up to 4 MiB, to a fresh image, 16 writes in
// flight as the ceiling (what any copy must write, at the cluster's best
// rate). --floor-io-sizes: one pair per write size (the ceiling's 4 MiB;
// blocksmith writes 2 MiB); the floor is the fastest.
const EXTENT_READER = `
import json, mmap, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
size = os.fstat(fd).st_size
buf = mmap.mmap(-1, 4 << 20)  # page-aligned, as O_DIRECT wants
view = memoryview(buf)
t = time.monotonic()
off = total = extents = 0
while off < size:
    try:
        d = os.lseek(fd, off, os.SEEK_DATA)
    except OSError:  # ENXIO: no data after off
        break
    h = os.lseek(fd, d, os.SEEK_HOLE)
    extents += 1
    p = d
    while p < h:
        got = os.preadv(fd, [view[: min(4 << 20, h - p)]], p)
        if got <= 0:
            raise SystemExit(f"short read at {p}")
        total += got
        p += got
    off = h
print(json.dumps({"wall": time.monotonic() - t, "bytes": total, "extents": extents}))
`;

function spawnTimed(argv, env) {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const wall = (performance.now() - t) / 1000;
      if (code !== 0) reject(new Error(`${commandString(argv)} exited ${code}: ${err.trim().slice(-2000)}`));
      else resolve({ wall, stdout: out, end: performance.now() });
    });
  });
}

const writeTotal = () => Math.ceil(manifest.dataBytes / (4 * MiB)) * 4 * MiB;
const benchArgv = (total, img, ioSize = '4M') => ['rbd', 'bench', '--io-type', 'write', '--io-size', ioSize, '--io-threads', '16', '--io-total', String(total), `rbd/${img}`];
const floorIoSizes = opts.floorIoSizes.split(',').filter(Boolean);
for (const z of floorIoSizes) if (!/^[1-9]\d*[KM]$/.test(z) || (4 * MiB) % parseSize(z) !== 0) throw new Error(`--floor-io-sizes: ${z} does not divide 4M`);

async function concurrentFloor(env, src, ioSize) {
  const total = writeTotal();
  const img = newImage('pair');
  rbdCmd(env, ['create', '--size', String(size / MiB), `rbd/${img}`]);
  try {
    dropCaches();
    const t = performance.now();
    const [read, write] = await Promise.all([
      spawnTimed(['/usr/bin/python3', '-c', EXTENT_READER, src], env),
      spawnTimed(benchArgv(total, img, ioSize), env),
    ]);
    const pair = (Math.max(read.end, write.end) - t) / 1000;
    const r = JSON.parse(read.stdout);
    return { pairSeconds: pair, readSeconds: r.wall, readProcessSeconds: read.wall, readBytes: r.bytes, readExtents: r.extents, writeSeconds: write.wall, writeBytes: total };
  } finally {
    rbdCmd(env, ['rm', '--no-progress', `rbd/${img}`], { allowFail: true });
  }
}

// rbd bench's own start-up and teardown (connect, open, close; 4 MiB written),
// counted in the pair's wall time but already part of our fixed cost.
function rbdBenchFixed(env) {
  const img = newImage('benchfixed');
  rbdCmd(env, ['create', '--size', '64', `rbd/${img}`]);
  try {
    return timed(benchArgv(4 * MiB, img), env).wall;
  } finally {
    rbdCmd(env, ['rm', '--no-progress', `rbd/${img}`], { allowFail: true });
  }
}

// ---------------------------------------------------------------- main

if (process.getuid() !== 0) {
  console.error('rbd.bench.js needs root (drop_caches, the cluster)');
  process.exit(2);
}
// qemu-img's rbd driver is a separate Debian package.
if (spawnSync('dpkg-query', ['-W', '-f=${Status}', 'qemu-block-extra'], { encoding: 'utf8' }).stdout?.includes('ok installed') !== true) {
  aptInstall(['qemu-block-extra'], log);
}
const manifest = ensureInputs();
log(`data bytes (non-zero 4 KiB blocks): ${manifest.dataBytes} of ${size}`);
const cluster = startCluster();
const env = { ...process.env, CEPH_CONF: cluster.conf };
log(`cluster: ${cluster.conf}`);
const quiet = opts.noWait ? null : await waitForQuiet({ maxBusy: 0.15, timeoutMs: 120_000, log });

const inputs = Object.fromEntries(Object.entries({ sparse, full }).filter(([k]) => wanted.includes(k)));
const runs = {};
const ceiling = [];
let floor = null;
const pairs = [];
// The concurrent floor takes its turn in the rotation like a tool (one input: the first).
const FLOOR = 'concurrent-floor-';
const t0 = Date.now();
try {
  ceiling.push(rbdBench(env));
  log(`ceiling: ${(ceiling[0].bytesPerSecond / MiB).toFixed(1)} MiB/s`);
  floor = floors(env);
  log(`floors: cold read of the source ${floor.coldReadSeconds} s, blocksmith on an empty image of the same size ${floor.fixedCostSeconds} s`);
  const names = [...Object.keys(TOOLS), ...(opts.concurrentFloor ? floorIoSizes.map((z) => FLOOR + z) : [])];
  for (let rep = 0; rep < opts.reps; rep++) {
    if (rep === Math.floor(opts.reps / 2)) ceiling.push(rbdBench(env));
    const order = names.map((_, i) => names[(i + rep) % names.length]);
    for (const [inputName, src] of Object.entries(inputs)) {
      for (const tool of order) {
        if (tool.startsWith(FLOOR)) {
          const ioSize = tool.slice(FLOOR.length);
          if (inputName !== Object.keys(inputs)[0]) continue;
          if (!opts.noWait) await waitForQuiet({ maxBusy: 0.15, timeoutMs: 15_000, log: () => {} });
          const mon = cpuMonitor();
          mon.start();
          const pair = await concurrentFloor(env, src, ioSize);
          const noise = mon.stop();
          pair.rbdBenchFixedSeconds = rbdBenchFixed(env);
          pair.fixedCostSeconds = fixedCost(env);
          pairs.push({ rep, ioSize, ...pair, ...noise });
          log(
            `rep ${rep} ${tool}: pair ${pair.pairSeconds.toFixed(2)} s (read ${pair.readSeconds.toFixed(2)} s, ` +
              `rbd bench ${pair.writeSeconds.toFixed(2)} s), rbd bench fixed ${pair.rbdBenchFixedSeconds.toFixed(2)} s, ours ${pair.fixedCostSeconds.toFixed(2)} s`,
          );
          continue;
        }
        const img = newImage(tool);
        if (!opts.noWait) await waitForQuiet({ maxBusy: 0.15, timeoutMs: 15_000, log: () => {} });
        dropCaches();
        const mon = cpuMonitor();
        mon.start();
        const t = timed(TOOLS[tool](src, img), env);
        const noise = mon.stop();
        const du = usedBytes(env, img);
        const entry = { rep, wallSeconds: t.wall, cpuSeconds: t.user + t.sys, userSeconds: t.user, sysSeconds: t.sys, ...du, ...noise };
        // Ours only when the run is issue 19's (a 16 GiB export takes over a minute).
        if (rep === 0 && !opts.noVerify && (!issue19 || tool === 'blocksmith')) entry.identical = exportSha(env, img) === manifest.sha256;
        rbdCmd(env, ['rm', '--no-progress', `rbd/${img}`]);
        ((runs[inputName] ??= {})[tool] ??= []).push(entry);
        log(
          `rep ${rep} ${inputName} ${tool}: ${t.wall.toFixed(2)} s, cpu ${(t.user + t.sys).toFixed(2)} s, used ${(du.used / MiB).toFixed(0)} MiB` +
            (entry.identical === undefined ? '' : `, identical: ${entry.identical}`),
        );
      }
    }
  }
  ceiling.push(rbdBench(env));
} finally {
  cluster.stop();
}

const ceilingBps = median(ceiling.map((c) => c.bytesPerSecond));
const results = {};
const goals = [];
for (const inputName of Object.keys(inputs)) {
  const per = {};
  for (const [tool, list] of Object.entries(runs[inputName])) {
    const wall = summarize(list.map((r) => r.wallSeconds));
    per[tool] = {
      command: commandString(TOOLS[tool](inputName === 'sparse' ? 'SRC_SPARSE' : 'SRC_FULL', 'IMG')),
      wall: Object.fromEntries(Object.entries(wall).map(([k, v]) => [k, round(v, 3)])),
      dataBytesPerSecond: Math.round(manifest.dataBytes / wall.medianSeconds),
      dataMiBPerSecond: round(manifest.dataBytes / wall.medianSeconds / MiB, 1),
      fractionOfCeiling: round(manifest.dataBytes / wall.medianSeconds / ceilingBps, 3),
      cpuSecondsMedian: round(median(list.map((r) => r.cpuSeconds)), 3),
      usedBytes: Math.max(...list.map((r) => r.used)),
      usedBytesExact: Math.max(...list.map((r) => r.usedExact)),
      identical: list.find((r) => r.identical !== undefined)?.identical ?? null,
      runs: list.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'number' ? round(v, 3) : v]))),
    };
  }
  const b = per.blocksmith;
  const ratios = Object.fromEntries(
    [...PEERS, ...Object.keys(TOOLS).filter((t) => t.startsWith('blocksmith-'))].filter((p) => per[p]).map((p) => [`${p}/blocksmith time`, round(per[p].wall.medianSeconds / b.wall.medianSeconds, 3)]),
  );
  per.ratios = ratios;
  results[inputName] = per;
  const minPeerUsed = Math.min(...PEERS.map((p) => per[p].usedBytes));
  const minPeerCpu = Math.min(...PEERS.map((p) => per[p].cpuSecondsMedian));
  if (issue19) {
    // Issue 19 item 4: the copy as users run it (no --verify; the peers do not verify either).
    const w = ratios['qemu-img-W-m16/blocksmith time'];
    goals.push(
      { input: inputName, name: 'data throughput / ceiling', target: '>= 0.9', value: b.fractionOfCeiling, met: b.fractionOfCeiling >= 0.9 },
      { input: inputName, name: 'qemu-img -W -m 16 time / blocksmith time', target: '>= 1.1', value: w ?? null, met: w !== undefined && w >= 1.1 },
      { input: inputName, name: 'used bytes <= smallest peer', target: `<= ${minPeerUsed}`, value: b.usedBytes, met: b.usedBytes <= minPeerUsed },
      { input: inputName, name: 'identical (rbd export | sha256sum)', target: 'true', value: b.identical, met: b.identical === true },
    );
    continue;
  }
  goals.push(
    { input: inputName, name: 'data throughput / ceiling', target: '>= 0.95', value: b.fractionOfCeiling, met: b.fractionOfCeiling >= 0.95 },
    { input: inputName, name: 'rbd-import time / blocksmith time', target: '>= 1.3', value: ratios['rbd-import/blocksmith time'], met: ratios['rbd-import/blocksmith time'] >= 1.3 },
    { input: inputName, name: 'qemu-img time / blocksmith time', target: '>= 1.3', value: ratios['qemu-img/blocksmith time'], met: ratios['qemu-img/blocksmith time'] >= 1.3 },
    { input: inputName, name: 'qemu-img -W -m 16 time / blocksmith time', target: '>= 1.0', value: ratios['qemu-img-W-m16/blocksmith time'], met: ratios['qemu-img-W-m16/blocksmith time'] >= 1.0 },
    { input: inputName, name: 'used bytes <= smallest peer', target: `<= ${minPeerUsed}`, value: b.usedBytes, met: b.usedBytes <= minPeerUsed },
    { input: inputName, name: 'client CPU s <= lowest peer', target: `<= ${round(minPeerCpu, 3)}`, value: b.cpuSecondsMedian, met: b.cpuSecondsMedian <= minPeerCpu },
  );
}

// The floor with the read and the writes at the same time, against the copy
// and against the goal: floor = pair - rbd bench's own start-up + our fixed
// cost (both start-ups connect and open an image; ours is the one a copy pays).
function concurrentSummary() {
  const b = results[Object.keys(inputs)[0]].blocksmith.wall.medianSeconds;
  const goalSeconds = manifest.dataBytes / (0.9 * ceilingBps);
  const bySize = {};
  for (const z of floorIoSizes) {
    const list = pairs.filter((p) => p.ioSize === z);
    const med = (k) => median(list.map((p) => p[k]));
    const floorSeconds = med('pairSeconds') - med('rbdBenchFixedSeconds') + med('fixedCostSeconds');
    bySize[z] = {
      command:
        `python3 EXTENT_READER SRC (O_DIRECT 4 MiB reads of the SEEK_DATA extents) & ` +
        `${commandString(benchArgv(writeTotal(), 'IMG', z))} (fresh ${size / MiB} MiB image), cold, at the same time; ` +
        `then ${commandString(benchArgv(4 * MiB, 'IMG64M'))} (rbd bench's fixed cost) and blocksmith on an empty image (ours)`,
      pairSeconds: summarize(list.map((p) => p.pairSeconds)),
      readSecondsMedian: round(med('readSeconds'), 3),
      writeSecondsMedian: round(med('writeSeconds'), 3),
      rbdBenchFixedSecondsMedian: round(med('rbdBenchFixedSeconds'), 3),
      fixedCostSecondsMedian: round(med('fixedCostSeconds'), 3),
      // The pair against the sum of its parts alone (the reader alone, cold, once; the writes at the ceiling's median rate).
      pairOverSumAlone: floor.coldExtentReadSeconds ? round(med('pairSeconds') / (floor.coldExtentReadSeconds + writeTotal() / ceilingBps), 3) : null,
      floorSeconds: round(floorSeconds, 3),
      runs: list.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'number' ? round(v, 3) : v]))),
    };
    for (const k of Object.keys(bySize[z].pairSeconds)) bySize[z].pairSeconds[k] = round(bySize[z].pairSeconds[k], 3);
  }
  const best = floorIoSizes.reduce((a, z) => (bySize[z].floorSeconds < bySize[a].floorSeconds ? z : a));
  const floorSeconds = bySize[best].floorSeconds;
  return {
    rule: 'floor = median pair - median rbd bench fixed + median blocksmith fixed, of the fastest write size',
    floorIoSize: best,
    floorSeconds,
    blocksmithSeconds: round(b, 3),
    'blocksmith/floor': round(b / floorSeconds, 3),
    'floor fraction of ceiling': round(manifest.dataBytes / floorSeconds / ceilingBps, 3),
    secondsAt0_9OfCeiling: round(goalSeconds, 3),
    goalBelowFloor: goalSeconds < floorSeconds,
    byIoSize: bySize,
  };
}

const result = {
  suite: 'rbd',
  ...provenance(),
  date: new Date().toISOString(),
  durationSeconds: round((Date.now() - t0) / 1000, 1),
  machine: machineInfo(),
  quietAtStart: quiet,
  cluster: `test/ceph/cluster.sh (OSDS=${opts.osds}): 1 mon, ${opts.osds} bluestore OSD(s) on sparse files (same disk), cephx, 127.0.0.1, pool rbd size ${Math.min(3, opts.osds)}, 4 MiB objects`,
  inputs: { ...manifest, paths: { sparse: path.relative(ROOT, sparse), full: path.relative(ROOT, full) } },
  cache: 'cold: sync + drop_caches before every run',
  ceiling: {
    command: `rbd bench --io-type write --io-size 4M --io-threads 16 --io-total ${ceilingTotal} rbd/IMG (fresh image)`,
    medianBytesPerSecond: Math.round(ceilingBps),
    medianMiBPerSecond: round(ceilingBps / MiB, 1),
    runs: ceiling.map((c) => Object.fromEntries(Object.entries(c).map(([k, v]) => [k, round(v, 3)]))),
  },
  floor: {
    coldRead: 'dd if=SRC of=/dev/null bs=4M iflag=direct (after drop_caches)',
    fixedCost: 'blocksmith sparsify --quiet --parallel N EMPTY rbd:rbd/IMG, EMPTY a hole of the same size (start-up, connect, create, close)',
    ...floor,
    // The copy cannot beat the larger of reading the source and writing its data at the ceiling, plus the fixed cost.
    dataAtCeilingSeconds: round(manifest.dataBytes / ceilingBps, 3),
    ...(pairs.length ? { concurrent: concurrentSummary() } : {}),
  },
  results,
  goals,
};
const file = writeResult(opts.name, result, beforeCli ? { BEFORE_CLI: beforeCli } : {});

// A plain table on stdout.
console.log(`\nceiling (rbd bench write 4M x16): ${(ceilingBps / MiB).toFixed(1)} MiB/s; data bytes ${manifest.dataBytes}`);
for (const [inputName, per] of Object.entries(results)) {
  console.log(`\n${inputName}:`);
  console.log('tool             median s   data MiB/s  of ceiling  CPU s   used MiB  identical');
  for (const tool of Object.keys(TOOLS)) {
    const r = per[tool];
    console.log(
      `${tool.padEnd(16)} ${r.wall.medianSeconds.toFixed(2).padStart(8)}   ${r.dataMiBPerSecond.toFixed(1).padStart(10)}  ${r.fractionOfCeiling.toFixed(2).padStart(10)}  ${r.cpuSecondsMedian.toFixed(2).padStart(5)}  ${(r.usedBytes / MiB).toFixed(0).padStart(8)}  ${r.identical}`,
    );
  }
}
if (result.floor.concurrent) {
  const c = result.floor.concurrent;
  for (const [z, f] of Object.entries(c.byIoSize)) {
    console.log(
      `\nconcurrent pair, writes of ${z}: ${f.pairSeconds.medianSeconds} s (read ${f.readSecondsMedian} s, write ${f.writeSecondsMedian} s; ` +
        `${f.pairOverSumAlone} of read alone + writes at the ceiling) - rbd bench fixed ${f.rbdBenchFixedSecondsMedian} s + ours ${f.fixedCostSecondsMedian} s = ${f.floorSeconds} s`,
    );
  }
  console.log(
    `floor ${c.floorSeconds} s (${c.floorIoSize}; ${c['floor fraction of ceiling']} of the ceiling); blocksmith ${c.blocksmithSeconds} s = ` +
      `${c['blocksmith/floor']}x the floor; 0.9 of the ceiling = ${c.secondsAt0_9OfCeiling} s` + (c.goalBelowFloor ? ' (below the floor)' : ''),
  );
}
console.log('\ngoals:');
for (const g of goals) console.log(`  ${g.met ? 'met    ' : 'MISSED '} ${g.input}: ${g.name}: ${g.value} (${g.target})`);
console.log(`\nwrote ${path.relative(ROOT, file)}`);
