#!/usr/bin/env node
// qcow2 -> sparse raw (issue 8) and qcow2 -> RBD (issue 19 item 3):
// blocksmith against qemu-img, side by side.
//
//   node bench/qcow2.bench.js [--reps 3] [--vm-size 4G] [--kinds plain,compressed,zstd]
//        [--targets raw,rbd] [--before REPO] [--floors] [--sparse-master] [--name qcow2] [--merge]
//        [--tools blocksmith,qemu-img,...]
//
// Inputs (bench/work/, not committed): the VM-like raw master of
// bench/make-images.js (ext4 from real /usr trees, ~30 % data), converted by
// `qemu-img convert -f raw -O qcow2` (plain), with `-c` (compressed, zlib)
// and with `-c -o compression_type=zstd` (zstd). --sparse-master keeps the
// master sparse (mke2fs's own output, the same bytes; saves its size on disk).
// Tools, each writing a fresh target (deleted before each run):
//   raw:  blocksmith          node dist/cli/bin/sparsify.js vm.qcow2 out.raw --json
//         blocksmith-before   the same with REPO/dist (--before: another build, e.g. main)
//         qemu-img            qemu-img convert -f qcow2 -O raw vm.qcow2 out.raw
//         qemu-img-W-m16      the above with -W -m 16 (out of order writes, 16 coroutines)
//         qemu-img+cp         qemu-img convert to a temp file, then cp --sparse=always (the old recipe)
//   rbd:  blocksmith          node dist/cli/bin/blocksmith.js sparsify --quiet vm.qcow2 rbd:rbd/IMG
//         blocksmith-before   the same with REPO/dist
//         qemu-img            qemu-img convert -f qcow2 -O rbd vm.qcow2 rbd:rbd/IMG
//         qemu-img-W-m16      the above with -W -m 16
//   (rbd: a private cluster from test/ceph/cluster.sh, one bluestore OSD on a
//   sparse file on the same disk, pool size 1.)
// Cache policy: cold (sync + drop_caches) before every timed run; raw runs
// include a final `sync out.raw` (qemu-img never fsyncs). The order of the
// tools rotates every repetition. After the first run of each tool: content
// identity with the master (cmp; RBD through `rbd export`).
// --floors, per input, cold, in the same run: `dd` read of the qcow2 file,
// `blocksmith info` of it (reads and inflates everything, writes nothing:
// wall and CPU seconds), and `dd conv=fdatasync` of as many bytes as the copy
// holds, from the largest qcow2 file read into memory first (the write floor).
// Goals: issue 8, plain raw >= 1.5x faster than qemu-img convert; issue 19
// item 3, every case at most 0.67x qemu-img convert's time.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, WORK_DIR, commandString, machineInfo, parseArgs, provenance, round, summarize, timeChild, writeResult } from './lib.js';
import { ensureImages, imagePath, makeVm } from './make-images.js';

const USAGE = `usage: node bench/qcow2.bench.js [--reps N] [--vm-size SIZE] [--kinds plain,compressed,zstd] [--targets raw,rbd]
       [--before REPO] [--floors] [--sparse-master] [--name NAME] [--merge] [--tools T1,T2]`;
const opts = parseArgs(
  process.argv.slice(2),
  {
    reps: { type: 'number', default: 3 },
    vmSize: { type: 'string', default: '4G' },
    kinds: { type: 'string', default: 'plain,compressed' },
    targets: { type: 'string', default: 'raw' },
    before: { type: 'string', default: '' },
    floors: { type: 'boolean', default: false },
    sparseMaster: { type: 'boolean', default: false },
    name: { type: 'string', default: 'qcow2' },
    merge: { type: 'boolean', default: false },
    tools: { type: 'string', default: '' },
  },
  USAGE,
);
const log = (m) => process.stderr.write(`[qcow2.bench] ${m}\n`);

function run(cmd, args, { allowFail = false, env = process.env } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'pipe'], env });
  if (r.error) throw r.error;
  if (r.status !== 0 && !allowFail) throw new Error(`${commandString([cmd, ...args])} exited ${r.status ?? r.signal}: ${(r.stderr || '').trim().slice(-1000)}`);
  return r;
}
const allocated = (f) => fs.statSync(f).blocks * 512;
function dropCaches() {
  run('sync', []);
  fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
}

const timed = (argv, env = process.env) => timeChild(argv, { env });

const OUT = path.join(WORK_DIR, 'qcow2-out.raw');
const TMP = path.join(WORK_DIR, 'qcow2-tmp.raw');
const FLOOR = path.join(WORK_DIR, 'qcow2-floor.raw');
const builds = [{ suffix: '', root: ROOT }];
if (opts.before) builds.push({ suffix: '-before', root: path.resolve(opts.before) });
const sparsifyCli = (root) => path.join(root, 'dist/cli/bin/sparsify.js');
const blocksmithCli = (root) => path.join(root, 'dist/cli/bin/blocksmith.js');

