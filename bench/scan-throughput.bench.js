// Scan throughput of the whole `blocksmith info` command against `dd` reading
// the same fully-allocated raw image, from the page cache (the goal) and cold
// (extra information). See bench/README.md.
//
//   node bench/scan-throughput.bench.js [--size-mib N] [--runs N] [--cold-runs N] [--keep]
import { spawn, spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, rmSync, statSync, statfsSync, writeFileSync, writeSync } from 'node:fs';
import { join, relative } from 'node:path';
import {
  GB,
  GiB,
  KiB,
  MiB,
  ROOT,
  WORK_DIR,
  commandString,
  cpuMonitor,
  goal,
  machineInfo,
  memInfo,
  median,
  parseArgs,
  provenance,
  round,
  summarize,
  waitForQuiet,
  writeResult,
} from './lib.js';

const USAGE = `usage: node bench/scan-throughput.bench.js [options]
  --size-mib N       image size in MiB (default 4096 = 4 GiB)
  --runs N           warm runs of each command, alternated (default 7, at least 5 for a result worth keeping)
  --startup-runs N   runs of 'blocksmith --version' and 'node -e 0' (default 7)
  --cold-runs N      cold-cache runs of each command, drop_caches before each (default 3; needs root)
  --seed N           layout seed of the generated image (default 1)
  --keep             keep the image in bench/work/ (a later run with the same size and seed reuses it)
  --max-other-busy F redo a warm pair when other processes used more than this fraction of the CPUs during it (default 0.15)
  --no-wait          do not wait for other processes to go quiet, never redo pairs`;

const opts = parseArgs(
  process.argv.slice(2),
  {
    sizeMib: { type: 'number', default: 4096 },
    runs: { type: 'number', default: 7 },
    startupRuns: { type: 'number', default: 7 },
    coldRuns: { type: 'number', default: 3, min: 0 },
    seed: { type: 'number', default: 1 },
    keep: { type: 'boolean', default: false },
    maxOtherBusy: { type: 'number', default: 0.15, min: 0 },
    noWait: { type: 'boolean', default: false },
  },
  USAGE,
);

const BLOCK = 4 * KiB; // blocksmith's default --block-size; the image is composed of such blocks
const GENERATOR_VERSION = 1;
const SIZE = opts.sizeMib * MiB;
const IMAGE = join(WORK_DIR, 'scan-image.raw');
const MANIFEST = join(WORK_DIR, 'scan-image.json');
const IMAGE_REL = relative(ROOT, IMAGE);
const CLI_REL = 'dist/cli/bin/blocksmith.js';
const NODE = process.execPath;

// ------------------------------------------------------------------ the image

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ZERO = 0;
const RANDOM = 1; // incompressible data block
const SPARSE = 2; // metadata-like: zeros with a few non-zero bytes at random places

/**
 * The block layout, a mix of extents like a used VM disk: long runs of
 * random data (1-64 MiB), zeroed runs (64 KiB-32 MiB, written as real zeros
 * so they are allocated) and fragmented regions (1-8 MiB) where each 4 KiB
 * block is zero, random or metadata-like.
 */
function planLayout(nBlocks, rng) {
  const kinds = new Uint8Array(nBlocks);
  const between = (lo, hi) => lo + Math.floor(rng() * (hi - lo + 1));
  let b = 0;
  while (b < nBlocks) {
    const r = rng();
    if (r < 0.55) {
      const n = Math.min(nBlocks - b, between(256, 16384));
      kinds.fill(RANDOM, b, b + n);
      b += n;
    } else if (r < 0.8) {
      const n = Math.min(nBlocks - b, between(16, 8192));
      kinds.fill(ZERO, b, b + n);
      b += n;
    } else {
      const n = Math.min(nBlocks - b, between(256, 2048));
      for (let i = b; i < b + n; i++) {
        const x = rng();
        kinds[i] = x < 0.45 ? ZERO : x < 0.8 ? RANDOM : SPARSE;
      }
      b += n;
    }
  }
  return kinds;
}

