#!/usr/bin/env node
// Side-by-side benchmark of `carve` against foremost, scalpel and photorec
// (issue 5) on the shared corpus (../shared/carve: make-corpus.sh, score.py,
// run_peers.py), in one run:
//
//   node bench/carve.bench.js [--corpus DIR] [--reps 3] [--images raw-mix,fat32,ext4,ext3,big]
//                             [--peers foremost,foremost-q,scalpel-fwd,photorec | --peers none] [--peer-images big]
//
// For every image: `node dist/cli/bin/carve.js IMG -o OUT --force --quiet`, then
// score.py on OUT (report.json and the gallery's index.html are moved aside
// first: the scorer counts every file). On big.img (3 GiB, every JPEG contiguous) the timed runs are
// repeated --reps times, warm page cache (the image is read once first, as
// run_peers.py does), and `carve --sector-size 512` is timed too (the
// like-for-like of foremost -q). The ceiling is measured in the same run:
// `dd if=big.img of=/dev/null bs=16M` warm, median of --reps; and cold (drop_caches before
// each run, dd and carve alternating), the read speed a /dev source really has.
// Peers: run_peers.py on the same images in the same run (its MB/s on
// big.img and its scores); --peers none reuses ../shared/carve/results/peers.json.
//
// The corpus is built with make-corpus.sh into --corpus (default
// bench/work/carve-corpus, ~5 GB, not committed) when missing.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, WORK_DIR, aptInstall, haveCommand, median, parseArgs, provenance, machineInfo, round, writeResult, goal } from './lib.js';

const SHARED = path.resolve(ROOT, '..', 'shared', 'carve');
const usage = 'node bench/carve.bench.js [--corpus DIR] [--reps N] [--images a,b] [--peers list|none] [--out NAME]';
const opts = parseArgs(process.argv.slice(2), {
  corpus: { type: 'string', default: process.env.BLOCKSMITH_CARVE_CORPUS || path.join(WORK_DIR, 'carve-corpus') },
  reps: { type: 'number', default: 3 },
  images: { type: 'string', default: 'raw-mix,fat32,ext4,ext3,big' },
  peers: { type: 'string', default: 'foremost,foremost-q,scalpel-fwd,photorec' },
  peerImages: { type: 'string', default: '' },
  out: { type: 'string', default: 'carve' },
}, usage);
const log = (...a) => console.error(...a);
const images = opts.images.split(',');
const corpus = path.resolve(opts.corpus);

function run(argv, options = {}) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', maxBuffer: 256 << 20, ...options });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0 && r.status !== 3) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr}`);
  return { wall, stdout: r.stdout, status: r.status };
}

if (!images.every((n) => fs.existsSync(path.join(corpus, `${n}.img`)))) {
  log(`building the corpus in ${corpus} (make-corpus.sh)`);
  run(['bash', path.join(SHARED, 'make-corpus.sh'), corpus], { stdio: 'inherit' });
}

fs.mkdirSync(WORK_DIR, { recursive: true });
const work = fs.mkdtempSync(path.join(WORK_DIR, 'carve-run-'));
fs.mkdirSync(work, { recursive: true });
const carveCli = path.join(ROOT, 'dist', 'cli', 'bin', 'carve.js');

function carveOnce(img, out, extra = []) {
  fs.rmSync(out, { recursive: true, force: true });
  const r = run([process.execPath, carveCli, img, '-o', out, '--force', '--quiet', ...extra]);
  const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
  fs.renameSync(path.join(out, 'report.json'), `${out}.report.json`);
  // The gallery page is not a carved file either (the scorer would count it as a false positive).
  fs.rmSync(path.join(out, 'index.html'), { force: true });
  return { wall: r.wall, report };
}

function score(name, out) {
  const r = run(['python3', path.join(SHARED, 'score.py'), path.join(corpus, `${name}.json`), out]);
  const s = JSON.parse(r.stdout);
  const pick = ({ outputs, exact_outputs, partial_outputs, truncated_at_embedded_eoi, embedded_outputs, false_positives, gt_recoverable, gt_exact, by_layout }) => ({
    outputs, exact_outputs, partial_outputs, truncated_at_embedded_eoi, embedded_outputs, false_positives, gt_recoverable, gt_exact,
    contiguous: by_layout?.contiguous ? { total: by_layout.contiguous.total, exact: by_layout.contiguous.exact } : undefined,
  });
  return pick(s);
}