const RAW_TOOLS = [
  ...builds.map((b) => ({ name: `blocksmith${b.suffix}`, steps: (src) => [['node', sparsifyCli(b.root), src, OUT, '--json']] })),
  { name: 'qemu-img', steps: (src) => [['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', src, OUT]] },
  { name: 'qemu-img-W-m16', steps: (src) => [['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', '-W', '-m', '16', src, OUT]] },
  {
    name: 'qemu-img+cp',
    steps: (src) => [['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', src, TMP], ['cp', '--sparse=always', TMP, OUT]],
  },
];
const RBD_TOOLS = [
  ...builds.map((b) => ({
    name: `blocksmith${b.suffix}`,
    steps: (src, img) => [['node', blocksmithCli(b.root), 'sparsify', '--quiet', src, `rbd:rbd/${img}`]],
  })),
  { name: 'qemu-img', steps: (src, img) => [['qemu-img', 'convert', '-f', 'qcow2', '-O', 'rbd', src, `rbd:rbd/${img}`]] },
  {
    name: 'qemu-img-W-m16',
    steps: (src, img) => [['qemu-img', 'convert', '-f', 'qcow2', '-O', 'rbd', '-W', '-m', '16', src, `rbd:rbd/${img}`]],
  },
];
const wanted = (tools) => (opts.tools ? tools.filter((t) => opts.tools.split(',').includes(t.name.replace(/-before$/, ''))) : tools);

// ---------------------------------------------------------------- inputs

function sparseMaster() {
  const master = path.join(WORK_DIR, `qcow2-master-${opts.vmSize}.raw`);
  if (!fs.existsSync(master)) {
    const bytes = Number(/^(\d+)G$/i.exec(opts.vmSize)?.[1]) * 1024 ** 3;
    if (!bytes) throw new Error(`--sparse-master wants --vm-size in whole GiB (e.g. 8G), not '${opts.vmSize}'`);
    const dense = path.join(WORK_DIR, `qcow2-master-${opts.vmSize}-dense.raw`);
    log(`making ${master}`);
    makeVm(bytes, 0.32, dense, { keepSparse: master });
    fs.rmSync(dense, { force: true });
  }
  return master;
}

const kinds = opts.kinds.split(',');
const targets = opts.targets.split(',');
let master;
if (opts.sparseMaster) {
  master = sparseMaster();
} else {
  ensureImages({ vmSize: opts.vmSize, only: 'vm' });
  master = imagePath('vm');
}
const KIND_ARGS = { plain: [], compressed: ['-c'], zstd: ['-c', '-o', 'compression_type=zstd'] };
const inputs = {};
for (const kind of kinds) {
  if (!KIND_ARGS[kind]) throw new Error(`unknown kind '${kind}' (plain, compressed, zstd)`);
  const file = path.join(WORK_DIR, opts.sparseMaster ? `qcow2-${opts.vmSize}-${kind}.qcow2` : `qcow2-vm-${kind}.qcow2`);
  const stamp = `${file}.from`;
  const want = `${fs.statSync(master).size}:${fs.statSync(master).mtimeMs}`;
  if (!fs.existsSync(file) || !fs.existsSync(stamp) || fs.readFileSync(stamp, 'utf8') !== want) {
    log(`making ${file}`);
    run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', ...KIND_ARGS[kind], master, file]);
    fs.writeFileSync(stamp, want);
  }
  inputs[kind] = { file, fileBytes: fs.statSync(file).size, allocated: allocated(file), qemuImgArgs: KIND_ARGS[kind] };
}

// ---------------------------------------------------------------- cluster

