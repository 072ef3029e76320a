// Two builds of blocksmith side by side (a refactor must not move the
// figures): the same commands run with the build under test (A, this tree by
// default) and a baseline build (B, e.g. a clone at an older commit), in turn
// A B A B, warm, and the carve cold too (drop_caches before each run, with a
// cold `dd` of the image in the same rounds: the disk's floor). Each run's
// wall, user and system seconds come from the kernel's accounting of the
// child (GNU time); outputs go to /dev/shm and are compared (the same bytes,
// the same carved files).
//
//   node bench/builds-ab.bench.js --baseline DIR [--current DIR] [--image big.img] [--reps 5] [--out NAME]
//
// DIR: a repository with a build (dist/ and build/Release/); its CLIs are
// found in dist/cli/bin (this layout) or dist/cli (before issue 15).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { aptInstall, haveCommand, machineInfo, median, parseArgs, provenance, ROOT, round, writeResult } from './lib.js';

const usage = 'node bench/builds-ab.bench.js --baseline DIR [--current DIR] [--image IMG] [--reps N] [--out NAME]';
const opts = parseArgs(
  process.argv.slice(2),
  {
    baseline: { type: 'string' },
    current: { type: 'string', default: ROOT },
    image: { type: 'string', default: '/tmp/carve-corpus/big.img' },
    reps: { type: 'number', default: 5 },
    out: { type: 'string', default: 'builds-ab' },
  },
  usage,
);
if (!opts.baseline) {
  console.error(usage);
  process.exit(2);
}
if (!haveCommand('/usr/bin/time')) aptInstall(['time']);

function cli(dir, name) {
  for (const p of [join(dir, 'dist', 'cli', 'bin', `${name}.js`), join(dir, 'dist', 'cli', `${name}.js`)]) if (existsSync(p)) return p;
  throw new Error(`no ${name} CLI under ${dir}/dist`);
}

function dropCaches() {
  execFileSync('sync');
  execFileSync('sh', ['-c', 'echo 3 > /proc/sys/vm/drop_caches']);
}

/** Runs argv under GNU time: wall, user, sys seconds and peak RSS (KiB). */
function timed(argv) {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %U %S %M', ...argv], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  const last = r.stderr.trim().split('\n').pop();
  const [wall, user, sys, rss] = last.split(' ').map(Number);
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: exit ${r.status}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return { wall, user, sys, cpu: user + sys, peakMiB: rss / 1024 };
}

const image = opts.image;
const size = statSync(image).size;
const carveOut = (tag) => `/dev/shm/builds-ab-carve-${tag}`;
const copyOut = (tag) => `/dev/shm/builds-ab-copy-${tag}.raw`;
const tasks = {
  'info --no-seek-hole (warm)': (dir) => [process.execPath, cli(dir, 'blocksmith'), 'info', '--no-seek-hole', '--json', image],
  'sparse copy to /dev/shm (warm)': (dir, tag) => [process.execPath, cli(dir, 'sparsify'), image, copyOut(tag), '--quiet'],
  'carve (warm)': (dir, tag) => [process.execPath, cli(dir, 'carve'), image, '-o', carveOut(tag), '--quiet'],
  'carve (cold)': (dir, tag) => [process.execPath, cli(dir, 'carve'), image, '-o', carveOut(tag), '--quiet'],
};
const builds = { current: opts.current, baseline: opts.baseline };
const runs = {};
const floor = [];
for (const name of Object.keys(tasks)) for (const b of Object.keys(builds)) runs[`${name}|${b}`] = [];

const cleanup = () => {
  for (const tag of Object.keys(builds)) {
    rmSync(carveOut(tag), { recursive: true, force: true });
    rmSync(copyOut(tag), { force: true });
  }
};
cleanup();
for (let i = 0; i < opts.reps; i++) {
  for (const [name, argvOf] of Object.entries(tasks)) {
    const cold = name.includes('(cold)');
    if (cold) {
      dropCaches();
      floor.push(timed(['dd', `if=${image}`, 'of=/dev/null', 'bs=16M']).wall);
    }
    for (const [tag, dir] of Object.entries(builds)) {
      cleanup();
      if (cold) dropCaches();
      else execFileSync('cat', [image], { stdio: ['ignore', 'ignore', 'ignore'], maxBuffer: 1 });
      runs[`${name}|${tag}`].push(timed(argvOf(dir, tag)));
    }
    console.error(`round ${i + 1}/${opts.reps}: ${name}`);
  }
}

// The same results: copies byte-equal to the image; the same carved files.
const carved = {};
cleanup();
for (const [tag, dir] of Object.entries(builds)) {
  execFileSync(process.execPath, [cli(dir, 'carve'), image, '-o', carveOut(tag), '--quiet']);
  carved[tag] = readdirSync(carveOut(tag), { recursive: true }).filter((p) => String(p).endsWith('.jpg')).sort().join('\n');
  execFileSync(process.execPath, [cli(dir, 'sparsify'), image, copyOut(tag), '--quiet']);
  execFileSync('cmp', [image, copyOut(tag)]);
}
const sameCarve = carved.current === carved.baseline && carved.current.length > 0;
cleanup();

const summary = {};
for (const name of Object.keys(tasks)) {
  const a = runs[`${name}|current`];
  const b = runs[`${name}|baseline`];
  const m = (list, k) => round(median(list.map((r) => r[k])), 3);
  summary[name] = {
    current: { wall: m(a, 'wall'), cpu: m(a, 'cpu'), peakMiB: m(a, 'peakMiB') },
    baseline: { wall: m(b, 'wall'), cpu: m(b, 'cpu'), peakMiB: m(b, 'peakMiB') },
    // Pair by pair (A and B ran next to each other), then the median.
    ratioWall: round(median(a.map((r, i) => r.wall / b[i].wall)), 3),
    ratioCpu: round(median(a.map((r, i) => r.cpu / b[i].cpu)), 3),
  };
}
const coldCarve = summary['carve (cold)'].current.wall;
const warmCarve = summary['carve (warm)'].current.wall;
const ddCold = round(median(floor), 3);
const result = {
  suite: 'builds-ab',
  provenance: provenance(),
  machine: machineInfo(),
  image: { path: image, bytes: size },
  builds: {
    current: { dir: builds.current, commit: execFileSync('git', ['-C', builds.current, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim() },
    baseline: { dir: builds.baseline, commit: execFileSync('git', ['-C', builds.baseline, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim() },
  },
  reps: opts.reps,
  summary,
  coldCarve: {
    coldSeconds: coldCarve,
    warmSeconds: warmCarve,
    ddColdSeconds: ddCold,
    coldOverWarm: round(coldCarve / warmCarve, 3),
    // Issue 19's form of the goal: cold within 1.1x of the larger of the warm carve and the cold read.
    coldOverFloor: round(coldCarve / Math.max(warmCarve, ddCold), 3),
  },
  sameResults: { carvedFiles: sameCarve, copiesByteEqual: true },
  runs,
  ddColdRuns: floor,
};
const file = writeResult(opts.out, result);
console.log(JSON.stringify({ summary, coldCarve: result.coldCarve, sameResults: result.sameResults }, null, 2));
console.error(`wrote ${file}`);
