// Zero-detection throughput: every kernel, the dispatched default, glibc
// memchr and a plain byte loop, on an all-zero buffer (the worst case: every
// byte is read). See bench/README.md.
//
//   node bench/zero-detect.bench.js [--rounds N] [--size-mib N] [--small-kib N]
import { Bench } from 'tinybench';
import { cpuFeatures } from '../dist/index.js';
import { native } from '../dist/seam/native.js';
import {
  GB,
  KiB,
  MiB,
  cpuMonitor,
  fmtGBs,
  goal,
  machineInfo,
  parseArgs,
  provenance,
  round,
  summarize,
  waitForQuiet,
  writeResult,
} from './lib.js';

const USAGE = `usage: node bench/zero-detect.bench.js [options]
  --rounds N        interleaved rounds per case (default 9)
  --size-mib N      large-buffer size in MiB (default 1024 = 1 GiB)
  --large-iters N   timed calls per variant per round on the large buffer (default 3)
  --small-kib N     cache-resident buffer size in KiB (default 256)
  --small-batch N   calls per timed sample on the small buffer (default 64)
  --small-iters N   timed samples per variant per round on the small buffer (default 40)
  --max-other-busy F  redo a round when other processes used more than this fraction of the CPUs during it (default 0.15)
  --no-wait         do not wait for other processes to go quiet, never redo rounds`;

const opts = parseArgs(
  process.argv.slice(2),
  {
    rounds: { type: 'number', default: 9 },
    sizeMib: { type: 'number', default: 1024 },
    largeIters: { type: 'number', default: 3 },
    smallKib: { type: 'number', default: 256 },
    smallBatch: { type: 'number', default: 64 },
    smallIters: { type: 'number', default: 40 },
    maxOtherBusy: { type: 'number', default: 0.15, min: 0 },
    noWait: { type: 'boolean', default: false },
  },
  USAGE,
);

const features = cpuFeatures();
// Every variant goes through the same addon entry point (native.isZero), so
// the per-call overhead is identical; `undefined` is the dispatched default
// (what isZero() and every scan use).
const VARIANTS = [
  { name: 'dispatched', kernel: undefined },
  ...features.availableZeroKernels.map((k) => ({ name: k, kernel: k })),
  { name: 'memchr', kernel: 'memchr' },
  { name: 'byteloop', kernel: 'byteloop' },
];

function check(buf) {
  // Sanity: true on zeros, false with one byte set away from the sampled
  // first / middle / last bytes.
  const at = Math.floor((buf.length * 3) / 4) + 5;
  for (const v of VARIANTS) {
    if (native.isZero(buf, v.kernel) !== true) throw new Error(`${v.name}: isZero(zeros) is not true`);
    buf[at] = 1;
    const r = native.isZero(buf, v.kernel);
    buf[at] = 0;
    if (r !== false) throw new Error(`${v.name}: isZero(non-zero) is not false`);
  }
}

/**
 * Runs `rounds` tinybench rounds; each round times every variant `iters`
 * times, the variant order rotated per round so that slow drifts (other load,
 * frequency, the host) spread over all variants. A sample is `batch` calls.
 * Returns per-variant seconds per call (all samples pooled) and per-round medians.
 */
async function measure(buf, { rounds, iters, batch, label, gate }) {
  const samples = Object.fromEntries(VARIANTS.map((v) => [v.name, []]));
  const roundMedians = Object.fromEntries(VARIANTS.map((v) => [v.name, []]));
  const roundNoise = [];
  let discarded = 0;
  for (let r = 0; r < rounds; r++) {
    const mon = cpuMonitor();
    mon.start();
    const bench = new Bench({
      name: `${label} round ${r + 1}`,
      iterations: iters,
      time: 0,
      warmup: false,
      retainSamples: true,
      throws: true,
      timestampProvider: 'hrtimeNow',
    });
    const order = VARIANTS.map((_, i) => VARIANTS[(i + r) % VARIANTS.length]);
    for (const v of order) {
      const k = v.kernel;
      bench.add(
        v.name,
        batch === 1
          ? () => native.isZero(buf, k)
          : () => {
              for (let i = 0; i < batch; i++) native.isZero(buf, k);
            },
      );
    }
    bench.runSync();
    const noise = mon.stop();
    // A round during which other processes were busy is redone (memory-bound
    // figures are very sensitive to a neighbour's memory traffic).
    if (gate && noise.otherCpuBusy > opts.maxOtherBusy && discarded < 3 * rounds) {
      discarded++;
      process.stderr.write('x');
      await waitForQuiet({ maxBusy: opts.maxOtherBusy, timeoutMs: 300_000, log: () => {} });
      r--;
      continue;
    }
    roundNoise.push(noise.otherCpuBusy);
    for (const task of bench.tasks) {
      const res = task.result;
      if (res.state !== 'completed') throw new Error(`${task.name}: ${res.state} ${res.error ?? ''}`);
      const secs = [...res.latency.samples].map((ms) => ms / 1000 / batch);
      samples[task.name].push(...secs);
      roundMedians[task.name].push(res.latency.p50 / 1000 / batch);
    }
    process.stderr.write('.');
  }
  process.stderr.write('\n');
  return { samples, roundMedians, discardedRounds: discarded, otherCpuBusyPerRound: roundNoise };
}

