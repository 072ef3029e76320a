#!/usr/bin/env node
// Peak RSS of each blocksmith command on a 1 GiB and a 16 GiB input (issue 19 item 5).
//
//   node bench/memory.bench.js [--sizes 1,16] [--only info,map,...] [--cli dist/cli/bin/blocksmith.js] [--name memory]
//                              [--no-rbd] [--keep]
//
// Each command runs as the child of a small Python timer that reports getrusage(RUSAGE_CHILDREN):
// ru_maxrss is the peak resident set of the child (KiB), ru_utime/ru_stime its CPU. Every command runs
// in a process of its own, so the figure is that command's whole peak (Node, the addon, librbd, buffers).
//
// Inputs (bench/work/memory/, gitignored, deleted at the end unless --keep), the same shape at both sizes so
// that what grows with the size shows:
//   pat-NG.raw    N GiB raw image: in every MiB, 64 KiB of random bytes then 64 KiB of written zeros
//                 (allocated), the rest a hole. 3 extents per MiB: 3k at 1 GiB, 49k at 16 GiB; 1/16 data.
//   pat-NG.qcow2  the same as qcow2 (qemu-img convert -O qcow2), for the qcow2 -> raw copy.
//   carve-NG.img  for carve: the first GiB of the carve corpus' big.img (1 GiB), or big.img twice, at
//                 0 and at 8 GiB, in a 16 GiB file (holes between; carve --scope all reads every byte).
//   ext4-NG.img, fat-NG.img   filesystems of N GiB with the same 300 files (64-192 KiB) of which 150
//                 are deleted, for undelete --list and undelete -o.
// "cold": the input's pages are dropped from the page cache first (POSIX_FADV_DONTNEED through
// `dd iflag=nocache count=0`, this file only: other processes' caches stay); "warm": its data read
// once before (SEEK_DATA/SEEK_HOLE: holes are not read). Each input's pages are dropped again after
// its last run, so that the run does not leave gigabytes in the shared machine's page cache.
import { spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GiB, KiB, MiB, ROOT, WORK_DIR, commandString, machineInfo, memInfo, parseArgs, provenance, round, timeChild, writeResult } from './lib.js';

const usage = `usage: node bench/memory.bench.js [--sizes 1,16] [--only info,map,map-extents,sparsify-inplace,sparsify-copy,qcow2-raw,rbd-import,carve,undelete-list,undelete] [--cli PATH] [--name memory] [--no-rbd] [--keep]\n       node bench/memory.bench.js --only carve-ab --before OTHER/dist/cli/bin/blocksmith.js [--reps 3] [--name memory-carve-ab]`;
const opts = parseArgs(
  process.argv.slice(2),
  {
    sizes: { type: 'string', default: '1,16' },
    only: { type: 'string', default: '' },
    cli: { type: 'string', default: 'dist/cli/bin/blocksmith.js' },
    name: { type: 'string', default: 'memory' },
    corpus: { type: 'string', default: process.env.BLOCKSMITH_CARVE_CORPUS || path.join(WORK_DIR, 'carve-corpus') },
    noRbd: { type: 'boolean', default: false },
    // carve-ab: cold carve time and peak RSS of BEFORE (another build's CLI) and --cli, alternating, --reps times
    before: { type: 'string', default: '' },
    reps: { type: 'number', default: 3 },
    keep: { type: 'boolean', default: false },
  },
  usage,
);
const sizes = opts.sizes.split(',').map(Number);
const only = new Set(opts.only ? opts.only.split(',') : []);
const want = (k) => only.size === 0 || only.has(k);
const CLI = path.resolve(ROOT, opts.cli);
const work = path.join(WORK_DIR, 'memory');
const shm = fs.mkdtempSync('/dev/shm/blocksmith-memory-');
fs.mkdirSync(work, { recursive: true });
const log = (m) => process.stderr.write(`[memory] ${m}\n`);

function run(cmd, args, { env = process.env, allowFail = false, stdout = 'pipe' } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, maxBuffer: 64 << 20, stdio: ['ignore', stdout, 'pipe'] });
  if (r.error) throw r.error;
  if (r.status !== 0 && !allowFail) throw new Error(`${commandString([cmd, ...args])} exited ${r.status}: ${String(r.stderr).slice(-2000)}`);
  return r;
}