let cluster = null;
if (targets.includes('rbd')) {
  const dir = fs.mkdtempSync('/var/tmp/blocksmith-bench-ceph-');
  // Bounded: bluestore does not give freed space back to the sparse file.
  const env = { ...process.env, OSD_BYTES: String(12 * 1024 ** 3) };
  const r = run('bash', [path.join(ROOT, 'test/ceph/cluster.sh'), 'start', path.join(dir, 'cluster')], { env });
  const conf = r.stdout.trim().split('\n').pop();
  cluster = {
    env: { ...process.env, CEPH_CONF: conf },
    stop() {
      run('bash', [path.join(ROOT, 'test/ceph/cluster.sh'), 'stop', path.join(dir, 'cluster')], { allowFail: true });
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  process.on('exit', () => cluster?.stop());
}
let imageSeq = 0;
const newImage = () => `bench-qcow2-${process.pid}-${imageSeq++}`;
const rbdRm = (img) => run('rbd', ['rm', '--no-progress', `rbd/${img}`], { env: cluster.env, allowFail: true });
function rbdSameAsMaster(img) {
  const r = spawnSync('bash', ['-o', 'pipefail', '-c', 'rbd export --no-progress "$1" - | cmp --silent - "$2"', 'x', `rbd/${img}`, master], {
    env: cluster.env,
  });
  return r.status === 0;
}
function rbdCeiling() {
  const img = newImage();
  run('rbd', ['create', '--size', String(4096), `rbd/${img}`], { env: cluster.env });
  try {
    const total = 2 * 1024 ** 3;
    const t = timed(['rbd', 'bench', '--io-type', 'write', '--io-size', '4M', '--io-threads', '16', '--io-total', String(total), `rbd/${img}`], cluster.env);
    return { bytesPerSecond: Math.round(total / t.wall), wallSeconds: round(t.wall, 3) };
  } finally {
    rbdRm(img);
  }
}

// ---------------------------------------------------------------- runs

const resultFile = path.join(ROOT, 'bench/results', `${opts.name}.json`);
const previous = opts.merge && fs.existsSync(resultFile) ? JSON.parse(fs.readFileSync(resultFile, 'utf8')) : null;
const result = {
  suite: 'qcow2',
  provenance: provenance(),
  commit: run('git', ['-C', ROOT, 'rev-parse', 'HEAD']).stdout.trim(),
  before: opts.before ? { commit: run('git', ['-C', opts.before, 'rev-parse', 'HEAD']).stdout.trim() } : undefined,
  machine: machineInfo(),
  qemuImg: run('qemu-img', ['--version']).stdout.split('\n')[0],
  loadAverageAtStart: os.loadavg().map((x) => round(x, 2)),
  cachePolicy: 'cold: sync + drop_caches before each run; raw runs end with sync of the output',
  master: { path: path.relative(ROOT, master), size: fs.statSync(master).size, sparse: opts.sparseMaster },
  inputs: Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, { ...v, file: path.relative(ROOT, v.file) }])),
  results: { ...(previous?.results ?? {}) },
  rbdCeiling: previous?.rbdCeiling,
};
const places = opts.before ? { BEFORE: path.resolve(opts.before) } : {};

function measure(target, kind) {
  const src = inputs[kind].file;
  const tools = wanted(target === 'raw' ? RAW_TOOLS : RBD_TOOLS);
  const times = Object.fromEntries(tools.map((t) => [t.name, []]));
  const cpu = Object.fromEntries(tools.map((t) => [t.name, []]));
  const alloc = {};
  const same = {};
  for (let rep = 0; rep < opts.reps; rep++) {
    const order = tools.map((_, i) => tools[(i + rep) % tools.length]);
    for (const tool of order) {
      const img = target === 'rbd' ? newImage() : null;
      fs.rmSync(OUT, { force: true });
      fs.rmSync(TMP, { force: true });
      dropCaches();
      let secs = 0;
      let cpuSecs = 0;
      for (const argv of tool.steps(src, img)) {
        const t = timed(argv, cluster?.env);
        secs += t.wall;
        cpuSecs += t.user + t.sys;
      }
      if (target === 'raw') {
        const t0 = process.hrtime.bigint();
        run('sync', [OUT]);
        secs += Number(process.hrtime.bigint() - t0) / 1e9;
        alloc[tool.name] = allocated(OUT);
        if (rep === 0) same[tool.name] = run('cmp', ['--silent', master, OUT], { allowFail: true }).status === 0;
      } else {
        if (rep === 0) same[tool.name] = rbdSameAsMaster(img);
        rbdRm(img);
      }
      times[tool.name].push(secs);
      cpu[tool.name].push(cpuSecs);
      log(`${target} ${kind} ${tool.name}: ${secs.toFixed(2)} s (CPU ${cpuSecs.toFixed(2)} s)${alloc[tool.name] !== undefined ? `, allocated ${alloc[tool.name]}` : ''}`);
    }
  }
  const rows = {};
  for (const t of tools) {
    const s = summarize(times[t.name]);
    rows[t.name] = {
      command: commandString(t.steps(path.relative(ROOT, src), 'IMG').flat()),
      ...Object.fromEntries(Object.entries(s).map(([k, v]) => [k, round(v, 3)])),
      runs: times[t.name].map((x) => round(x, 3)),
      cpuSeconds: cpu[t.name].map((x) => round(x, 2)),
      allocatedAfter: alloc[t.name],
      identicalToMaster: same[t.name],
    };
  }
  const section = { benchCommand: provenance().command, loadAverageAtEnd: os.loadavg().map((x) => round(x, 2)), tools: rows };
  const ours = rows.blocksmith?.medianSeconds;
  if (ours && rows['qemu-img']) {
    section.timeVsQemuImg = round(ours / rows['qemu-img'].medianSeconds, 3);
    section.goal = { name: 'issue 19 item 3: at most 0.67x qemu-img convert', met: section.timeVsQemuImg <= 0.67 };
    if (target === 'raw' && kind === 'plain') section.goalIssue8 = { name: '>= 1.5x faster than qemu-img convert', met: 1 / section.timeVsQemuImg >= 1.5 };
  }
  if (ours && rows['qemu-img-W-m16']) section.timeVsQemuImgWm16 = round(ours / rows['qemu-img-W-m16'].medianSeconds, 3);
  if (ours && rows['blocksmith-before']) section.timeVsBefore = round(ours / rows['blocksmith-before'].medianSeconds, 3);
  if (opts.floors) section.floors = floors(kind, target, alloc.blocksmith ?? alloc['qemu-img']);
  return section;
}

