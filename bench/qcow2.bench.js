#!/usr/bin/env node
// qcow2 -> sparse raw (issue 8): blocksmith against qemu-img, side by side.
//
//   node bench/qcow2.bench.js [--reps 3] [--vm-size 4G] [--kinds plain,compressed]
//
// Inputs (bench/work/, not committed): the VM-like raw master of
// bench/make-images.js (ext4 from real /usr trees, ~30 % data), converted by
// `qemu-img convert -f raw -O qcow2` (plain) and with `-c` (compressed, zlib).
// Tools, each writing a fresh target (deleted before each run):
//   blocksmith        node dist/cli/bin/sparsify.js vm.qcow2 out.raw --json
//   qemu-img          qemu-img convert -f qcow2 -O raw vm.qcow2 out.raw
//   qemu-img + cp     the above to a temp file, then cp --sparse=always (the old recipe)
// Cache policy: cold (sync + drop_caches) before every timed run; every timed
// interval includes a final `sync out.raw`. After each run: allocated bytes
// and content identity with the raw master (cmp). Goal (issue 8): blocksmith
// >= 1.5x faster than qemu-img convert on the plain image, allocated bytes
// <= qemu-img's.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, WORK_DIR, commandString, machineInfo, parseArgs, provenance, round, summarize, writeResult } from './lib.js';
import { ensureImages, imagePath } from './make-images.js';

const USAGE = `usage: node bench/qcow2.bench.js [--reps N] [--vm-size SIZE] [--kinds plain,compressed]`;
const opts = parseArgs(
  process.argv.slice(2),
  { reps: { type: 'number', default: 3 }, vmSize: { type: 'string', default: '4G' }, kinds: { type: 'string', default: 'plain,compressed' } },
  USAGE,
);
const log = (m) => process.stderr.write(`[qcow2.bench] ${m}\n`);

function run(cmd, args, { allowFail = false } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error) throw r.error;
  if (r.status !== 0 && !allowFail) throw new Error(`${commandString([cmd, ...args])} exited ${r.status ?? r.signal}: ${(r.stderr || '').trim().slice(-1000)}`);
  return r;
}
const allocated = (f) => fs.statSync(f).blocks * 512;
function dropCaches() {
  run('sync', []);
  fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
}

const cli = path.join(ROOT, 'dist/cli/bin/sparsify.js');
const OUT = path.join(WORK_DIR, 'qcow2-out.raw');
const TMP = path.join(WORK_DIR, 'qcow2-tmp.raw');
const tools = [
  { name: 'blocksmith', steps: (src) => [['node', cli, src, OUT, '--json']] },
  { name: 'qemu-img convert', steps: (src) => [['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', src, OUT]] },
  {
    name: 'qemu-img convert + cp --sparse=always',
    steps: (src) => [['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', src, TMP], ['cp', '--sparse=always', TMP, OUT]],
  },
];

ensureImages({ vmSize: opts.vmSize, only: 'vm' });
const master = imagePath('vm');
const kinds = opts.kinds.split(',');
const inputs = {};
for (const kind of kinds) {
  const file = path.join(WORK_DIR, `qcow2-vm-${kind}.qcow2`);
  const stamp = `${file}.from`;
  const want = `${fs.statSync(master).size}:${fs.statSync(master).mtimeMs}`;
  if (!fs.existsSync(file) || !fs.existsSync(stamp) || fs.readFileSync(stamp, 'utf8') !== want) {
    log(`making ${file}`);
    run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', ...(kind === 'compressed' ? ['-c'] : []), master, file]);
    fs.writeFileSync(stamp, want);
  }
  inputs[kind] = { file, fileBytes: fs.statSync(file).size, allocated: allocated(file) };
}

const result = {
  suite: 'qcow2',
  provenance: provenance(),
  commit: run('git', ['-C', ROOT, 'rev-parse', 'HEAD']).stdout.trim(),
  machine: machineInfo(),
  qemuImg: run('qemu-img', ['--version']).stdout.split('\n')[0],
  loadAverageAtStart: os.loadavg().map((x) => round(x, 2)),
  cachePolicy: 'cold: sync + drop_caches before each run; each run ends with sync of the output',
  master: { path: path.relative(ROOT, master), size: fs.statSync(master).size },
  inputs: Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, { ...v, file: path.relative(ROOT, v.file) }])),
  results: {},
};

for (const kind of kinds) {
  const src = inputs[kind].file;
  const times = Object.fromEntries(tools.map((t) => [t.name, []]));
  const alloc = {};
  const same = {};
  for (let rep = 0; rep < opts.reps; rep++) {
    // rotate the order each repetition
    const order = tools.map((_, i) => tools[(i + rep) % tools.length]);
    for (const tool of order) {
      fs.rmSync(OUT, { force: true });
      fs.rmSync(TMP, { force: true });
      dropCaches();
      const t0 = process.hrtime.bigint();
      for (const argv of tool.steps(src)) run(argv[0], argv.slice(1));
      run('sync', [OUT]);
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      times[tool.name].push(secs);
      alloc[tool.name] = allocated(OUT);
      if (rep === 0) same[tool.name] = run('cmp', ['--silent', master, OUT], { allowFail: true }).status === 0;
      log(`${kind} ${tool.name}: ${secs.toFixed(2)} s, allocated ${alloc[tool.name]}`);
    }
  }
  const rows = {};
  for (const t of tools) {
    const s = summarize(times[t.name]);
    rows[t.name] = {
      command: commandString(t.steps(path.relative(ROOT, src)).flat()),
      ...Object.fromEntries(Object.entries(s).map(([k, v]) => [k, round(v, 3)])),
      runs: times[t.name].map((x) => round(x, 3)),
      throughputGBs: round(result.master.size / s.medianSeconds / 1e9, 3),
      allocatedAfter: alloc[t.name],
      identicalToMaster: same[t.name],
    };
  }
  const ours = rows.blocksmith.medianSeconds;
  result.results[kind] = {
    tools: rows,
    speedupVsQemuImg: round(rows['qemu-img convert'].medianSeconds / ours, 2),
    speedupVsQemuImgPlusCp: round(rows['qemu-img convert + cp --sparse=always'].medianSeconds / ours, 2),
    allocatedVsQemuImg: alloc.blocksmith - alloc['qemu-img convert'],
  };
  if (kind === 'plain') result.results[kind].goal = { name: '>= 1.5x faster than qemu-img convert', met: result.results[kind].speedupVsQemuImg >= 1.5 };
  writeResult('qcow2', result);
}
result.loadAverageAtEnd = os.loadavg().map((x) => round(x, 2));
fs.rmSync(OUT, { force: true });
fs.rmSync(TMP, { force: true });
log(`wrote ${writeResult('qcow2', result)}`);
for (const [k, v] of Object.entries(result.results)) log(`${k}: ${v.speedupVsQemuImg}x vs qemu-img convert, ${v.speedupVsQemuImgPlusCp}x vs qemu-img + cp`);