// Peak RSS (ru_maxrss, KiB) and times of one child; stdout to /dev/null.
function measure(argv, env = process.env) {
  const j = timeChild(argv, { env });
  return { peakRssMiB: round(j.maxrssKiB / 1024, 1), wallSeconds: round(j.wall, 2), cpuSeconds: round(j.user + j.sys, 2) };
}

const cold = (file) => {
  run('sync', ['-f', file]);
  run('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none']);
};
// Reads the data of the file, not its holes (which read as fresh zero pages: 16 GiB of page cache for nothing).
const WARM = `
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
end = os.fstat(fd).st_size
off = 0
while off < end:
    try:
        off = os.lseek(fd, off, os.SEEK_DATA)
    except OSError:
        break
    hole = os.lseek(fd, off, os.SEEK_HOLE)
    while off < hole:
        n = len(os.pread(fd, min(8 << 20, hole - off), off))
        if n == 0:
            break
        off += n
`;
const warm = (file) => run('/usr/bin/python3', ['-c', WARM, file]);
const rm = (p) => fs.rmSync(p, { recursive: true, force: true });

// ---------------------------------------------------------------- inputs

// A file of `gib` GiB written by fill(fd) (kept when one of that size is there).
function makeSized(file, gib, fill) {
  if (fs.existsSync(file) && fs.statSync(file).size === gib * GiB) return;
  rm(file);
  const fd = fs.openSync(file, 'w');
  try {
    fs.ftruncateSync(fd, gib * GiB);
    fill(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function makePattern(file, gib) {
  makeSized(file, gib, (fd) => {
    const buf = Buffer.alloc(128 * KiB); // second half stays zero: written, so allocated
    const rnd = Buffer.alloc(64 * MiB);
    randomFillSync(rnd);
    for (let mib = 0; mib < gib * 1024; mib++) {
      rnd.copy(buf, 0, (mib % 1024) * 64 * KiB, (mib % 1024) * 64 * KiB + 64 * KiB);
      buf.writeUInt32LE(mib, 0); // no two MiB alike
      fs.writeSync(fd, buf, 0, buf.length, mib * MiB);
    }
    fs.fsyncSync(fd);
  });
}

function makeCarve(file, gib) {
  if (fs.existsSync(file) && fs.statSync(file).size === gib * GiB) return;
  rm(file);
  const big = path.join(opts.corpus, 'big.img');
  if (!fs.existsSync(big)) throw new Error(`${big} missing: bash ../shared/carve/make-corpus.sh ${opts.corpus}`);
  if (gib === 1) run('dd', [`if=${big}`, `of=${file}`, 'bs=4M', 'count=256', 'status=none']);
  else {
    run('dd', [`if=${big}`, `of=${file}`, 'bs=4M', 'status=none']);
    run('dd', [`if=${big}`, `of=${file}`, 'bs=4M', `seek=${(8 * GiB) / (4 * MiB)}`, 'conv=notrunc', 'status=none']);
    run('truncate', ['-s', `${gib}G`, file]);
  }
}

// The same 300 files at every size; 150 of them deleted.
function stage() {
  const dir = path.join(work, 'stage');
  rm(dir);
  fs.mkdirSync(path.join(dir, 'keep'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'gone'), { recursive: true });
  for (let i = 0; i < 300; i++) {
    const b = Buffer.alloc((64 + (i % 3) * 64) * KiB);
    randomFillSync(b);
    fs.writeFileSync(path.join(dir, i % 2 ? 'keep' : 'gone', `f${String(i).padStart(3, '0')}.bin`), b);
  }
  return dir;
}

function makeExt4(file, gib, st) {
  if (fs.existsSync(file) && fs.statSync(file).size === gib * GiB) return;
  rm(file);
  run('truncate', ['-s', `${gib}G`, file]);
  run('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0', file]);
  const mnt = path.join(work, 'mnt');
  fs.mkdirSync(mnt, { recursive: true });
  run('mount', ['-t', 'ext4', '-o', 'loop', file, mnt]);
  try {
    run('cp', ['-r', path.join(st, 'keep'), path.join(st, 'gone'), mnt]);
    run('sync', []);
    run('rm', ['-r', path.join(mnt, 'gone')]);
    run('sync', []);
  } finally {
    run('umount', [mnt]);
  }
}

function makeFat(file, gib, st) {
  if (fs.existsSync(file) && fs.statSync(file).size === gib * GiB) return;
  rm(file);
  run('truncate', ['-s', `${gib}G`, file]);
  run('mkfs.fat', ['-F', '32', ...(gib >= 4 ? ['-s', '64'] : []), '-n', 'CARD', file]);
  for (const d of ['keep', 'gone']) {
    run('mmd', ['-i', file, `::${d}`]);
    const files = fs.readdirSync(path.join(st, d)).map((f) => path.join(st, d, f));
    run('mcopy', ['-m', '-i', file, ...files, `::${d}/`]);
  }
  const gone = fs.readdirSync(path.join(st, 'gone')).map((f) => `::gone/${f}`);
  run('mdel', ['-i', file, ...gone]);
}

// ---------------------------------------------------------------- cluster

let cluster = null;
function startCluster() {
  // bluestore needs O_DIRECT: /var/tmp, never tmpfs.
  const dir = path.join(fs.mkdtempSync('/var/tmp/blocksmith-memory-ceph-'), 'cluster');
  const r = run('bash', [path.join(ROOT, 'test/ceph/cluster.sh'), 'start', dir], { env: { ...process.env, OSD_BYTES: String(40 * GiB) } });
  cluster = { dir, env: { ...process.env, CEPH_CONF: r.stdout.trim().split('\n').pop() } };
}
function stopCluster() {
  if (!cluster) return;
  run('bash', [path.join(ROOT, 'test/ceph/cluster.sh'), 'stop', cluster.dir], { allowFail: true });
  fs.rmSync(path.dirname(cluster.dir), { recursive: true, force: true });
  cluster = null;
}

// ---------------------------------------------------------------- the runs

const rows = [];
const node = process.execPath;
const bs = (...args) => [node, CLI, ...args];

// map-extents: what grows with the number of extents, not the size: 4 KiB of
// data then a 4 KiB hole, over and over (2 extents per 8 KiB: 256k extents in
// 1 GiB, 1M in 4 GiB, half of it written).
function makeStriped(file, gib) {
  makeSized(file, gib, (fd) => {
    const blk = Buffer.alloc(4 * KiB);
    randomFillSync(blk);
    for (let off = 0; off < gib * GiB; off += 8 * KiB) {
      blk.writeUInt32LE(off / (8 * KiB), 0);
      fs.writeSync(fd, blk, 0, blk.length, off);
    }
  });
}
// The text output through a pipe to a reader slower than the scan (the case
// where output used to pile up in memory), and JSON to a file.
const SLOW_READER = `import sys, time
while sys.stdin.buffer.read(65536):
    time.sleep(0.0005)`;

function record(command, size, state, argv, env) {
  const m = measure(argv, env);
  const row = { command, sizeGiB: size, state, argv: commandString(argv.map((a) => (a === node ? 'node' : a))), ...m };
  rows.push(row);
  log(`${command} ${size} GiB ${state}: ${m.peakRssMiB} MiB, ${m.wallSeconds} s`);
  return row;
}

function both(command, size, input, argv, env) {
  cold(input);
  record(command, size, 'cold', argv, env);
  warm(input);
  record(command, size, 'warm', argv, env);
}

const started = new Date().toISOString();
try {
  const st = want('undelete') || want('undelete-list') ? stage() : null;
  if (want('rbd-import') && !opts.noRbd) startCluster();
  for (const g of sizes) {
    const pat = path.join(work, `pat-${g}g.raw`);
    if (['info', 'map', 'sparsify-inplace', 'sparsify-copy', 'qcow2-raw', 'rbd-import'].some(want)) {
      log(`making ${pat}`);
      makePattern(pat, g);
    }
    if (want('info')) both('info', g, pat, bs('info', '--quiet', pat));
    if (want('map')) both('map --json', g, pat, bs('map', '--quiet', '--json', pat));
    if (want('map-extents')) {
      // On tmpfs: deleting 500k extents from the discard-mounted ext4 takes minutes.
      const striped = path.join(shm, `striped-${g}g.raw`);
      log(`making ${striped}`);
      makeStriped(striped, g);
      warm(striped);
      record('map --json (striped, 256k extents per GiB)', g, 'warm', bs('map', '--quiet', '--json', striped));
      const piped = ['/bin/sh', '-c', 'exec "$0" "$@" | /usr/bin/python3 -c "$SLOW_READER"', ...bs('map', '--quiet', striped)];
      record('map | slow reader (striped, 256k extents per GiB)', g, 'warm', piped, { ...process.env, SLOW_READER });
      rm(striped);
    }
    if (want('sparsify-inplace')) {
      const copy = path.join(work, `inplace-${g}g.raw`);
      makePattern(copy, g); // written afresh: cp would turn the written zeros into holes
      record('sparsify (in place)', g, 'cold', bs('sparsify', '--quiet', copy));
      rm(copy);
    }
    if (want('sparsify-copy')) {
      const dst = path.join(work, `copy-${g}g.raw`);
      for (const state of ['cold', 'warm']) {
        rm(dst);
        state === 'cold' ? cold(pat) : warm(pat);
        record('sparsify SRC DST (raw copy)', g, state, bs('sparsify', '--quiet', pat, dst));
      }
      rm(dst);
    }
    if (want('qcow2-raw')) {
      const q = path.join(work, `pat-${g}g.qcow2`);
      if (!fs.existsSync(q)) run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', pat, q]);
      const dst = path.join(work, `fromq-${g}g.raw`);
      for (const state of ['cold', 'warm']) {
        rm(dst);
        state === 'cold' ? cold(q) : warm(q);
        record('sparsify SRC.qcow2 DST (qcow2 -> raw)', g, state, bs('sparsify', '--quiet', q, dst));
      }
      rm(dst);
      if (!opts.keep) rm(q);
    }
    if (want('rbd-import') && cluster) {
      const img = `mem-${g}g-${process.pid}`;
      warm(pat);
      record('rbd import', g, 'warm', bs('rbd', 'import', '--quiet', pat, `rbd/${img}`), cluster.env);
      run('rbd', ['rm', '--no-progress', `rbd/${img}`], { env: cluster.env, allowFail: true });
    }
    if (fs.existsSync(pat)) cold(pat);
    if (!opts.keep) rm(pat);
    if (want('carve-ab') && only.has('carve-ab')) {
      // The time the read-ahead bound costs or saves: cold carves of this build and BEFORE, alternating.
      if (!opts.before) throw new Error('carve-ab needs --before CLI');
      const img = path.join(work, `carve-${g}g.img`);
      makeCarve(img, g);
      for (let rep = 0; rep < opts.reps; rep++) {
        for (const [build, cli] of rep % 2 ? [['after', CLI], ['before', opts.before]] : [['before', opts.before], ['after', CLI]]) {
          const out = path.join(shm, `carve-${g}`);
          rm(out);
          cold(img);
          record(`carve --scope all (${build})`, g, 'cold', [node, cli, 'carve', '--quiet', '--scope', 'all', img, '-o', out]);
          rm(out);
        }
      }
      if (!opts.keep) rm(img);
    }
    if (want('carve')) {
      const img = path.join(work, `carve-${g}g.img`);
      log(`making ${img}`);
      makeCarve(img, g);
      for (const state of ['cold', 'warm']) {
        const out = path.join(shm, `carve-${g}`);
        rm(out);
        state === 'cold' ? cold(img) : warm(img);
        record('carve --scope all', g, state, bs('carve', '--quiet', '--scope', 'all', img, '-o', out));
        rm(out);
      }
      if (!opts.keep) rm(img);
    }
    for (const [kind, make] of [['ext4', makeExt4], ['fat32', makeFat]]) {
      if (!want('undelete') && !want('undelete-list')) break;
      const img = path.join(work, `${kind}-${g}g.img`);
      log(`making ${img}`);
      make(img, g, st);
      if (want('undelete-list')) both(`undelete --list (${kind})`, g, img, bs('undelete', '--quiet', '--list', img));
      if (want('undelete')) {
        const out = path.join(shm, `undel-${kind}-${g}`);
        rm(out);
        cold(img);
        record(`undelete -o (${kind})`, g, 'cold', bs('undelete', '--quiet', img, '-o', out));
        rm(out);
      }
      if (!opts.keep) rm(img);
    }
  }
} finally {
  stopCluster();
  rm(shm);
  if (!opts.keep) rm(work);
}

// Per command: the largest peak at each size and the growth 1 -> 16 GiB.
const summary = {};
for (const r of rows) {
  const s = (summary[r.command] ??= {});
  s[`peakRssMiB@${r.sizeGiB}GiB`] = Math.max(s[`peakRssMiB@${r.sizeGiB}GiB`] ?? 0, r.peakRssMiB);
}
for (const [command, s] of Object.entries(summary)) {
  for (const g of sizes) {
    const walls = rows.filter((r) => r.command === command && r.sizeGiB === g && r.state === 'cold').map((r) => r.wallSeconds).sort((a, b) => a - b);
    if (walls.length > 1) s[`medianColdSeconds@${g}GiB`] = walls[Math.floor(walls.length / 2)];
  }
  if (s['peakRssMiB@1GiB'] && s['peakRssMiB@16GiB']) s.growthMiB = round(s['peakRssMiB@16GiB'] - s['peakRssMiB@1GiB'], 1);
}
// The bound stated per command (bench/README.md, "memory"), checked against every run. `parts`: carve scans
// min(CPUs, 4) parts at once, each with its own read-ahead (64 MiB), piece for cached reads (16 MiB), window
// (32 MiB; more only while a JPEG larger than that is checked, up to --max-size) and decoder state.
const parts = Math.min(os.cpus().length, 4);
function bound(command, g) {
  if (command.startsWith('map')) return { boundMiB: 128, formula: '128 MiB: the extents are printed in batches as the scan finds them, and the scan waits for a full stdout (V8 and malloc keep some freed memory: more than info)' };
  // The copy's fixed buffers (issue 19 item 2): 4 write batches of 8 MiB and 8 direct-read pieces of 4 MiB.
  if (command.startsWith('sparsify SRC')) return { boundMiB: 128, formula: '128 MiB: 32 MiB of write batches and 32 MiB of read pieces, fixed' };
  if (command.startsWith('rbd import')) return { boundMiB: 96, formula: '96 MiB: librbd, 16 writes of up to 2 MiB in flight' };
  if (command.startsWith('carve')) return { boundMiB: 64 + parts * 128, formula: `64 MiB + parts x 128 MiB, parts = min(CPUs, 4) = ${parts} (each: 64 MiB read-ahead, a 16 MiB piece, a 32 MiB window, decoder and hashing state)` };
  if (command.startsWith('undelete') && command.includes('fat')) return { boundMiB: 64, formula: '64 MiB + 4 B and 1 bit per cluster (the FAT is read whole, plus a bitmap of live clusters: 2 MiB at 16 GiB with 32 KiB clusters) + an entry per deleted file' };
  if (command.startsWith('undelete')) return { boundMiB: 64, formula: '64 MiB + per-group metadata (measured +1 MiB from 1 to 16 GiB) + an entry per deleted file' };
  return { boundMiB: 64, formula: '64 MiB' };
}
for (const r of rows) {
  const b = bound(r.command, r.sizeGiB);
  r.boundMiB = b.boundMiB;
  r.withinBound = r.peakRssMiB <= b.boundMiB;
}
const bounds = Object.fromEntries([...new Set(rows.map((r) => r.command))].map((c) => [c, bound(c, 16).formula]));

const file = writeResult(opts.name, {
  suite: 'memory',
  ...provenance(),
  started,
  finished: new Date().toISOString(),
  machine: machineInfo(),
  memory: memInfo(),
  cli: path.relative(ROOT, CLI),
  method: 'peak RSS = getrusage(RUSAGE_CHILDREN).ru_maxrss of the command run as the only child of a Python timer; cold = the input dropped from the page cache with POSIX_FADV_DONTNEED (dd iflag=nocache count=0)',
  inputs: {
    pattern: 'N GiB raw: per MiB 64 KiB random + 64 KiB written zeros, the rest a hole (3 extents per MiB)',
    qcow2: 'the pattern image through qemu-img convert -O qcow2',
    carve: '1 GiB: the first GiB of $CORPUS/big.img; 16 GiB: big.img at 0 and at 8 GiB, holes between',
    undelete: 'ext4 (mkfs.ext4, loop mount, cp, rm) and FAT32 (mkfs.fat, mcopy, mdel) of N GiB, 300 files of 64-192 KiB, 150 deleted',
  },
  bounds,
  allWithinBound: rows.every((r) => r.withinBound),
  runs: rows,
  summary,
}, { CORPUS: opts.corpus, BEFORE_CLI: opts.before ? path.resolve(opts.before, '../../../..') : undefined, TMPFS: shm });
log(`wrote ${file}`);
console.table(rows.map(({ command, sizeGiB, state, peakRssMiB, wallSeconds }) => ({ command, sizeGiB, state, peakRssMiB, wallSeconds })));
