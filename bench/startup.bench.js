// Start-up of the CLIs against `node -e 0` (issue 19 item 6): how much of a
// small job is Node and how much is ours. Each command is spawned from a
// bash wrapper that reports the child's wall time ($EPOCHREALTIME) and its
// user + system CPU time (`times`, from the kernel's accounting, ms
// resolution): on a shared 2-core machine CPU time is the steadier figure,
// wall time what a user waits. Variants (and the two builds, with
// --before DIR) are interleaved, the order rotating each round, and every
// figure is a median. See bench/README.md.
//
//   node bench/startup.bench.js [--before DIR] [--runs 40] [--out startup]
//
// DIR: another build of blocksmith (dist/, build/Release/ and node_modules/
// reachable from it), e.g. a copy of dist/ taken before a change.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync, openSync, closeSync, ftruncateSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomFillSync } from 'node:crypto';
import { ROOT, commandString, cpuMonitor, machineInfo, median, parseArgs, provenance, round, waitForQuiet, writeResult } from './lib.js';

const USAGE = `usage: node bench/startup.bench.js [options]
  --before DIR   also measure the build in DIR (its dist/cli/bin/*.js), interleaved with this tree's
  --runs N       runs of each command per build (default 40)
  --out NAME     result file bench/results/NAME.json (default startup)`;
const opts = parseArgs(
  process.argv.slice(2),
  {
    before: { type: 'string', default: '' },
    runs: { type: 'number', default: 40 },
    out: { type: 'string', default: 'startup' },
  },
  USAGE,
);

// A 64 MiB image, 16 MiB of it data (random) and the rest a hole: `info`
// of a small file, where start-up is most of the job.
const WORK = join(ROOT, 'bench', 'work');
const IMAGE = join(WORK, 'startup-64m.raw');
mkdirSync(WORK, { recursive: true });
{
  const fd = openSync(IMAGE, 'w');
  const buf = Buffer.alloc(1 << 20);
  for (let i = 0; i < 16; i++) writeSync(fd, randomFillSync(buf), 0, buf.length, (8 + i) << 20);
  ftruncateSync(fd, 64 << 20);
  closeSync(fd);
}

const builds = { after: ROOT };
if (opts.before) builds.before = resolve(opts.before);
const bin = (dir, name) => join(dir, 'dist', 'cli', 'bin', `${name}.js`);

// [name, argv builder (null build: plain node)]
// Two floors, this tree only: an empty ES module file (what any ESM CLI pays
// on top of `node -e 0`: the ESM loader), and the library's info() of the
// same image without the CLI (addon, API modules, the scan itself).
const EMPTY_MODULE = join(WORK, 'startup-empty.mjs');
writeFileSync(EMPTY_MODULE, '');
const libraryInfo = `const { info } = await import(${JSON.stringify(join(ROOT, 'dist', 'api', 'extents.js'))}); await info(${JSON.stringify(IMAGE)});`;
const cases = [
  ['node -e 0', () => ['node', '-e', '0'], false],
  ['node EMPTY.mjs', () => ['node', EMPTY_MODULE], false],
  ['library info(IMG), no CLI', () => ['node', '--input-type=module', '-e', libraryInfo], false],
  ['blocksmith --version', (d) => ['node', bin(d, 'blocksmith'), '--version'], true],
  ['blocksmith --help', (d) => ['node', bin(d, 'blocksmith'), '--help'], true],
  ['blocksmith info IMG', (d) => ['node', bin(d, 'blocksmith'), 'info', IMAGE], true],
  ['blocksmith info --json IMG', (d) => ['node', bin(d, 'blocksmith'), 'info', '--json', IMAGE], true],
  ['sparsify --version', (d) => ['node', bin(d, 'sparsify'), '--version'], true],
  ['carve --version', (d) => ['node', bin(d, 'carve'), '--version'], true],
];

const jobs = [];
for (const [name, argv, perBuild] of cases) {
  if (!perBuild) jobs.push({ key: name, name, build: null, argv: argv(null) });
  else for (const [b, dir] of Object.entries(builds)) jobs.push({ key: `${b}: ${name}`, name, build: b, argv: argv(dir) });
}