function dropCaches() {
  run(['sync']);
  fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
}
// Reads the whole image once: warms the page cache, and times a sequential read.
const readAll = (img) => run(['dd', `if=${img}`, 'of=/dev/null', 'bs=16M', 'status=none']);

const result = {
  ...provenance(),
  date: new Date().toISOString(),
  machine: machineInfo(),
  corpus,
  cache: 'warm page cache (image read once before the timed runs), like run_peers.py',
  images: {},
};

for (const name of images) {
  const img = path.join(corpus, `${name}.img`);
  const size = fs.statSync(img).size;
  readAll(img);
  const out = path.join(work, name);
  const runs = [];
  const reps = name === 'big' ? opts.reps : 1;
  let last;
  for (let i = 0; i < reps; i++) {
    last = carveOnce(img, out);
    runs.push(last.wall);
    log(`${name}: carve run ${i + 1}: ${last.wall.toFixed(2)} s`);
  }
  const entry = {
    size,
    carve: {
      command: `carve ${name}.img -o OUT --force --quiet`,
      wall_s: runs.map((w) => round(w, 3)),
      median_wall_s: round(median(runs), 3),
      mb_per_s: round(size / 1e6 / median(runs), 1),
      report: { complete: last.report.complete, partial: last.report.partial, rejected: last.report.rejected, candidates: last.report.candidates },
      score: score(name, out),
    },
  };
  if (name === 'big') {
    const dd = [];
    for (let i = 0; i < opts.reps; i++) dd.push(readAll(img).wall);
    entry.sequential_read = { command: 'dd if=big.img of=/dev/null bs=16M (warm)', wall_s: dd.map((w) => round(w, 3)), mb_per_s: round(size / 1e6 / median(dd), 1) };
    const aligned = [];
    let al;
    for (let i = 0; i < opts.reps; i++) {
      al = carveOnce(img, `${out}-s512`, ['--sector-size', '512']);
      aligned.push(al.wall);
    }
    // Cold: what a recovery from a real disk sees (a /dev node is not in the
    // page cache). dd and carve alternate, each after sync + drop_caches.
    const coldDd = [], coldCarve = [];
    for (let i = 0; i < opts.reps; i++) {
      dropCaches();
      coldDd.push(readAll(img).wall);
      dropCaches();
      coldCarve.push(carveOnce(img, `${out}-cold`).wall);
      log(`${name}: cold dd ${coldDd.at(-1).toFixed(2)} s, cold carve ${coldCarve.at(-1).toFixed(2)} s`);
    }
    fs.rmSync(`${out}-cold`, { recursive: true, force: true });
    entry.cold = {
      note: 'sync + echo 3 > /proc/sys/vm/drop_caches before every run; dd and carve alternate',
      sequential_read: { command: 'dd if=big.img of=/dev/null bs=16M (cold)', wall_s: coldDd.map((w) => round(w, 3)), mb_per_s: round(size / 1e6 / median(coldDd), 1) },
      carve: { command: 'carve big.img -o OUT --force --quiet (cold)', wall_s: coldCarve.map((w) => round(w, 3)), mb_per_s: round(size / 1e6 / median(coldCarve), 1) },
    };
    readAll(img);
    entry.carve_sector512 = { command: 'carve big.img -o OUT --force --quiet --sector-size 512', wall_s: aligned.map((w) => round(w, 3)), mb_per_s: round(size / 1e6 / median(aligned), 1), score: score(name, `${out}-s512`) };
  }
  fs.rmSync(out, { recursive: true, force: true });
  fs.rmSync(`${out}-s512`, { recursive: true, force: true });
  result.images[name] = entry;
  writeResult(opts.out, result, { CORPUS: corpus });
}