function report(bytes, { samples, roundMedians, discardedRounds, otherCpuBusyPerRound }) {
  const variants = {};
  for (const v of VARIANTS) {
    const s = summarize(samples[v.name]);
    const rm = roundMedians[v.name].map((t) => bytes / t / GB);
    variants[v.name] = {
      kernel: v.kernel ?? features.zeroKernel,
      GBps: round(bytes / s.medianSeconds / GB, 2),
      medianSecondsPerCall: s.medianSeconds,
      samples: s.n,
      relativeIqr: round(s.relativeIqr, 3),
      GBpsRange: [round(bytes / s.maxSeconds / GB, 2), round(bytes / s.minSeconds / GB, 2)],
      perRoundMedianGBps: rm.map((x) => round(x, 2)),
    };
  }
  const ratio = (a, b) => variants[a].GBps / variants[b].GBps;
  const ratios = {
    dispatchedOverMemchr: round(ratio('dispatched', 'memchr'), 3),
    dispatchedOverByteloop: round(ratio('dispatched', 'byteloop'), 3),
  };
  for (const k of features.availableZeroKernels) ratios[`${k}OverMemchr`] = round(ratio(k, 'memchr'), 3);
  return { variants, ratios, noise: { discardedRounds, otherCpuBusyPerRound } };
}

function printTable(title, bytes, r) {
  console.log(`\n${title}`);
  const rows = Object.entries(r.variants).map(([name, v]) => ({
    variant: name + (name === 'dispatched' ? ` (${v.kernel})` : ''),
    'GB/s (median)': v.GBps.toFixed(2),
    'min..max GB/s': `${v.GBpsRange[0].toFixed(1)}..${v.GBpsRange[1].toFixed(1)}`,
    'IQR/median': `${(100 * v.relativeIqr).toFixed(1)}%`,
    samples: v.samples,
  }));
  console.table(rows);
  console.log(
    `dispatched/memchr = ${r.ratios.dispatchedOverMemchr.toFixed(2)}x, dispatched/byteloop = ${r.ratios.dispatchedOverByteloop.toFixed(2)}x`,
  );
}