// The write floor's input: the largest qcow2 file (as many of the copy's
// bytes as it has), read into memory first.
const writeSource = Object.values(inputs).sort((a, b) => b.fileBytes - a.fileBytes)[0];
const writeCount = (dataBytes) => Math.floor(Math.min(dataBytes, writeSource.fileBytes) / (4 << 20));

// The physical floors, cold, in the same run as the tools.
function floors(kind, target, dataBytes) {
  const src = inputs[kind].file;
  const f = { read: [], infoWall: [], infoCpu: [], write: [] };
  for (let rep = 0; rep < opts.reps; rep++) {
    dropCaches();
    f.read.push(timed(['dd', `if=${src}`, 'of=/dev/null', 'bs=4M']).wall);
    dropCaches();
    const i = timed(['node', blocksmithCli(ROOT), 'info', '--json', src]);
    f.infoWall.push(i.wall);
    f.infoCpu.push(i.user + i.sys);
    if (target === 'raw' && dataBytes) {
      // Real data from memory: on this VM's disk zeros from /dev/zero wrote at
      // 100-340 MB/s, data at ~1 GB/s (bench/results/qcow2-8g.json: its raw floors, written from /dev/zero).
      fs.rmSync(FLOOR, { force: true });
      dropCaches();
      run('dd', [`if=${writeSource.file}`, 'of=/dev/null', 'bs=4M']);
      f.write.push(timed(['dd', `if=${writeSource.file}`, `of=${FLOOR}`, 'bs=4M', `count=${writeCount(dataBytes)}`, 'conv=fdatasync']).wall);
      fs.rmSync(FLOOR, { force: true });
    }
  }
  const med = (xs) => (xs.length ? round(summarize(xs).medianSeconds, 3) : undefined);
  return {
    readSeconds: med(f.read),
    readCommand: `dd if=${path.relative(ROOT, src)} of=/dev/null bs=4M`,
    infoSeconds: med(f.infoWall),
    infoCpuSeconds: med(f.infoCpu),
    infoCommand: `node dist/cli/bin/blocksmith.js info --json ${path.relative(ROOT, src)}`,
    writeSeconds: med(f.write),
    writeCommand:
      dataBytes && target === 'raw'
        ? `dd if=${path.relative(ROOT, writeSource.file)} of=FLOOR bs=4M count=${writeCount(dataBytes)} conv=fdatasync (input read first: in memory)`
        : undefined,
    runs: Object.fromEntries(Object.entries(f).map(([k, v]) => [k, v.map((x) => round(x, 3))])),
  };
}

try {
  if (cluster) result.rbdCeiling = { ...rbdCeiling(), command: 'rbd bench --io-type write --io-size 4M --io-threads 16 --io-total 2147483648 rbd/IMG' };
  for (const target of targets) {
    for (const kind of kinds) {
      result.results[`${target}/${kind}`] = measure(target, kind);
      writeResult(opts.name, result, places);
    }
  }
} finally {
  fs.rmSync(OUT, { force: true });
  fs.rmSync(TMP, { force: true });
  fs.rmSync(FLOOR, { force: true });
}
result.loadAverageAtEnd = os.loadavg().map((x) => round(x, 2));
log(`wrote ${writeResult(opts.name, result, places)}`);
for (const [k, v] of Object.entries(result.results)) {
  if (v.timeVsQemuImg !== undefined) log(`${k}: ${v.timeVsQemuImg}x qemu-img convert's time${v.timeVsBefore !== undefined ? `, ${v.timeVsBefore}x before` : ''}`);
}
