#!/usr/bin/env node
// Fragmented JPEGs (issue 9): how many of the corpus' fragmented JPEGs
// `carve` reassembles byte-exact, with and without the fragment search,
// beside foremost and photorec (their scores on the same images, measured by
// ../shared/carve/run_peers.py: results/peers.json), and the scan throughput
// on unfragmented data (big.img: every JPEG contiguous) with the search on
// and off, and of an earlier build (--before-cli) for a before/after.
//
//   node bench/carve-frag.bench.js [--corpus DIR] [--images raw-mix,fat32] [--throughput big]
//                                  [--reps 3] [--before-cli PATH/dist/cli/bin/carve.js]
//
// Exact = an output file whose sha256 is the JPEG's (or its SOI..EOI stream's).
// report.json is moved aside before scoring (score.py counts every file).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, WORK_DIR, median, parseArgs, provenance, machineInfo, round, writeResult, goal } from './lib.js';

const SHARED = path.resolve(ROOT, '..', 'shared', 'carve');
const usage = 'node bench/carve-frag.bench.js [--corpus DIR] [--images a,b] [--throughput big|none] [--reps N] [--before-cli FILE] [--out NAME]';
const opts = parseArgs(process.argv.slice(2), {
  corpus: { type: 'string', default: process.env.BLOCKSMITH_CARVE_CORPUS || path.join(WORK_DIR, 'carve-corpus') },
  images: { type: 'string', default: 'raw-mix,fat32' },
  throughput: { type: 'string', default: 'big' },
  reps: { type: 'number', default: 3 },
  beforeCli: { type: 'string', default: '' },
  out: { type: 'string', default: 'carve-frag' },
}, usage);
const log = (...a) => console.error(...a);
const corpus = path.resolve(opts.corpus);
// Written as $CORPUS / $BEFORE_CLI in the result file.
const places = { CORPUS: corpus, BEFORE_CLI: opts.beforeCli && path.resolve(opts.beforeCli) };
const carveCli = path.join(ROOT, 'dist', 'cli', 'bin', 'carve.js');
fs.mkdirSync(WORK_DIR, { recursive: true });
const work = fs.mkdtempSync(path.join(WORK_DIR, 'carve-frag-'));

function run(argv) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', maxBuffer: 256 << 20 });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0 && r.status !== 3) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr}`);
  return { wall, stdout: r.stdout };
}

function carveOnce(cli, img, out, extra = []) {
  fs.rmSync(out, { recursive: true, force: true });
  const r = run([process.execPath, cli, img, '-o', out, '--force', '--quiet', ...extra]);
  const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
  fs.renameSync(path.join(out, 'report.json'), `${out}.report.json`);
  return { wall: r.wall, report };
}

function hashes(dir) {
  const set = new Set();
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else set.add(createHash('sha256').update(fs.readFileSync(p)).digest('hex'));
    }
  };
  walk(dir);
  return set;
}

// Fragmented ground truth (>= 2 fragments, every byte still on disk), exact
// by sha256, split into baseline / progressive (progressive is not searched).
function fragmentedScore(manifest, out) {
  const got = hashes(out);
  const s = { total: 0, exact: 0, baseline: 0, baseline_exact: 0, progressive: 0, progressive_exact: 0, by_layout: {} };
  for (const j of manifest.jpegs) {
    if (j.fragments < 2 || !j.intact) continue;
    const exact = got.has(j.sha256) || (j.stream_sha256 && got.has(j.stream_sha256));
    const kind = j.features.includes('progressive') ? 'progressive' : 'baseline';
    s.total++;
    s[kind]++;
    if (exact) {
      s.exact++;
      s[`${kind}_exact`]++;
    }
    const l = (s.by_layout[j.layout] ??= { total: 0, exact: 0, baseline: 0, baseline_exact: 0 });
    l.total++;
    if (exact) l.exact++;
    if (kind === 'baseline') {
      l.baseline++;
      if (exact) l.baseline_exact++;
    }
  }
  return s;
}

function scorePy(name, out) {
  const r = run(['python3', path.join(SHARED, 'score.py'), path.join(corpus, `${name}.json`), out]);
  const s = JSON.parse(r.stdout);
  return { gt_exact: s.gt_exact, gt_recoverable: s.gt_recoverable, false_positives: s.false_positives, partial_outputs: s.partial_outputs, by_layout: s.by_layout };
}

const result = {
  ...provenance(),
  date: new Date().toISOString(),
  machine: machineInfo(),
  corpus,
  cache: 'warm page cache (image read once before the timed runs)',
  images: {},
};
const warm = (img) => run(['dd', `if=${img}`, 'of=/dev/null', 'bs=16M', 'status=none']);