async function main() {
  const started = new Date();
  const wait = !opts.noWait;
  console.log(`zero-detect: kernels ${features.availableZeroKernels.join(', ')}; dispatched = ${features.zeroKernel}`);

  const largeBytes = opts.sizeMib * MiB;
  const smallBytes = opts.smallKib * KiB;

  // Buffer.alloc maps fresh pages lazily: reading them untouched would read
  // the kernel's shared zero page (cache-resident, not memory). Write every
  // page so the buffer is backed by real, distinct RAM.
  console.log(`allocating and touching ${largeBytes / MiB} MiB...`);
  const large = Buffer.alloc(largeBytes);
  large.fill(0xa5);
  large.fill(0);
  const small = Buffer.alloc(smallBytes);
  small.fill(0xa5);
  small.fill(0);
  check(small);
  check(large);
  // warm-up: first passes over fresh memory are slow on a VM (host faults)
  for (let i = 0; i < 2; i++) for (const v of VARIANTS) native.isZero(large, v.kernel);

  const quietLarge = wait ? await waitForQuiet({ maxBusy: opts.maxOtherBusy, timeoutMs: 600_000 }) : null;
  console.log(`large buffer: ${opts.rounds} rounds x ${opts.largeIters} calls per variant`);
  const monL = cpuMonitor();
  monL.start();
  const rawLarge = await measure(large, { rounds: opts.rounds, iters: opts.largeIters, batch: 1, label: 'large', gate: wait });
  const noiseLarge = monL.stop();
  const resLarge = report(largeBytes, rawLarge);
  printTable(`all-zero ${largeBytes / MiB} MiB buffer (memory-bound, every byte read)`, largeBytes, resLarge);

  const quietSmall = wait ? await waitForQuiet({ maxBusy: opts.maxOtherBusy, timeoutMs: 600_000 }) : null;
  console.log(`\ncache-resident buffer: ${opts.rounds} rounds x ${opts.smallIters} samples x ${opts.smallBatch} calls per variant`);
  const monS = cpuMonitor();
  monS.start();
  const rawSmall = await measure(small, { rounds: opts.rounds, iters: opts.smallIters, batch: opts.smallBatch, label: 'small', gate: wait });
  const noiseSmall = monS.stop();
  const resSmall = report(smallBytes, rawSmall);
  printTable(`all-zero ${smallBytes / KiB} KiB buffer (cache-resident; includes the N-API call overhead)`, smallBytes, resSmall);

  const goals = [
    goal(`dispatched >= 1.0x memchr (${largeBytes / MiB} MiB all-zero buffer)`, resLarge.ratios.dispatchedOverMemchr, 1.0),
    goal(`dispatched >= 4x byteloop (${largeBytes / MiB} MiB all-zero buffer)`, resLarge.ratios.dispatchedOverByteloop, 4),
  ];
  const result = {
    name: 'zero-detect',
    description:
      'isZero throughput on an all-zero buffer (worst case: every byte read), per kernel, dispatched default, glibc memchr(buf,1,n) and a non-vectorised byte loop. GB/s = 1e9 bytes/s from the median time per call.',
    ...provenance(),
    date: started.toISOString(),
    durationSeconds: round((Date.now() - started.getTime()) / 1000, 1),
    machine: machineInfo(),
    blocksmith: { cpuFeatures: features, BLOCKSMITH_ZERO_KERNEL: process.env.BLOCKSMITH_ZERO_KERNEL ?? null },
    method: {
      tool: 'tinybench 6 (runSync, hrtimeNow timer, retained samples)',
      entryPoint: 'native.isZero(buffer, kernel) from dist/seam/native.js for every variant (same call overhead)',
      interleaving: 'rounds; each round runs every variant, order rotated per round; medians over all pooled samples',
      noiseGate: wait
        ? `a round is discarded and redone when other processes used more than ${opts.maxOtherBusy} of the CPUs during it (from /proc/stat minus this process)`
        : 'none (--no-wait)',
      bufferPreparation: 'Buffer.alloc, then fill(0xa5) and fill(0) so every page is real RAM, then 2 warm-up passes per variant',
    },
    cases: {
      large: {
        bytes: largeBytes,
        rounds: opts.rounds,
        callsPerVariantPerRound: opts.largeIters,
        environment: { ...quietLarge, duringMeasurement: noiseLarge },
        ...resLarge,
      },
      cacheResident: {
        bytes: smallBytes,
        rounds: opts.rounds,
        samplesPerVariantPerRound: opts.smallIters,
        callsPerSample: opts.smallBatch,
        note: 'additional information, no goal; each call pays the N-API entry cost (~0.1 us), significant at this size',
        environment: { ...quietSmall, duringMeasurement: noiseSmall },
        ...resSmall,
      },
    },
    ratios: resLarge.ratios,
    goals,
    goalMet: goals.every((g) => g.met),
  };
  const file = writeResult('zero-detect', result);
  console.log('');
  for (const g of goals) console.log(`${g.met ? 'MET    ' : 'NOT MET'}  ${g.name}: ${g.value}x`);
  console.log(
    `dispatched ${fmtGBs(resLarge.variants.dispatched.GBps * GB)}, memchr ${fmtGBs(resLarge.variants.memchr.GBps * GB)}, byteloop ${fmtGBs(resLarge.variants.byteloop.GBps * GB)}`,
  );
  console.log(`other processes used ${Math.round(100 * noiseLarge.otherCpuBusy)}% CPU during the large case`);
  console.log(`results: ${file}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