// Every job's output once, checked: both builds must print the same thing.
const outputs = {};
for (const j of jobs) {
  const r = spawnSync(j.argv[0], j.argv.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${commandString(j.argv)}: exit ${r.status}: ${r.stderr}`);
  (outputs[j.name] ??= new Set()).add(r.stdout);
}
for (const [name, set] of Object.entries(outputs)) if (set.size !== 1) throw new Error(`${name}: the builds print different output`);

const WRAPPER = 's=$EPOCHREALTIME; "$@" >/dev/null 2>&1 </dev/null; rc=$?; e=$EPOCHREALTIME; times; echo "$s $e $rc"';
const secs = (t) => {
  const m = /^(\d+)m([\d.]+)s$/.exec(t);
  return Number(m[1]) * 60 + Number(m[2]);
};
function timed(argv) {
  const r = spawnSync('bash', ['-c', WRAPPER, 'bash', ...argv], { encoding: 'utf8' });
  const lines = r.stdout.trim().split('\n');
  const [cu, cs] = lines[1].trim().split(/\s+/).map(secs);
  const [s, e, rc] = lines[2].split(' ').map(Number);
  if (rc !== 0) throw new Error(`${commandString(argv)}: exit ${rc}`);
  return { wall: e - s, cpu: cu + cs };
}

const t0 = Date.now();
const quiet = await waitForQuiet({ maxBusy: 0.15, timeoutMs: 20_000 });
const samples = Object.fromEntries(jobs.map((j) => [j.key, { wall: [], cpu: [] }]));
const mon = cpuMonitor();
mon.start();
for (let round_ = 0; round_ < opts.runs; round_++) {
  const shift = round_ % jobs.length;
  const order = [...jobs.slice(shift), ...jobs.slice(0, shift)];
  if (round_ % 2) order.reverse();
  for (const j of order) {
    const t = timed(j.argv);
    samples[j.key].wall.push(t.wall);
    samples[j.key].cpu.push(t.cpu);
  }
  if ((round_ + 1) % 10 === 0) console.error(`  round ${round_ + 1}/${opts.runs}`);
}
const busy = mon.stop();

const ms = (x) => round(x * 1000, 1);
const node = samples['node -e 0'];
const nodeWall = median(node.wall);
const nodeCpu = median(node.cpu);
const results = {};
for (const j of jobs) {
  const s = samples[j.key];
  const w = median(s.wall);
  const c = median(s.cpu);
  results[j.key] = {
    command: commandString(j.argv.map((a) => a.replace(`${ROOT}/`, ''))),
    medianWallMs: ms(w),
    medianCpuMs: ms(c),
    wallOverNode: round(w / nodeWall, 2),
    cpuOverNode: round(c / nodeCpu, 2),
    oursWallMs: ms(w - nodeWall),
    oursCpuMs: ms(c - nodeCpu),
    wallMs: s.wall.map(ms),
    cpuMs: s.cpu.map(ms),
  };
}
const table = {};
for (const [name] of cases) {
  const row = {};
  const fmt = (r) => `${r.medianWallMs} ms wall (${r.wallOverNode}x node), ${r.medianCpuMs} ms cpu (${r.cpuOverNode}x node)`;
  if (results[name]) row.floor = fmt(results[name]);
  for (const b of ['before', 'after']) if (results[`${b}: ${name}`]) row[b] = fmt(results[`${b}: ${name}`]);
  table[name] = row;
}

const file = writeResult(
  opts.out,
  {
    name: 'startup',
    description:
      'Start-up of the CLIs: each command spawned through bash, wall time from $EPOCHREALTIME around it and user+system CPU time from `times`; medians of --runs interleaved runs (rotating order). xOverNode: the median over that of `node -e 0` in the same run; oursMs: the median minus node -e 0.',
    ...provenance(),
    date: new Date().toISOString(),
    durationSeconds: round((Date.now() - t0) / 1000, 1),
    machine: machineInfo(),
    quiet,
    otherCpuBusyDuringRuns: busy,
    image: { path: IMAGE, bytes: 64 << 20, dataBytes: 16 << 20 },
    builds,
    runs: opts.runs,
    table,
    results,
  },
  { BEFORE: builds.before },
);
console.log(JSON.stringify(table, null, 2));
console.log(`wrote ${file}`);
rmSync(IMAGE, { force: true });
rmSync(EMPTY_MODULE, { force: true });