// Peers, same run (or the shared measured results with --peers none).
let peers;
if (opts.peers !== 'none') {
  if (!['foremost', 'scalpel', 'photorec'].every(haveCommand)) aptInstall(['foremost', 'scalpel', 'testdisk'], log);
  const dir = path.join(work, 'peers');
  // --peer-images big: the peers run here on those images only; the other
  // images' peer scores come from the shared measured results.
  const peerImages = opts.peerImages ? opts.peerImages.split(',') : images;
  run(['python3', path.join(SHARED, 'run_peers.py'), corpus, dir, '--images', peerImages.join(','), '--configs', opts.peers, '--big-runs', String(opts.reps)], { stdio: ['ignore', 'ignore', 'inherit'] });
  const fresh = JSON.parse(fs.readFileSync(path.join(dir, 'peers.json'), 'utf8'));
  const shared = JSON.parse(fs.readFileSync(path.join(SHARED, 'results', 'peers.json'), 'utf8'));
  const wantedConfigs = opts.peers.split(',');
  peers = { entries: [...fresh.entries, ...shared.entries.filter((e) => !peerImages.includes(e.image) && wantedConfigs.includes(e.config)).map((e) => ({ ...e, from_shared_results: true }))] };
  result.peers_source = `run_peers.py in this run on ${peerImages.join(',')}; other images from ../shared/carve/results/peers.json`;
} else {
  peers = JSON.parse(fs.readFileSync(path.join(SHARED, 'results', 'peers.json'), 'utf8'));
  result.peers_source = '../shared/carve/results/peers.json (measured earlier on this machine)';
}
result.peers = {};
for (const e of peers.entries.filter((x) => !x.device && images.includes(x.image))) {
  (result.peers[e.image] ??= {})[e.config] = {
    command: e.command, mb_per_s: e.mb_per_s, median_wall_s: e.median_wall_s,
    exact: e.score.gt_exact, recoverable: e.score.gt_recoverable, partial: e.score.partial_outputs,
    false_positives: e.score.false_positives, truncated_at_embedded_eoi: e.score.truncated_at_embedded_eoi, outputs: e.score.outputs,
    ...(e.from_shared_results ? { from_shared_results: true } : {}),
  };
}

// Goals (issue 5).
const big = result.images.big;
if (big) {
  const peerBig = Object.entries(result.peers.big ?? {}).filter(([k]) => k !== 'foremost-q');
  const fastest = Math.max(...peerBig.map(([, v]) => v.mb_per_s));
  const fq = result.peers.big?.['foremost-q']?.mb_per_s;
  // raw-mix and big are the images whose 'contiguous' layout is intact by construction
  // (on the filesystem images, deleted files may be partly overwritten).
  const rawImages = ['raw-mix', 'big'].map((n) => result.images[n]).filter(Boolean);
  const contiguous = rawImages.reduce((a, e) => a + (e.carve.score.contiguous?.total ?? 0), 0);
  const contiguousExact = rawImages.reduce((a, e) => a + (e.carve.score.contiguous?.exact ?? 0), 0);
  result.goals = [
    goal('contiguous intact JPEGs exact (raw-mix + big), fraction', contiguous ? contiguousExact / contiguous : 0, 1),
    { name: 'false positives (all images)', target: '= 0', value: Object.values(result.images).reduce((a, e) => a + e.carve.score.false_positives, 0) },
    { name: 'thumbnails cut (all images)', target: '= 0', value: Object.values(result.images).reduce((a, e) => a + e.carve.score.truncated_at_embedded_eoi, 0) },
    goal('big.img MB/s / fastest peer (every-byte modes)', big.carve.mb_per_s / fastest, 2),
    ...(fq ? [goal('big.img --sector-size 512 MB/s / foremost -q', big.carve_sector512.mb_per_s / fq, 2)] : []),
    goal('big.img MB/s / sequential read (dd, warm)', big.carve.mb_per_s / big.sequential_read.mb_per_s, 0.8),
    goal('big.img MB/s / sequential read, both cold (dd, drop_caches)', big.cold.carve.mb_per_s / big.cold.sequential_read.mb_per_s, 0.8),
  ];
  for (const g of result.goals) if (g.met === undefined) g.met = g.value === 0;
}
const file = writeResult(opts.out, result, { CORPUS: corpus });
fs.rmSync(work, { recursive: true, force: true });
log(`wrote ${file}`);
for (const g of result.goals ?? []) log(`${g.met ? 'met   ' : 'MISSED'} ${g.name}: ${g.value} (target ${g.target})`);