function makeImage() {
  mkdirSync(WORK_DIR, { recursive: true });
  const rng = mulberry32(opts.seed);
  const nBlocks = Math.ceil(SIZE / BLOCK);
  const kinds = planLayout(nBlocks, rng);
  const counts = [0, 0, 0];
  for (const k of kinds) counts[k]++;

  const CHUNK = 4 * MiB;
  const stage = Buffer.allocUnsafe(CHUNK);
  const fd = openSync(IMAGE, 'w');
  const t0 = process.hrtime.bigint();
  try {
    for (let off = 0; off < SIZE; off += CHUNK) {
      const len = Math.min(CHUNK, SIZE - off);
      randomFillSync(stage, 0, len);
      for (let p = 0; p < len; p += BLOCK) {
        const end = Math.min(p + BLOCK, len);
        const kind = kinds[(off + p) / BLOCK];
        if (kind === ZERO) {
          stage.fill(0, p, end);
        } else if (kind === SPARSE) {
          stage.fill(0, p, end);
          const nBytes = 1 + Math.floor(rng() * 8);
          for (let j = 0; j < nBytes; j++) stage[p + Math.floor(rng() * (end - p))] = 1 + Math.floor(rng() * 255);
        } else if (stage.subarray(p, end).every((x) => x === 0)) {
          stage[p] = 1; // astronomically unlikely, but keep the expected counts exact
        }
      }
      let done = 0;
      while (done < len) done += writeSync(fd, stage, done, len - done, off + done);
      if ((off / CHUNK) % 64 === 0) process.stderr.write(`\r  writing ${IMAGE_REL}: ${Math.round((100 * off) / SIZE)}%`);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  process.stderr.write(`\r  writing ${IMAGE_REL}: 100%\n`);
  const manifest = {
    generatorVersion: GENERATOR_VERSION,
    size: SIZE,
    seed: opts.seed,
    blockSize: BLOCK,
    blocks: { zero: counts[ZERO], random: counts[RANDOM], sparseMetadataLike: counts[SPARSE] },
    expected: { zeroBytes: counts[ZERO] * BLOCK, dataBytes: (counts[RANDOM] + counts[SPARSE]) * BLOCK, holeBytes: 0 },
    writeSeconds: round(Number(process.hrtime.bigint() - t0) / 1e9, 2),
  };
  writeFileSync(MANIFEST, JSON.stringify(manifest, null, 2) + '\n');
  return manifest;
}

function existingImage() {
  if (!existsSync(IMAGE) || !existsSync(MANIFEST)) return null;
  try {
    const m = JSON.parse(readFileSync(MANIFEST, 'utf8'));
    const st = statSync(IMAGE);
    if (m.generatorVersion === GENERATOR_VERSION && m.size === SIZE && m.seed === opts.seed && st.size === SIZE) return m;
  } catch {
    /* regenerate */
  }
  return null;
}

function removeImage() {
  rmSync(IMAGE, { force: true });
  rmSync(MANIFEST, { force: true });
}

// ------------------------------------------------------------------ running commands

function childTicks() {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(f[13]), sys: Number(f[14]) }; // cutime, cstime of waited-for children
}
const TICK = 1 / 100; // USER_HZ

/** Runs argv (cwd = repository root); wall time from spawn to exit with process.hrtime. */
function timed(argv, { stdout = false } = {}) {
  return new Promise((resolve, reject) => {
    const c0 = childTicks();
    const t0 = process.hrtime.bigint();
    const child = spawn(argv[0] === 'node' ? NODE : argv[0], argv.slice(1), {
      cwd: ROOT,
      stdio: ['ignore', stdout ? 'pipe' : 'ignore', 'pipe'],
    });
    let wall;
    let code;
    const out = [];
    const err = [];
    child.stdout?.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    child.on('error', reject);
    child.on('exit', (c, sig) => {
      wall = Number(process.hrtime.bigint() - t0) / 1e9;
      code = c ?? sig;
    });
    child.on('close', () => {
      const c1 = childTicks();
      const result = {
        seconds: wall,
        code,
        userSeconds: round((c1.user - c0.user) * TICK, 2),
        sysSeconds: round((c1.sys - c0.sys) * TICK, 2),
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
      };
      if (code !== 0) reject(new Error(`${commandString(argv)} exited with ${code}: ${result.stderr.trim()}`));
      else resolve(result);
    });
  });
}

function residentBytes() {
  const r = spawnSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', IMAGE], { encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout.trim()) : null;
}

function dropCaches() {
  spawnSync('sync');
  writeFileSync('/proc/sys/vm/drop_caches', '3');
}

const DD = ['dd', `if=${IMAGE_REL}`, 'of=/dev/null', 'bs=1M'];
const BLOCKSMITH = ['node', CLI_REL, 'info', '--json', IMAGE_REL];
const VERSION = ['node', CLI_REL, '--version'];
const NODE_EMPTY = ['node', '-e', '0'];

function checkOutput(run, expected) {
  const j = JSON.parse(run.stdout);
  const ok =
    j.virtualSize === SIZE && j.holeBytes === expected.holeBytes && j.zeroBytes === expected.zeroBytes && j.dataBytes === expected.dataBytes;
  return { ok, got: { virtualSize: j.virtualSize, holeBytes: j.holeBytes, zeroBytes: j.zeroBytes, dataBytes: j.dataBytes } };
}

function ddReportedRate(stderr) {
  const m = stderr.match(/copied, ([\d.]+) s, ([\d.]+ \S+)/);
  return m ? `${m[2]} (dd's own timing: ${m[1]} s)` : null;
}

function describe(name, argv, runs) {
  const s = summarize(runs.map((r) => r.seconds));
  return {
    command: commandString(argv),
    medianSeconds: round(s.medianSeconds, 4),
    GBps: round(SIZE / s.medianSeconds / GB, 3),
    runs: s.n,
    relativeIqr: round(s.relativeIqr, 3),
    seconds: runs.map((r) => round(r.seconds, 4)),
    medianUserCpuSeconds: round(median(runs.map((r) => r.userSeconds)), 2),
    medianSysCpuSeconds: round(median(runs.map((r) => r.sysSeconds)), 2),
  };
}

// ------------------------------------------------------------------ main

async function main() {
  const started = new Date();
  const notes = [];
  if (opts.runs < 5) notes.push(`only ${opts.runs} warm runs per command (fewer than the 5 the method asks for)`);
  console.log(`scan-throughput: ${opts.sizeMib} MiB image, ${opts.runs} warm runs of each command`);

  // Room on disk and in the page cache.
  const fsInfo = statfsSync(ROOT);
  mkdirSync(WORK_DIR, { recursive: true });
  let manifest = existingImage();
  const freeDisk = fsInfo.bavail * fsInfo.bsize;
  if (!manifest && freeDisk < SIZE + GiB) throw new Error(`not enough disk space for a ${opts.sizeMib} MiB image (${freeDisk} bytes free)`);
  const memBefore = memInfo();
  const fitsInCache = memBefore.MemAvailable > SIZE + 2 * GiB;
  if (!fitsInCache) {
    notes.push(`MemAvailable ${memBefore.MemAvailable} bytes < image + 2 GiB: the image may not stay in the page cache`);
    console.warn(`warning: ${notes.at(-1)}`);
  }

  const reused = !!manifest;
  if (manifest) console.log(`reusing ${IMAGE_REL} (same size, seed and generator)`);
  else manifest = makeImage();
  let cleanedUp = false;
  const cleanup = () => {
    if (!opts.keep && !cleanedUp) {
      removeImage();
      cleanedUp = true;
    }
  };
  process.on('SIGINT', () => {
    cleanup();
    process.exit(130);
  });

  try {
    const st = statSync(IMAGE);
    const allocated = st.blocks * 512;
    if (allocated < SIZE) throw new Error(`${IMAGE_REL} is not fully allocated (${allocated} of ${SIZE} bytes)`);

    // Warm the page cache: one full read.
    console.log('warming the page cache (cat image > /dev/null)...');
    await timed(['cat', IMAGE_REL]);
    const residentAfterWarm = residentBytes();

    const quiet = opts.noWait ? null : await waitForQuiet({ maxBusy: opts.maxOtherBusy, timeoutMs: 600_000 });
    const mon = cpuMonitor();
    mon.start();

    // Warm runs: alternate, swapping which goes first in every pair. Before
    // each run the image must be fully resident (something else on the
    // machine may drop caches): otherwise it is read again with cat first.
    const warm = { dd: [], blocksmith: [] };
    let correct = true;
    let outputCheck;
    let rewarmed = 0;
    let discardedPairs = 0;
    const pairNoise = [];
    for (let i = 0; i < opts.runs; i++) {
      const order = i % 2 === 0 ? ['dd', 'blocksmith'] : ['blocksmith', 'dd'];
      const pair = {};
      const pairMon = cpuMonitor();
      pairMon.start();
      for (const which of order) {
        for (let tries = 0; tries < 3 && (residentBytes() ?? SIZE) < SIZE; tries++) {
          rewarmed++;
          await timed(['cat', IMAGE_REL]);
        }
        pairMon.start(); // the cat above is not noise
        const r = which === 'dd' ? await timed(DD) : await timed(BLOCKSMITH, { stdout: true });
        pair[which] = r;
        if (which === 'blocksmith') {
          outputCheck = checkOutput(r, manifest.expected);
          correct &&= outputCheck.ok;
        }
        console.log(`  warm ${which.padEnd(10)} ${r.seconds.toFixed(3)} s  ${(SIZE / r.seconds / GB).toFixed(2)} GB/s`);
      }
      const noise = pairMon.stop();
      if (!opts.noWait && noise.otherCpuBusy > opts.maxOtherBusy && discardedPairs < 3 * opts.runs) {
        discardedPairs++;
        console.log(`  (pair discarded: other processes used ${Math.round(100 * noise.otherCpuBusy)}% CPU; redoing it)`);
        await waitForQuiet({ maxBusy: opts.maxOtherBusy, timeoutMs: 300_000, log: () => {} });
        i--;
        continue;
      }
      pairNoise.push(noise.otherCpuBusy);
      warm.dd.push(pair.dd);
      warm.blocksmith.push(pair.blocksmith);
    }
    const noiseWarm = { ...mon.stop(), otherCpuBusyPerKeptPair: pairNoise, discardedPairs, rewarmedBeforeRuns: rewarmed };
    const residentAfterRuns = residentBytes();

    // Process start-up alone.
    const startup = { version: [], nodeEmpty: [] };
    for (let i = 0; i < opts.startupRuns; i++) {
      startup.version.push(await timed(VERSION, { stdout: true }));
      startup.nodeEmpty.push(await timed(NODE_EMPTY));
    }

    // Cold cache: drop caches before each run.
    const cold = { dd: [], blocksmith: [] };
    let coldSkipped = null;
    if (opts.coldRuns > 0) {
      try {
        dropCaches();
      } catch (err) {
        coldSkipped = `cannot drop caches (${err.code ?? err.message}); run as root`;
        console.warn(`skipping cold runs: ${coldSkipped}`);
      }
    }
    if (!coldSkipped) {
      for (let i = 0; i < opts.coldRuns; i++) {
        const order = i % 2 === 0 ? ['dd', 'blocksmith'] : ['blocksmith', 'dd'];
        for (const which of order) {
          dropCaches();
          const r = which === 'dd' ? await timed(DD) : await timed(BLOCKSMITH, { stdout: true });
          cold[which].push(r);
          if (which === 'blocksmith') correct &&= checkOutput(r, manifest.expected).ok;
          console.log(`  cold ${which.padEnd(10)} ${r.seconds.toFixed(3)} s  ${(SIZE / r.seconds / GB).toFixed(2)} GB/s`);
        }
      }
    }

    const dd = describe('dd', DD, warm.dd);
    const bs = describe('blocksmith', BLOCKSMITH, warm.blocksmith);
    dd.ddReportedRate = warm.dd.map((r) => ddReportedRate(r.stderr));
    const version = describe('version', VERSION, startup.version);
    const nodeEmpty = describe('node -e 0', NODE_EMPTY, startup.nodeEmpty);
    for (const v of [version, nodeEmpty]) delete v.GBps;
    const ratio = dd.medianSeconds / bs.medianSeconds; // = (SIZE/bs) / (SIZE/dd)
    const scanOnlySeconds = bs.medianSeconds - version.medianSeconds;

    const goals = [goal('blocksmith info / dd throughput, warm page cache, whole command', ratio, 0.8)];
    if (!correct) notes.push('blocksmith info reported byte counts that differ from the generated layout (see outputCheck)');

    let coldResult = null;
    if (!coldSkipped && opts.coldRuns > 0) {
      const cdd = describe('dd', DD, cold.dd);
      const cbs = describe('blocksmith', BLOCKSMITH, cold.blocksmith);
      cdd.ddReportedRate = cold.dd.map((r) => ddReportedRate(r.stderr));
      coldResult = {
        note: 'additional information, no goal; sync + echo 3 > /proc/sys/vm/drop_caches before each run',
        dd: cdd,
        blocksmith: cbs,
        ratios: { blocksmithOverDd: round(cdd.medianSeconds / cbs.medianSeconds, 3) },
      };
    }

    const result = {
      name: 'scan-throughput',
      description:
        "Wall time of the whole `blocksmith info --json IMAGE` process against `dd if=IMAGE of=/dev/null bs=1M` on the same fully-allocated raw image held in the page cache; GB/s = image bytes / median wall time (1e9 bytes/s). Start-up is measured separately and NOT subtracted from the ratio.",
      ...provenance(),
      date: started.toISOString(),
      durationSeconds: round((Date.now() - started.getTime()) / 1000, 1),
      machine: machineInfo(),
      filesystem: { type: spawnSync('stat', ['-f', '-c', '%T', WORK_DIR], { encoding: 'utf8' }).stdout.trim(), freeBytes: freeDisk },
      image: {
        path: IMAGE_REL,
        bytes: SIZE,
        allocatedBytes: allocated,
        reused,
        seed: opts.seed,
        layout: manifest.blocks,
        expected: manifest.expected,
        composition: {
          dataPct: round((100 * manifest.expected.dataBytes) / SIZE, 1),
          zeroPct: round((100 * manifest.expected.zeroBytes) / SIZE, 1),
        },
        writeSeconds: manifest.writeSeconds ?? null,
        kept: opts.keep,
      },
      pageCache: {
        memAvailableBeforeBytes: memBefore.MemAvailable,
        fitsInCache,
        residentAfterWarmupBytes: residentAfterWarm,
        residentAfterWarmRunsBytes: residentAfterRuns,
      },
      environment: { ...quiet, duringWarmRuns: noiseWarm },
      method: {
        timing: 'process.hrtime around spawn() until the child exits; cwd = repository root',
        order: `warm runs alternate dd / blocksmith, first-of-pair swapped each time (${opts.runs} each); medians`,
        residency: 'fincore before every warm run; the image is re-read with cat if not fully resident',
        noiseGate: opts.noWait
          ? 'none (--no-wait)'
          : `a pair is discarded and redone when other processes used more than ${opts.maxOtherBusy} of the CPUs during it`,
        warmup: 'cat IMAGE > /dev/null once before the warm runs',
      },
      warm: {
        dd,
        blocksmith: { ...bs, outputCorrect: correct, outputCheck },
        ratios: { blocksmithOverDd: round(ratio, 3) },
        blocksmithExcludingStartup: {
          note: 'information only: median blocksmith time minus median `blocksmith --version` time',
          seconds: round(scanOnlySeconds, 4),
          GBps: round(SIZE / scanOnlySeconds / GB, 3),
          ratioOverDd: round(dd.medianSeconds / scanOnlySeconds, 3),
        },
      },
      startup: {
        blocksmithVersion: version,
        nodeEmpty,
      },
      cold: coldResult ?? { skipped: coldSkipped ?? 'cold runs disabled (--cold-runs 0)' },
      ratios: { blocksmithOverDd: round(ratio, 3) },
      goals,
      goalMet: goals.every((g) => g.met) && correct,
      notes,
    };
    const file = writeResult('scan-throughput', result);

    console.log('');
    console.table({
      'dd bs=1M (warm)': { 'median s': dd.medianSeconds, 'GB/s': dd.GBps, 'IQR/median': dd.relativeIqr },
      'blocksmith info --json (warm)': { 'median s': bs.medianSeconds, 'GB/s': bs.GBps, 'IQR/median': bs.relativeIqr },
      'blocksmith --version': { 'median s': version.medianSeconds },
      'node -e 0': { 'median s': nodeEmpty.medianSeconds },
      ...(coldResult
        ? {
            'dd bs=1M (cold)': { 'median s': coldResult.dd.medianSeconds, 'GB/s': coldResult.dd.GBps },
            'blocksmith info (cold)': { 'median s': coldResult.blocksmith.medianSeconds, 'GB/s': coldResult.blocksmith.GBps },
          }
        : {}),
    });
    for (const g of goals) console.log(`${g.met ? 'MET    ' : 'NOT MET'}  ${g.name}: ${g.value}x`);
    console.log(`blocksmith output ${correct ? 'matches' : 'DOES NOT MATCH'} the generated layout`);
    console.log(`other processes used ${Math.round(100 * noiseWarm.otherCpuBusy)}% CPU during the warm runs`);
    console.log(`results: ${file}`);
  } finally {
    cleanup();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