for (const name of opts.images.split(',').filter(Boolean)) {
  const img = path.join(corpus, `${name}.img`);
  const manifest = JSON.parse(fs.readFileSync(path.join(corpus, `${name}.json`), 'utf8'));
  warm(img);
  const entry = { size: fs.statSync(img).size };
  for (const [label, extra] of [['reassemble', []], ['no_reassemble', ['--no-reassemble']]]) {
    const out = path.join(work, `${name}-${label}`);
    const r = carveOnce(carveCli, img, out, extra);
    entry[label] = {
      command: `carve ${name}.img -o OUT --force --quiet ${extra.join(' ')}`.trim(),
      wall_s: round(r.wall, 3),
      report: { complete: r.report.complete, reassembled: r.report.reassembled, partial: r.report.partial },
      fragmented: fragmentedScore(manifest, out),
      score: scorePy(name, out),
    };
    log(`${name} ${label}: ${r.wall.toFixed(2)} s, fragmented exact ${entry[label].fragmented.exact}/${entry[label].fragmented.total} (baseline ${entry[label].fragmented.baseline_exact}/${entry[label].fragmented.baseline})`);
    fs.rmSync(out, { recursive: true, force: true });
  }
  result.images[name] = entry;
  writeResult(opts.out, result, places);
}

// Peers on the same images (measured by run_peers.py on this machine).
const peers = JSON.parse(fs.readFileSync(path.join(SHARED, 'results', 'peers.json'), 'utf8'));
result.peers_source = '../shared/carve/results/peers.json (run_peers.py on this machine); the first entry per image and config';
result.peers = {};
for (const e of peers.entries) {
  if (!result.images[e.image] || !['foremost', 'photorec', 'photorec-free'].includes(e.config)) continue;
  const per = (result.peers[e.image] ??= {});
  if (per[e.config]) continue;
  const bl = e.score.by_layout ?? {};
  const pick = (k) => (bl[k] ? { exact: bl[k].exact, total: bl[k].total } : undefined);
  per[e.config] = {
    command: e.command, gt_exact: e.score.gt_exact,
    bifrag: pick('bifrag'), 'bifrag-zero-gap': pick('bifrag-zero-gap'), interleaved: pick('interleaved'), fragmented: pick('fragmented'),
  };
}

// Throughput on unfragmented data: the search only runs for files that broke.
if (opts.throughput !== 'none') {
  const img = path.join(corpus, `${opts.throughput}.img`);
  const size = fs.statSync(img).size;
  warm(img);
  const t = { image: `${opts.throughput}.img`, size };
  const variants = [['reassemble', carveCli, []], ['no_reassemble', carveCli, ['--no-reassemble']]];
  if (opts.beforeCli) variants.push(['before', path.resolve(opts.beforeCli), []]);
  for (const [label, cli, extra] of variants) {
    const walls = [];
    for (let i = 0; i < opts.reps; i++) walls.push(carveOnce(cli, img, path.join(work, `tp-${label}`), extra).wall);
    fs.rmSync(path.join(work, `tp-${label}`), { recursive: true, force: true });
    t[label] = { command: `${label === 'before' ? opts.beforeCli : 'carve'} ${opts.throughput}.img -o OUT --force --quiet ${extra.join(' ')}`.trim(), wall_s: walls.map((w) => round(w, 3)), mb_per_s: round(size / 1e6 / median(walls), 1) };
    log(`${opts.throughput} ${label}: ${t[label].mb_per_s} MB/s`);
  }
  result.throughput = t;
}

const raw = result.images['raw-mix']?.reassemble;
if (raw) {
  const bl = raw.score.by_layout;
  const bif = (bl.bifrag?.exact ?? 0) + (bl['bifrag-zero-gap']?.exact ?? 0);
  const bifTotal = (bl.bifrag?.total ?? 0) + (bl['bifrag-zero-gap']?.total ?? 0);
  const fl = raw.fragmented.by_layout;
  const baseBif = (fl.bifrag?.baseline ?? 0) + (fl['bifrag-zero-gap']?.baseline ?? 0);
  const baseBifExact = (fl.bifrag?.baseline_exact ?? 0) + (fl['bifrag-zero-gap']?.baseline_exact ?? 0);
  result.goals = [
    goal('raw-mix bifragmented baseline JPEGs exact, fraction (progressive is not searched)', baseBif ? baseBifExact / baseBif : 0, 0.9),
    { name: 'raw-mix bifragmented JPEGs exact, fraction (all, progressive included)', value: round(bifTotal ? bif / bifTotal : 0, 3), exact: bif, total: bifTotal },
    { name: 'false positives (all images)', target: '= 0', value: Object.values(result.images).reduce((a, e) => a + e.reassemble.score.false_positives, 0) },
  ];
  if (result.throughput?.before) result.goals.push(goal('big.img MB/s after / before', result.throughput.reassemble.mb_per_s / result.throughput.before.mb_per_s, 0.95));
  for (const g of result.goals) if (g.met === undefined && g.target === '= 0') g.met = g.value === 0;
}
const file = writeResult(opts.out, result, places);
fs.rmSync(work, { recursive: true, force: true });
log(`wrote ${file}`);
for (const g of result.goals ?? []) log(`${g.met ? 'met   ' : g.met === false ? 'MISSED' : 'info  '} ${g.name}: ${g.value}${g.target ? ` (target ${g.target})` : ''}`);
