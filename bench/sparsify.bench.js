#!/usr/bin/env node
// Side-by-side benchmark of `sparsify` against its peers (issue 3).
//
//   node bench/sparsify.bench.js [--reps 3] [--images vm,mix] [--modes inplace,copy]
//                                [--vm-size 8G] [--mix-size 4G] [--build head|tree] [--syscalls | --floors]
//
// Inputs (made by bench/make-images.js into bench/work/, not committed):
//   vm   a VM-like raw image: ext4 from `mke2fs -t ext4 -d` of real /usr trees, non-sparse master
//   mix  zero/data runs of 512 B, 4 KiB, 64 KiB and 1 MiB, non-sparse master
//
// In place (each run on a fresh `cp --sparse=never` copy of the master):
//   blocksmith   node dist/cli/bin/sparsify.js IMAGE --json
//   dig-holes    fallocate --dig-holes IMAGE
// Copy (source: the non-sparse master; the target is deleted before each run):
//   blocksmith   node dist/cli/bin/sparsify.js SRC DST --json
//   cp           cp --sparse=always SRC DST
//   qemu-img     qemu-img convert -f raw -O raw SRC DST
//   qemu-img-S4k qemu-img convert -f raw -O raw -S 4k SRC DST
//
// Cache policy: COLD for every timed run of every tool. Before each run:
// `sync` (whole system, so the preparation's writeback and the previous run's
// discards are done) and `echo 3 > /proc/sys/vm/drop_caches`. Every timed
// interval is the tool plus a final `sync FILE` of the image (in place) or of
// the copy, so data that a tool leaves dirty in the page cache (cp, qemu-img)
// is paid for; blocksmith's copy fdatasyncs itself and the extra sync is then
// nearly free. The tools run in a rotating order within each repetition.
//
// After every run: allocated bytes (st_blocks * 512) and `cmp` against the
// master (content identity). The machine's sequential read throughput of
// the same master is measured in the same run with `dd if=IMAGE of=/dev/null
// bs=1M`, cold (drop_caches before each) and warm (after a priming read).
//
// Goals (issue 3), per image and mode: blocksmith median time <= fastest
// peer's / 2; allocated after <= the smallest peer's; throughput >= 80 % of
// the cold sequential read throughput of the same image.
//
// --build head (default) measures a build of the committed HEAD made in
// bench/work/sparsify-build-<commit>/ (so concurrent edits of src/ and native/
// cannot change it mid-run); --build tree measures the working tree's current
// build/Release/blocksmith.node and dist/ (copied first).
// --syscalls instead runs every tool once under `strace -f -c -w` (not timed)
// and writes bench/results/sparsify-syscalls.json: syscall counts and wall
// time per syscall, for the analysis of where the time goes.
// --floors instead measures what no tool can beat on this machine and writes
// bench/results/sparsify-floors.json: the bare hole-punch rate (exactly the
// mix's zero runs >= 4 KiB punched by a minimal C-level loop via python3
// ctypes, 1 and 4 threads, no reading), the sequential write bandwidth
// (dd conv=fdatasync), and the page-cache write cost by pwrite size
// (4 MiB vs 256 KiB pieces of the same data).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  GB,
  ROOT,
  WORK_DIR,
  commandString,
  cpuMonitor,
  fmtGBs,
  machineInfo,
  median,
  parseArgs,
  provenance,
  round,
  summarize,
  waitForQuiet,
  writeResult,
} from './lib.js';
import { ensureImages, imagePath } from './make-images.js';

const USAGE = `usage: node bench/sparsify.bench.js [options]
  --reps N          timed runs of each tool per image and mode (default 3)
  --images LIST     vm,mix (default both)
  --modes LIST      inplace,copy (default both)
  --vm-size SIZE    size of the VM-like image (default 8G; made if missing)
  --mix-size SIZE   size of the zero/data mix (default 4G)
  --fill F          fraction of the VM image filled with staged files (default 0.32)
  --build WHICH     head (build of git HEAD, default) or tree (the working tree's build)
  --syscalls        one untimed strace -f -c -w run per tool instead; writes sparsify-syscalls.json
  --floors          measure the machine's floors (punch rate, write bandwidth) instead; writes sparsify-floors.json
  --before-cli FILE copy mode: also time another build's dist/cli/bin/sparsify.js (as 'blocksmith (before)')
  --no-copy-floors  copy mode: skip the floors timed beside the tools (cold dd reads of the master,
                    dd writes of its data bytes to the copy's filesystem)
  --out NAME        result file name under bench/results (default sparsify, sparsify-syscalls or sparsify-floors)`;

const opts = parseArgs(
  process.argv.slice(2),
  {
    reps: { type: 'number', default: 3 },
    images: { type: 'string', default: 'vm,mix' },
    modes: { type: 'string', default: 'inplace,copy' },
    vmSize: { type: 'string', default: '8G' },
    mixSize: { type: 'string', default: '4G' },
    fill: { type: 'number', default: 0.32, min: 0.01 },
    build: { type: 'string', default: 'head' },
    syscalls: { type: 'boolean', default: false },
    floors: { type: 'boolean', default: false },
    out: { type: 'string', default: '' },
    beforeCli: { type: 'string', default: '' },
    copyFloors: { type: 'boolean', default: true },
  },
  USAGE,
);

// Written as $BEFORE_CLI in the result file.
const places = opts.beforeCli ? { BEFORE_CLI: path.resolve(opts.beforeCli, '../../../..') } : {};
const log = (m) => process.stderr.write(`[sparsify.bench] ${m}\n`);
const WORK_IMAGE = path.join(WORK_DIR, 'sparsify-inplace.raw');
const COPY_TARGET = path.join(WORK_DIR, 'sparsify-copy.raw');

// ---------------------------------------------------------------- helpers

function run(cmd, args, { allowFail = false, ...o } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 << 20, stdio: ['ignore', 'pipe', 'pipe'], ...o });
  if (r.error) throw r.error;
  if (r.status !== 0 && !allowFail) {
    throw new Error(`${commandString([cmd, ...args])} exited ${r.status ?? r.signal}: ${(r.stderr || '').trim().slice(-2000)}`);
  }
  return r;
}

function syncAll() {
  run('sync', []);
}

function dropCaches() {
  syncAll();
  fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
}

function allocated(file) {
  return fs.statSync(file).blocks * 512;
}

function removeAndSync(file) {
  fs.rmSync(file, { force: true });
  syncAll();  // the delete's discards are issued at the journal commit: finish them now
}

function identical(a, b) {
  const r = run('cmp', ['--silent', a, b], { allowFail: true });
  return r.status === 0;
}

function toolVersion(cmd, args) {
  try {
    return run(cmd, args, { allowFail: true }).stdout.split('\n')[0].trim();
  } catch {
    return null;
  }
}

function sha256File(file) {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

// ---------------------------------------------------------------- the build measured

function buildUnderTest(which) {
  const git = (args) => run('git', args, { cwd: ROOT }).stdout.trim();
  const commit = git(['rev-parse', 'HEAD']);
  if (which === 'head') {
    const dir = path.join(WORK_DIR, `sparsify-build-${commit.slice(0, 12)}`);
    const addon = path.join(dir, 'build/Release/blocksmith.node');
    const cli = path.join(dir, 'dist/cli/bin/sparsify.js');
    if (!fs.existsSync(addon) || !fs.existsSync(cli)) {
      log(`building git HEAD ${commit.slice(0, 12)} in ${path.relative(ROOT, dir)} (node-gyp rebuild + tsc)`);
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(dir, { recursive: true });
      run('sh', ['-c', `git -C ${JSON.stringify(ROOT)} archive HEAD | tar -x -C ${JSON.stringify(dir)}`]);
      fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
      run('npx', ['node-gyp', 'rebuild', '-j', '2'], { cwd: dir });
      run('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: dir });
    }
    return { which, commit, dir, cli, addonSha256: sha256File(addon), note: 'build of the committed HEAD (git archive), not of the working tree' };
  }
  if (which === 'tree') {
    const dir = path.join(WORK_DIR, 'sparsify-build-tree');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(path.join(dir, 'build/Release'), { recursive: true });
    fs.copyFileSync(path.join(ROOT, 'build/Release/blocksmith.node'), path.join(dir, 'build/Release/blocksmith.node'));
    fs.cpSync(path.join(ROOT, 'dist'), path.join(dir, 'dist'), { recursive: true });
    fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'));
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
    const dirty = git(['status', '--porcelain', '--', 'src', 'native', 'binding.gyp']);
    return {
      which,
      commit,
      dir,
      cli: path.join(dir, 'dist/cli/bin/sparsify.js'),
      addonSha256: sha256File(path.join(dir, 'build/Release/blocksmith.node')),
      note: 'copy of the working tree build/ and dist/ at the start of the run',
      uncommittedSourceChanges: dirty ? dirty.split('\n') : [],
    };
  }
  throw new Error(`--build must be head or tree, not '${which}'`);
}

// ---------------------------------------------------------------- tools

function inPlaceTools(cli) {
  return [
    { name: 'blocksmith', blocksmith: true, argv: (img) => ['node', cli, img, '--json'] },
    { name: 'fallocate --dig-holes', argv: (img) => ['fallocate', '--dig-holes', img] },
  ];
}

function copyTools(cli) {
  const before = opts.beforeCli ? [{ name: 'blocksmith (before)', before: true, argv: (s, d) => ['node', path.resolve(opts.beforeCli), s, d, '--json'] }] : [];
  return [
    { name: 'blocksmith', blocksmith: true, argv: (s, d) => ['node', cli, s, d, '--json'] },
    ...before,
    { name: 'cp --sparse=always', argv: (s, d) => ['cp', '--sparse=always', s, d] },
    { name: 'qemu-img convert', argv: (s, d) => ['qemu-img', 'convert', '-f', 'raw', '-O', 'raw', s, d] },
    { name: 'qemu-img convert -S 4k', argv: (s, d) => ['qemu-img', 'convert', '-f', 'raw', '-O', 'raw', '-S', '4k', s, d] },
  ];
}

const argv0 = (argv) => (argv[0] === 'node' ? [process.execPath, ...argv.slice(1)] : argv);
const displayArgv = (argv) => argv.map((a) => (path.isAbsolute(a) && a.startsWith(ROOT) ? path.relative(ROOT, a) : a.split(ROOT + '/').join('')));

/** One timed run: the tool, then `sync FILE`; both inside the interval. */
function timed(argv, syncFile) {
  const [cmd, ...args] = argv0(argv);
  const mon = cpuMonitor();
  mon.start();
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
  const t1 = process.hrtime.bigint();
  const s = spawnSync('sync', [syncFile]);
  const t2 = process.hrtime.bigint();
  const noise = mon.stop();
  if (r.error) throw r.error;
  const out = {
    seconds: Number(t2 - t0) / 1e9,
    toolSeconds: Number(t1 - t0) / 1e9,
    syncSeconds: Number(t2 - t1) / 1e9,
    exitCode: r.status,
    syncExitCode: s.status,
    ...noise,
  };
  if (r.status !== 0) out.stderr = (r.stderr || '').trim().slice(-1000);
  if (argv[0] === 'node') {
    try {
      const rep = JSON.parse(r.stdout);
      out.blocksmithReport = {
        seconds: rep.seconds,
        holesPunched: rep.holesPunched,
        punchedBytes: rep.punchedBytes,
        zeroBytes: rep.zeroBytes,
        dataBytes: rep.dataBytes,
        holeBytes: rep.holeBytes,
        allocatedAfter: rep.allocatedAfter,
      };
    } catch {
      /* not JSON: failure, kept in stderr */
    }
  }
  return out;
}

// ---------------------------------------------------------------- measurements

function ddRead(file) {
  const r = run('dd', [`if=${file}`, 'of=/dev/null', 'bs=1M']);
  const t0 = r.stderr.match(/copied, ([\d.]+) s/);
  return t0 ? Number(t0[1]) : NaN;
}

function sequentialRead(file, size, reps) {
  const cold = [];
  const warm = [];
  for (let i = 0; i < reps; i++) {
    dropCaches();
    cold.push(ddRead(file));
  }
  ddRead(file);  // prime
  for (let i = 0; i < reps; i++) warm.push(ddRead(file));
  const sum = (xs) => ({ ...summarize(xs), runsSeconds: xs.map((x) => round(x, 4)), bytesPerSecond: Math.round(size / median(xs)) });
  return {
    command: `dd if=${path.relative(ROOT, file)} of=/dev/null bs=1M`,
    note: "dd's own elapsed time; cold: sync + drop_caches before each run; warm: after one priming read",
    cold: sum(cold),
    warm: sum(warm),
  };
}

function rotate(list, k) {
  const n = list.length;
  return list.map((_, i) => list[(i + k) % n]);
}

function runInPlace(master, size, tools, reps) {
  const runs = Object.fromEntries(tools.map((t) => [t.name, []]));
  const prep = [];
  for (let rep = 0; rep < reps; rep++) {
    for (const tool of rotate(tools, rep)) {
      removeAndSync(WORK_IMAGE);
      const p0 = process.hrtime.bigint();
      run('cp', ['--sparse=never', master, WORK_IMAGE]);
      run('sync', [WORK_IMAGE]);
      prep.push(Number(process.hrtime.bigint() - p0) / 1e9);
      const before = allocated(WORK_IMAGE);
      dropCaches();
      const argv = tool.argv(WORK_IMAGE);
      const r = timed(argv, WORK_IMAGE);
      r.allocatedBefore = before;
      r.allocatedAfter = allocated(WORK_IMAGE);
      r.identical = identical(master, WORK_IMAGE);
      r.rep = rep;
      runs[tool.name].push(r);
      log(`  in place ${tool.name.padEnd(24)} ${r.seconds.toFixed(2)} s (tool ${r.toolSeconds.toFixed(2)} + sync ${r.syncSeconds.toFixed(2)})` +
        ` alloc ${(r.allocatedAfter / 2 ** 30).toFixed(3)} GiB ${r.identical ? 'identical' : 'CONTENT DIFFERS'}${r.exitCode ? ` EXIT ${r.exitCode}` : ''}`);
    }
  }
  removeAndSync(WORK_IMAGE);
  return {
    runs,
    preparation: {
      command: `cp --sparse=never ${path.relative(ROOT, master)} ${path.relative(ROOT, WORK_IMAGE)} && sync FILE`,
      note: 'not timed as part of any tool; a plain non-sparse copy (warm-ish source), for reference',
      ...summarize(prep),
    },
  };
}

// The floors timed in the same rotation as the tools (issue 19 item 2): cold
// sequential reads of the master, buffered (what cp and qemu-img read
// through) and O_DIRECT, and sequential writes of as many bytes as the copy
// has data (from a dry run) to the copy's file, with the final fdatasync,
// buffered and O_DIRECT. A copy that overlapped its reading and writing
// perfectly would take max(read, write); one that did them in turns, the sum.
// For the mix (its runs are known from the manifest) also the copy's own
// shape: its data runs written by bench/write-layout.py as blocksmith's sink
// writes them (>= 64 KiB O_DIRECT, shorter through the page cache, two
// threads), nothing read, alone and beside the O_DIRECT read: the 4 KiB runs
// cost a write request each, which the dd floors do not show.
function copyFloorTools(master, dataBytes, meta) {
  const count = Math.ceil(dataBytes / (4 << 20));
  const layout = meta && meta.regions
    ? (d) => ['python3', path.join(ROOT, 'bench', 'write-layout.py'), d, String(meta.size), '2', '65536', JSON.stringify(meta.regions)]
    : null;
  const layoutFloors = !layout ? [] : [
    { name: "write of the copy's data runs", floor: 'shape', argv: (s, d) => layout(d) },
    {
      name: "dd read O_DIRECT + write of the copy's data runs at once",
      floor: 'shapeBoth',
      argv: (s, d) => ['sh', '-c', `dd if=${s} of=/dev/null bs=4M iflag=direct 2>/dev/null & ${commandString(layout(d))} >/dev/null; r=$?; wait; exit $r`],
    },
  ];
  return [
    { name: 'dd read', floor: 'read', argv: () => ['dd', `if=${master}`, 'of=/dev/null', 'bs=4M'] },
    { name: 'dd read O_DIRECT', floor: 'read', argv: () => ['dd', `if=${master}`, 'of=/dev/null', 'bs=4M', 'iflag=direct'] },
    { name: 'dd write data bytes', floor: 'write', argv: (s, d) => ['dd', 'if=/dev/zero', `of=${d}`, 'bs=4M', `count=${count}`, 'conv=fdatasync'] },
    { name: 'dd write data bytes O_DIRECT', floor: 'write', argv: (s, d) => ['dd', 'if=/dev/zero', `of=${d}`, 'bs=4M', `count=${count}`, 'oflag=direct', 'conv=fdatasync'] },
    // Both at once, each at its best (O_DIRECT): what one disk gives a copy
    // whose reading and writing overlap perfectly (they share its bandwidth).
    {
      name: 'dd read + dd write at once, O_DIRECT',
      floor: 'both',
      argv: (s, d) => ['sh', '-c', `dd if=${s} of=/dev/null bs=4M iflag=direct 2>/dev/null & dd if=/dev/zero of=${d} bs=4M count=${count} oflag=direct conv=fdatasync 2>/dev/null; wait`],
    },
    ...layoutFloors,
  ];
}

function dataBytesOf(cli, master) {
  const r = run(process.execPath, [cli, master, COPY_TARGET, '--dry-run', '--json']);
  return JSON.parse(r.stdout).dataBytes;
}

function runCopy(master, size, tools, reps) {
  const runs = Object.fromEntries(tools.map((t) => [t.name, []]));
  for (let rep = 0; rep < reps; rep++) {
    for (const tool of rotate(tools, rep)) {
      removeAndSync(COPY_TARGET);
      dropCaches();
      const argv = tool.argv(master, COPY_TARGET);
      const r = timed(argv, tool.floor === 'read' ? master : COPY_TARGET);
      r.rep = rep;
      runs[tool.name].push(r);
      if (tool.floor) {
        log(`  floor    ${tool.name.padEnd(28)} ${r.seconds.toFixed(2)} s${r.exitCode ? ` EXIT ${r.exitCode}` : ''}`);
        continue;
      }
      r.allocatedAfter = fs.existsSync(COPY_TARGET) ? allocated(COPY_TARGET) : null;
      r.identical = fs.existsSync(COPY_TARGET) && fs.statSync(COPY_TARGET).size === size && identical(master, COPY_TARGET);
      log(`  copy     ${tool.name.padEnd(24)} ${r.seconds.toFixed(2)} s (tool ${r.toolSeconds.toFixed(2)} + sync ${r.syncSeconds.toFixed(2)})` +
        ` alloc ${((r.allocatedAfter ?? 0) / 2 ** 30).toFixed(3)} GiB ${r.identical ? 'identical' : 'CONTENT DIFFERS'}${r.exitCode ? ` EXIT ${r.exitCode}` : ''}`);
    }
  }
  removeAndSync(COPY_TARGET);
  return { runs };
}

// Issue 19 item 2: blocksmith's copy against the faster of cp --sparse=always
// and qemu-img convert -S 4k, and against the floors of the same run.
function copyGoal19(perTool, floorTools, runs, dataBytes) {
  const med = (name) => median(runs[name].filter((r) => r.exitCode === 0).map((r) => r.seconds));
  const floors = {};
  for (const t of floorTools) {
    floors[t.name] = {
      command: commandString(displayArgv(t.argv('MASTER', 'COPY'))) + ' ; sync FILE',
      ...summarize(runs[t.name].map((r) => r.seconds)),
      runsSeconds: runs[t.name].map((r) => round(r.seconds, 4)),
    };
  }
  const read = Math.min(...floorTools.filter((t) => t.floor === 'read').map((t) => med(t.name)));
  const write = Math.min(...floorTools.filter((t) => t.floor === 'write').map((t) => med(t.name)));
  const both = floorTools.filter((t) => t.floor === 'both').map((t) => med(t.name))[0];
  const shapeWrite = floorTools.filter((t) => t.floor === 'shape').map((t) => med(t.name))[0];
  const shapeBoth = floorTools.filter((t) => t.floor === 'shapeBoth').map((t) => med(t.name))[0];
  const peers = ['cp --sparse=always', 'qemu-img convert -S 4k'].filter((n) => perTool[n] && perTool[n].failures === 0 && perTool[n].allIdentical);
  const fastest = peers.reduce((a, b) => (perTool[b].medianSeconds < perTool[a].medianSeconds ? b : a));
  const bs = perTool.blocksmith.medianSeconds;
  const ratio = bs / perTool[fastest].medianSeconds;
  return {
    target: 'blocksmith median time (cold, with the final fsync) <= 0.7x the faster of cp --sparse=always and qemu-img convert -S 4k',
    fastestPeer: fastest,
    fastestPeerSeconds: round(perTool[fastest].medianSeconds, 3),
    blocksmithSeconds: round(bs, 3),
    ratio: round(ratio, 3),
    met: ratio <= 0.7,
    before: perTool['blocksmith (before)'] ? { seconds: round(perTool['blocksmith (before)'].medianSeconds, 3), ratio: round(perTool['blocksmith (before)'].medianSeconds / perTool[fastest].medianSeconds, 3) } : undefined,
    floors: {
      dataBytes,
      tools: floors,
      readSeconds: round(read, 3),
      writeSeconds: round(write, 3),
      overlapped: { seconds: round(Math.max(read, write), 3), note: 'max(fastest cold read of the image, fastest write of its data bytes): reading and writing fully overlapped' },
      serial: { seconds: round(read + write, 3), note: 'read, then write' },
      concurrent: { seconds: round(both, 3), note: 'the O_DIRECT read of the image and the O_DIRECT write of its data bytes run at the same time on the same disk: the floor for a copy on one disk' },
      blocksmithOverConcurrent: round(bs / both, 3),
      fastestPeerOverConcurrent: round(perTool[fastest].medianSeconds / both, 3),
      blocksmithOverOverlapped: round(bs / Math.max(read, write), 3),
      fastestPeerOverOverlapped: round(perTool[fastest].medianSeconds / Math.max(read, write), 3),
      shape: shapeBoth === undefined ? undefined : {
        writeSeconds: round(shapeWrite, 3),
        concurrentSeconds: round(shapeBoth, 3),
        note: "the copy's own data runs (the 4 KiB ones included: a write request each) written by bench/write-layout.py (>= 64 KiB O_DIRECT, shorter buffered, 2 threads), alone and beside the O_DIRECT read of the image: the floor for this image's copy on this disk with that write strategy",
        blocksmithOverConcurrent: round(bs / shapeBoth, 3),
        fastestPeerOverConcurrent: round(perTool[fastest].medianSeconds / shapeBoth, 3),
      },
    },
  };
}

function summarizeMode(tools, runs, size, seqRead, commandFor) {
  const perTool = {};
  for (const tool of tools) {
    const rs = runs[tool.name];
    const ok = rs.filter((r) => r.exitCode === 0);
    const secs = ok.map((r) => r.seconds);
    const med = secs.length ? median(secs) : NaN;
    perTool[tool.name] = {
      command: commandString(displayArgv(commandFor(tool))) + ' ; sync FILE',
      ...summarize(secs.length ? secs : [NaN]),
      medianToolSeconds: round(median(ok.map((r) => r.toolSeconds)), 4),
      medianSyncSeconds: round(median(ok.map((r) => r.syncSeconds)), 4),
      throughputBytesPerSecond: Math.round(size / med),
      throughput: fmtGBs(size / med),
      allocatedAfterBytes: median(ok.map((r) => r.allocatedAfter)),
      allocatedAfterAllRuns: [...new Set(rs.map((r) => r.allocatedAfter))],
      allIdentical: rs.every((r) => r.identical),
      failures: rs.length - ok.length,
      runs: rs.map((r) => ({ ...r, seconds: round(r.seconds, 4), toolSeconds: round(r.toolSeconds, 4), syncSeconds: round(r.syncSeconds, 4) })),
    };
    if (tool.blocksmith) {
      const reps = ok.map((r) => r.blocksmithReport).filter(Boolean);
      if (reps.length) {
        perTool[tool.name].medianInternalSeconds = round(median(reps.map((x) => x.seconds)), 4);
        perTool[tool.name].holesPunched = reps[0].holesPunched;
      }
    }
  }
  const bs = perTool.blocksmith;
  const peers = tools.filter((t) => !t.blocksmith && !t.before).map((t) => [t.name, perTool[t.name]]).filter(([, p]) => p.failures === 0 && p.allIdentical);
  const fastest = peers.reduce((a, b) => (b[1].medianSeconds < a[1].medianSeconds ? b : a));
  const smallest = peers.reduce((a, b) => (b[1].allocatedAfterBytes < a[1].allocatedAfterBytes ? b : a));
  const speedup = fastest[1].medianSeconds / bs.medianSeconds;
  const readFraction = bs.throughputBytesPerSecond / seqRead.cold.bytesPerSecond;
  for (const [name, p] of Object.entries(perTool)) {
    p.ratioVsFastestPeer = round(p.medianSeconds / fastest[1].medianSeconds, 3);  // time ratio: < 1 is faster
    p.fractionOfColdSequentialRead = round(p.throughputBytesPerSecond / seqRead.cold.bytesPerSecond, 3);
    if (name !== 'blocksmith') p.speedupOfBlocksmith = round(p.medianSeconds / bs.medianSeconds, 3);
  }
  const goals = {
    speed: {
      target: 'blocksmith median time <= fastest peer / 2 (speedup >= 2)',
      fastestPeer: fastest[0],
      speedup: round(speedup, 3),
      met: speedup >= 2,
    },
    allocation: {
      target: "blocksmith allocated bytes after <= the smallest peer's",
      smallestPeer: smallest[0],
      blocksmithBytes: bs.allocatedAfterBytes,
      smallestPeerBytes: smallest[1].allocatedAfterBytes,
      met: bs.allocatedAfterBytes <= smallest[1].allocatedAfterBytes,
    },
    sequentialRead: {
      target: 'blocksmith throughput >= 80% of the cold sequential read throughput (dd bs=1M) of the same image',
      blocksmithBytesPerSecond: bs.throughputBytesPerSecond,
      coldReadBytesPerSecond: seqRead.cold.bytesPerSecond,
      fraction: round(readFraction, 3),
      met: readFraction >= 0.8,
    },
    contentIdentical: { target: 'every run of every tool byte-identical to the master (cmp)', met: Object.values(perTool).every((p) => p.allIdentical) },
  };
  goals.allMet = goals.speed.met && goals.allocation.met && goals.sequentialRead.met && goals.contentIdentical.met;
  return { tools: perTool, goals };
}

// ---------------------------------------------------------------- strace

function parseStraceSummary(text) {
  // % time  seconds  usecs/call  calls  errors  syscall
  const rows = {};
  for (const line of text.split('\n')) {
    const m = line.trim().match(/^([\d.]+)\s+([\d.]+)\s+(\d+)\s+(\d+)\s+(?:(\d+)\s+)?([a-z_0-9]+)$/);
    if (m && m[6] !== 'total') rows[m[6]] = { seconds: Number(m[2]), calls: Number(m[4]), errors: Number(m[5] ?? 0) };
  }
  return rows;
}

function straceRun(argv, syncFile) {
  const out = path.join(WORK_DIR, 'sparsify-strace.txt');
  const [cmd, ...args] = argv0(argv);
  const t0 = process.hrtime.bigint();
  const r = spawnSync('strace', ['-f', '-c', '-w', '-o', out, cmd, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  spawnSync('sync', [syncFile]);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const rows = parseStraceSummary(fs.readFileSync(out, 'utf8'));
  fs.rmSync(out, { force: true });
  const top = Object.entries(rows)
    .sort((a, b) => b[1].seconds - a[1].seconds)
    .slice(0, 12)
    .map(([name, v]) => ({ syscall: name, ...v }));
  const pick = (names) => names.reduce((acc, n) => ({ calls: acc.calls + (rows[n]?.calls ?? 0), seconds: round(acc.seconds + (rows[n]?.seconds ?? 0), 4) }), { calls: 0, seconds: 0 });
  return {
    exitCode: r.status,
    wallSecondsUnderStrace: round(secs, 3),
    fallocate: pick(['fallocate']),
    read: pick(['read', 'pread64', 'preadv', 'preadv2']),
    write: pick(['write', 'pwrite64', 'pwritev', 'pwritev2']),
    copyFileRange: pick(['copy_file_range']),
    lseek: pick(['lseek']),
    fadvise: pick(['fadvise64']),
    sync: pick(['fsync', 'fdatasync', 'sync_file_range']),
    ioUring: pick(['io_uring_enter', 'io_submit', 'io_getevents']),
    futex: pick(['futex']),
    topByWallTime: top,
  };
}

function syscallsPhase(images, modes, build) {
  const out = { ...provenance(), date: new Date().toISOString(), build, note: 'strace -f -c -w (wall time per syscall, summed over threads); one untimed run per tool, cold caches; strace inflates syscall-heavy tools', images: {} };
  for (const name of images) {
    const master = imagePath(name);
    const entry = (out.images[name] = {});
    if (modes.includes('inplace')) {
      entry.inPlace = {};
      for (const tool of inPlaceTools(build.cli)) {
        removeAndSync(WORK_IMAGE);
        run('cp', ['--sparse=never', master, WORK_IMAGE]);
        dropCaches();
        const argv = tool.argv(WORK_IMAGE);
        entry.inPlace[tool.name] = { command: commandString(displayArgv(argv)), ...straceRun(argv, WORK_IMAGE) };
        log(`  strace ${name} in place ${tool.name}: fallocate ${entry.inPlace[tool.name].fallocate.calls} calls, ${entry.inPlace[tool.name].fallocate.seconds} s; read ${entry.inPlace[tool.name].read.calls} calls, ${entry.inPlace[tool.name].read.seconds} s`);
      }
      removeAndSync(WORK_IMAGE);
    }
    if (modes.includes('copy')) {
      entry.copy = {};
      for (const tool of copyTools(build.cli)) {
        removeAndSync(COPY_TARGET);
        dropCaches();
        const argv = tool.argv(master, COPY_TARGET);
        entry.copy[tool.name] = { command: commandString(displayArgv(argv)), ...straceRun(argv, COPY_TARGET) };
        log(`  strace ${name} copy ${tool.name}: write ${entry.copy[tool.name].write.calls} calls, ${entry.copy[tool.name].write.seconds} s; read ${entry.copy[tool.name].read.calls} calls, ${entry.copy[tool.name].read.seconds} s`);
      }
      removeAndSync(COPY_TARGET);
    }
  }
  return out;
}

// ---------------------------------------------------------------- floors

const PUNCH_PY = `
import ctypes, os, sys, time, threading, json
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
path, nthreads, regions = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
ranges = []
for r in regions:
    g = r['grain']
    if g < 4096: continue
    ranges += [(r['offset'] + k * 2 * g, g) for k in range(r['length'] // (2 * g))]
fd = os.open(path, os.O_RDWR)
def work(part):
    for off, ln in part:
        if libc.fallocate(fd, 3, off, ln) != 0: raise OSError(ctypes.get_errno(), 'fallocate')
parts = [ranges[i::nthreads] for i in range(nthreads)]
t0 = time.perf_counter()
ths = [threading.Thread(target=work, args=(p,)) for p in parts]
[t.start() for t in ths]; [t.join() for t in ths]
t1 = time.perf_counter()
os.fsync(fd)
t2 = time.perf_counter()
print(json.dumps({'punches': len(ranges), 'seconds': t1 - t0, 'fsyncSeconds': t2 - t1, 'allocatedAfter': os.fstat(fd).st_blocks * 512}))
`;

const WRITE_PY = `
import os, sys, time, json
src, dst, piece, total = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
fd = os.open(src, os.O_RDONLY)
out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
buf = bytearray(4 << 20); mv = memoryview(buf)
off = 0; wt = 0.0
while off < total:
    n = os.preadv(fd, [buf], off)
    t = time.perf_counter()
    for p in range(0, n, piece):
        os.pwrite(out, mv[p:p + piece], off + p)
    wt += time.perf_counter() - t
    off += n
t = time.perf_counter(); os.fdatasync(out); st = time.perf_counter() - t
print(json.dumps({'pwriteSeconds': wt, 'fdatasyncSeconds': st}))
`;

function floorsPhase(manifest, reps) {
  const mix = imagePath('mix');
  const regions = manifest.images.mix.regions;
  const out = {
    ...provenance(),
    date: new Date().toISOString(),
    machine: machineInfo(),
    filesystem: run('findmnt', ['-n', '-o', 'SOURCE,FSTYPE,OPTIONS', '--target', WORK_DIR], { allowFail: true }).stdout.trim(),
    note: 'lower bounds no tool can beat here; each punch run on a fresh non-sparse copy of the mix master, cold caches',
  };
  const punch = [];
  for (let rep = 0; rep < reps; rep++) {
    for (const threads of [1, 4]) {
      removeAndSync(WORK_IMAGE);
      run('cp', ['--sparse=never', mix, WORK_IMAGE]);
      dropCaches();
      const r = JSON.parse(run('python3', ['-c', PUNCH_PY, WORK_IMAGE, String(threads), JSON.stringify(regions)]).stdout);
      r.threads = threads;
      r.punchesPerSecond = Math.round(r.punches / r.seconds);
      punch.push(r);
      log(`  punch floor, ${threads} thread(s): ${r.punches} punches in ${r.seconds.toFixed(2)} s (${r.punchesPerSecond}/s)`);
    }
  }
  removeAndSync(WORK_IMAGE);
  const by = (t) => punch.filter((r) => r.threads === t);
  out.punch = {
    what: "fallocate(PUNCH_HOLE|KEEP_SIZE) over exactly the mix's zero runs >= 4 KiB, ascending, no reads (python3 ctypes loop)",
    oneThread: { ...summarize(by(1).map((r) => r.seconds)), punches: by(1)[0].punches, medianPunchesPerSecond: Math.round(median(by(1).map((r) => r.punchesPerSecond))) },
    fourThreads: { ...summarize(by(4).map((r) => r.seconds)), medianPunchesPerSecond: Math.round(median(by(4).map((r) => r.punchesPerSecond))) },
    runs: punch,
  };

  const dataBytes = manifest.images.mix.size - manifest.images.mix.reclaimableAt4K;
  const ddOut = path.join(WORK_DIR, 'sparsify-floor-write.raw');
  const dd = [];
  for (let rep = 0; rep < reps; rep++) {
    removeAndSync(ddOut);
    const r = run('dd', ['if=/dev/zero', `of=${ddOut}`, 'bs=256K', `count=${Math.floor(dataBytes / 262144)}`, 'conv=fdatasync']);
    dd.push(Number(r.stderr.match(/copied, ([\d.]+) s/)[1]));
  }
  removeAndSync(ddOut);
  out.sequentialWrite = {
    command: `dd if=/dev/zero of=FILE bs=256K count=${Math.floor(dataBytes / 262144)} conv=fdatasync (the mix's data volume)`,
    ...summarize(dd),
    bytesPerSecond: Math.round(dataBytes / median(dd)),
  };

  const total = 1536 * 2 ** 20;
  const pw = { 4194304: [], 262144: [] };
  run('cat', [mix], { stdio: ['ignore', 'ignore', 'pipe'] });  // warm source: measure the write side only
  for (let rep = 0; rep < reps; rep++) {
    for (const piece of [4194304, 262144]) {
      removeAndSync(ddOut);
      pw[piece].push(JSON.parse(run('python3', ['-c', WRITE_PY, mix, ddOut, String(piece), String(total)]).stdout));
    }
  }
  removeAndSync(ddOut);
  out.pageCacheWriteByPwriteSize = {
    what: `1.5 GiB read from the (warm) mix in 4 MiB preads, written to a new file in pwrite calls of the given size; pwrite time only, then fdatasync`,
    '4MiB': { ...summarize(pw[4194304].map((r) => r.pwriteSeconds)), medianFdatasyncSeconds: round(median(pw[4194304].map((r) => r.fdatasyncSeconds)), 3) },
    '256KiB': { ...summarize(pw[262144].map((r) => r.pwriteSeconds)), medianFdatasyncSeconds: round(median(pw[262144].map((r) => r.fdatasyncSeconds)), 3) },
  };
  log(`  write floor ${fmtGBs(out.sequentialWrite.bytesPerSecond)}; pwrite 4 MiB pieces ${out.pageCacheWriteByPwriteSize['4MiB'].medianSeconds.toFixed(2)} s vs 256 KiB ${out.pageCacheWriteByPwriteSize['256KiB'].medianSeconds.toFixed(2)} s`);
  return out;
}

// ---------------------------------------------------------------- main

async function main() {
  if (process.getuid?.() !== 0) throw new Error('needs root (drop_caches)');
  const images = opts.images.split(',').filter(Boolean);
  const modes = opts.modes.split(',').filter(Boolean);
  for (const t of ['qemu-img', 'fallocate', 'cp', 'cmp', 'dd']) {
    if (run('sh', ['-c', `command -v ${t}`], { allowFail: true }).status !== 0) {
      throw new Error(`${t} is missing (qemu-img: apt-get install -y qemu-utils)`);
    }
  }
  const started = Date.now();
  // Only the images measured (the floors phase needs the mix): making an 8 GiB
  // VM image nobody asked for took minutes of the shared bench lock.
  const only = images.length === 1 && (!opts.floors || images[0] === 'mix') ? images[0] : null;
  const manifest = ensureImages({ vmSize: opts.vmSize, mixSize: opts.mixSize, fill: opts.fill, only });
  if (opts.floors) {
    const res = floorsPhase(manifest, opts.reps);
    res.totalSeconds = round((Date.now() - started) / 1000, 1);
    log(`wrote ${writeResult(opts.out || 'sparsify-floors', res)}`);
    return;
  }
  const build = buildUnderTest(opts.build);
  log(`measuring ${build.which} build (commit ${build.commit.slice(0, 12)}) from ${path.relative(ROOT, build.dir)}`);

  if (opts.syscalls) {
    const res = syscallsPhase(images, modes, build);
    res.totalSeconds = round((Date.now() - started) / 1000, 1);
    log(`wrote ${writeResult(opts.out || 'sparsify-syscalls', res)}`);
    return;
  }

  const quiet = await waitForQuiet({ log, timeoutMs: 60_000 });
  const result = {
    suite: 'sparsify',
    ...provenance(),
    date: new Date().toISOString(),
    machine: machineInfo(),
    quietAtStart: quiet,
    build,
    tools: {
      fallocate: toolVersion('fallocate', ['--version']),
      cp: toolVersion('cp', ['--version']),
      qemuImg: toolVersion('qemu-img', ['--version']),
      node: process.version,
    },
    filesystem: {
      mount: run('findmnt', ['-n', '-o', 'SOURCE,FSTYPE,OPTIONS', '--target', WORK_DIR], { allowFail: true }).stdout.trim(),
      blockSize: fs.statfsSync(WORK_DIR).bsize,
    },
    method: {
      repetitions: opts.reps,
      cache: 'cold for every timed run and every tool: sync + echo 3 > /proc/sys/vm/drop_caches immediately before the run',
      timedInterval: 'tool process (spawn to exit) + `sync FILE` of the image (in place) / the copy; node startup counts for blocksmith',
      inPlaceInput: 'a fresh `cp --sparse=never` copy of the master before every run (fully allocated), synced before the cache drop',
      copyInput: 'the non-sparse master; the target is deleted (and the delete synced) before every run',
      order: 'tools rotate within each repetition',
      identity: 'cmp --silent MASTER RESULT after every run',
      allocated: 'st_blocks * 512 of the image (in place) / the copy after the run',
      throughput: 'image size / median wall time (decimal GB/s)',
      sequentialRead: 'dd if=MASTER of=/dev/null bs=1M, cold (drop_caches) and warm, dd-reported time, median',
      units: 'seconds; bytes; 1 GB = 1e9 bytes',
    },
    images: {},
  };

  for (const name of images) {
    const master = imagePath(name);
    const meta = manifest.images[name];
    const size = fs.statSync(master).size;
    if (allocated(master) < size) throw new Error(`${master} is not fully allocated`);
    log(`${name}: ${path.relative(ROOT, master)} (${size} bytes)`);
    const entry = { image: meta, sequentialRead: sequentialRead(master, size, opts.copyFloors && !modes.includes("inplace") ? 1 : Math.max(3, opts.reps)) };
    log(`  dd cold ${fmtGBs(entry.sequentialRead.cold.bytesPerSecond)}, warm ${fmtGBs(entry.sequentialRead.warm.bytesPerSecond)}`);
    if (modes.includes('inplace')) {
      const tools = inPlaceTools(build.cli);
      const m = runInPlace(master, size, tools, opts.reps);
      entry.inPlace = { ...summarizeMode(tools, m.runs, size, entry.sequentialRead, (t) => t.argv(WORK_IMAGE)), preparation: m.preparation };
    }
    if (modes.includes('copy')) {
      const tools = copyTools(build.cli);
      const dataBytes = opts.copyFloors ? dataBytesOf(build.cli, master) : 0;
      const floorTools = opts.copyFloors ? copyFloorTools(master, dataBytes, meta) : [];
      const m = runCopy(master, size, [...tools, ...floorTools], opts.reps);
      entry.copy = summarizeMode(tools, m.runs, size, entry.sequentialRead, (t) => t.argv(master, COPY_TARGET));
      if (opts.copyFloors) {
        entry.copy.goals.issue19 = copyGoal19(entry.copy.tools, floorTools, m.runs, dataBytes);
        const g = entry.copy.goals.issue19;
        log(`  issue 19: blocksmith ${g.blocksmithSeconds} s = ${g.ratio}x ${g.fastestPeer} (goal <= 0.7); floors read ${g.floors.readSeconds} s, write ${g.floors.writeSeconds} s, overlapped ${g.floors.overlapped.seconds} s, both at once ${g.floors.concurrent.seconds} s (blocksmith ${g.floors.blocksmithOverConcurrent}x)`);
      }
    }
    result.images[name] = entry;
    writeResult(opts.out || 'sparsify', result, places);  // partial results survive an interrupted run
  }

  // Flat table for readers.
  result.table = [];
  for (const [name, e] of Object.entries(result.images)) {
    for (const [mode, m] of [['in place', e.inPlace], ['copy', e.copy]]) {
      if (!m) continue;
      for (const [tool, t] of Object.entries(m.tools)) {
        result.table.push({
          image: name,
          mode,
          tool,
          medianSeconds: round(t.medianSeconds, 3),
          throughput: t.throughput,
          allocatedAfterBytes: t.allocatedAfterBytes,
          identical: t.allIdentical,
          ratioVsFastestPeer: t.ratioVsFastestPeer,
        });
      }
      result.table.push({ image: name, mode, goals: { issue19: m.goals.issue19 ? m.goals.issue19.met : undefined, speed: m.goals.speed.met, allocation: m.goals.allocation.met, sequentialRead: m.goals.sequentialRead.met, identical: m.goals.contentIdentical.met, all: m.goals.allMet } });
    }
  }
  result.allGoalsMet = Object.values(result.images).every((e) => (!e.inPlace || e.inPlace.goals.allMet) && (!e.copy || e.copy.goals.allMet));
  result.totalSeconds = round((Date.now() - started) / 1000, 1);
  const file = writeResult(opts.out || 'sparsify', result, places);
  for (const row of result.table) {
    if (row.tool) {
      log(`${row.image.padEnd(4)} ${row.mode.padEnd(9)} ${row.tool.padEnd(24)} ${String(row.medianSeconds).padStart(8)} s  ${row.throughput.padStart(11)}  alloc ${row.allocatedAfterBytes}  ${row.identical ? 'identical' : 'DIFFERS'}  x${row.ratioVsFastestPeer}`);
    } else {
      log(`${row.image.padEnd(4)} ${row.mode.padEnd(9)} goals ${JSON.stringify(row.goals)}`);
    }
  }
  log(`wrote ${path.relative(ROOT, file)} in ${result.totalSeconds} s`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
