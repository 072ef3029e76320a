// Shared helpers for the benchmark suites: statistics, machine description,
// CPU-noise monitoring and result files. Plain ESM, no dependencies.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const ROOT = dirname(BENCH_DIR);
export const RESULTS_DIR = join(BENCH_DIR, 'results');
export const WORK_DIR = join(BENCH_DIR, 'work');

/** Decimal units throughout: 1 GB/s = 1e9 bytes per second. */
export const GB = 1e9;
export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

// ---------------------------------------------------------------- statistics

export function sorted(values) {
  return [...values].sort((a, b) => a - b);
}

/** Quantile with linear interpolation (q in [0, 1]). */
export function quantile(values, q) {
  if (values.length === 0) return NaN;
  const s = sorted(values);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

export function median(values) {
  return quantile(values, 0.5);
}

/** Summary of a list of durations in seconds. */
export function summarize(seconds) {
  const med = median(seconds);
  return {
    n: seconds.length,
    medianSeconds: med,
    minSeconds: Math.min(...seconds),
    p25Seconds: quantile(seconds, 0.25),
    p75Seconds: quantile(seconds, 0.75),
    maxSeconds: Math.max(...seconds),
    // interquartile range relative to the median: a plain noise figure
    relativeIqr: (quantile(seconds, 0.75) - quantile(seconds, 0.25)) / med,
  };
}

export function round(x, digits = 3) {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

// ---------------------------------------------------------------- processes

/** Shell-quotes one word (for recording exact command lines). */
export function shellQuote(word) {
  const s = String(word);
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function commandString(argv) {
  return argv.map(shellQuote).join(' ');
}

/** The command line of this process as typed from the repository root (node path shortened to `node`). */
export function ownCommandLine() {
  const script = relative(process.cwd(), process.argv[1]) || process.argv[1];
  return commandString(['node', ...process.execArgv, script, ...process.argv.slice(2)]);
}

/** What produced this process: its own command line, the cwd, and the parent command when run via run-all.js. */
export function provenance() {
  return {
    command: ownCommandLine(),
    cwd: process.cwd(),
    invokedVia: process.env.BLOCKSMITH_BENCH_INVOKED_VIA || null,
  };
}

function tryRun(cmd, args, opts = {}) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], ...opts }).trim();
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- machine

function cpuInfo() {
  const text = readFileSync('/proc/cpuinfo', 'utf8');
  const field = (name) => {
    const m = text.match(new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm'));
    return m ? m[1].trim() : null;
  };
  const flags = new Set((field('flags') ?? '').split(/\s+/));
  return {
    model: field('model name'),
    vendor: field('vendor_id'),
    family: field('cpu family'),
    modelNumber: field('model'),
    logicalCpus: os.cpus().length,
    mhzAtStart: field('cpu MHz'),
    virtualized: flags.has('hypervisor'),
    flags: ['sse2', 'avx2', 'avx512f', 'avx512bw', 'avx512vl', 'erms', 'fsrm'].filter((f) => flags.has(f)),
  };
}

function cacheSizes() {
  const out = {};
  const base = '/sys/devices/system/cpu/cpu0/cache';
  for (let i = 0; i < 8; i++) {
    const dir = join(base, `index${i}`);
    if (!existsSync(dir)) break;
    const read = (f) => readFileSync(join(dir, f), 'utf8').trim();
    const type = read('type');
    out[`L${read('level')}${type === 'Data' ? 'd' : type === 'Instruction' ? 'i' : ''}`] = read('size');
  }
  if (Object.keys(out).length > 0) return { source: 'sysfs', ...out };
  // No sysfs cache topology (some VMs): glibc's view from CPUID.
  const conf = tryRun('getconf', ['-a']) ?? '';
  for (const [key, name] of [['LEVEL1_DCACHE_SIZE', 'L1d'], ['LEVEL2_CACHE_SIZE', 'L2'], ['LEVEL3_CACHE_SIZE', 'L3']]) {
    const m = conf.match(new RegExp(`^${key}\\s+(\\d+)`, 'm'));
    if (m && Number(m[1]) > 0) out[name] = `${Number(m[1]) / 1024}K`;
  }
  return { source: 'getconf (CPUID, as seen by the guest)', ...out };
}

function gitInfo() {
  const opts = { cwd: ROOT };
  const commit = tryRun('git', ['rev-parse', 'HEAD'], opts);
  const porcelain = tryRun('git', ['status', '--porcelain', '--untracked-files=normal'], opts);
  const changes = porcelain ? porcelain.split('\n').filter((l) => l && !/\sbench\//.test(l)) : [];
  return {
    commit,
    subject: tryRun('git', ['log', '-1', '--format=%s'], opts),
    // uncommitted changes outside bench/ (the build measured may include them)
    dirtyOutsideBench: changes.length > 0,
    uncommittedOutsideBench: changes.slice(0, 40),
  };
}

function fileFingerprint(path) {
  if (!existsSync(path)) return null;
  const st = statSync(path);
  return {
    path: relative(ROOT, path),
    bytes: st.size,
    mtime: st.mtime.toISOString(),
    sha256: createHash('sha256').update(readFileSync(path)).digest('hex'),
  };
}

function readTrim(path) {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return null;
  }
}

export function machineInfo() {
  const report = process.report?.getReport?.();
  return {
    hostname: os.hostname(),
    cpu: cpuInfo(),
    caches: cacheSizes(),
    memoryTotalBytes: os.totalmem(),
    kernel: { release: os.release(), version: os.version() },
    glibc: report?.header?.glibcVersionRuntime ?? null,
    node: process.version,
    v8: process.versions.v8,
    transparentHugepages: readTrim('/sys/kernel/mm/transparent_hugepage/enabled'),
    cpufreqGovernor: readTrim('/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor'),
    git: gitInfo(),
    addon: fileFingerprint(join(ROOT, 'build/Release/blocksmith.node')),
  };
}

export function memInfo() {
  const out = {};
  for (const line of readFileSync('/proc/meminfo', 'utf8').split('\n')) {
    const m = line.match(/^(\w+):\s+(\d+)\s*kB/);
    if (m) out[m[1]] = Number(m[2]) * 1024;
  }
  return out;
}

// ---------------------------------------------------------------- CPU noise

function systemJiffies() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal ...
  const idle = v[3] + (v[4] ?? 0);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - idle, total, steal: v[7] ?? 0 };
}

/** CPU ticks used by this process and its waited-for children (utime stime cutime cstime). */
function ownJiffies() {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
}

/**
 * Measures how busy the machine was with *other* work (not this process or its
 * children) between start() and stop(), as a fraction of all CPUs; plus steal time.
 */
export function cpuMonitor() {
  let s0;
  let o0;
  return {
    start() {
      s0 = systemJiffies();
      o0 = ownJiffies();
    },
    stop() {
      const s1 = systemJiffies();
      const o1 = ownJiffies();
      const total = s1.total - s0.total || 1;
      return {
        otherCpuBusy: round(Math.max(0, s1.busy - s0.busy - (o1 - o0)) / total, 3),
        steal: round((s1.steal - s0.steal) / total, 3),
      };
    },
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits (up to timeoutMs) until other processes use less than `maxBusy` of
 * the CPUs over a one-second window. Returns what was observed; never fails.
 */
export async function waitForQuiet({ maxBusy = 0.1, timeoutMs = 120_000, log = console.error } = {}) {
  const t0 = Date.now();
  let last;
  let warned = false;
  for (;;) {
    const mon = cpuMonitor();
    mon.start();
    await sleep(1000);
    last = mon.stop();
    if (last.otherCpuBusy <= maxBusy) break;
    if (Date.now() - t0 > timeoutMs) break;
    if (!warned) {
      log(`  waiting for the machine to calm down (other processes use ${Math.round(100 * last.otherCpuBusy)}% CPU)...`);
      warned = true;
    }
  }
  return {
    waitedSeconds: round((Date.now() - t0) / 1000, 1),
    otherCpuBusyAtStart: last.otherCpuBusy,
    quiet: last.otherCpuBusy <= maxBusy,
    loadAverage: os.loadavg().map((x) => round(x, 2)),
  };
}

// ---------------------------------------------------------------- peers

/** Installs Debian packages (root; the suites that compare with peer tools install them themselves). */
export function aptInstall(packages, log = console.error) {
  log(`installing ${packages.join(' ')} (apt-get)`);
  const r = spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=600', 'install', '-y', '-qq', '--no-install-recommends', ...packages], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.status !== 0) throw new Error(`apt-get install ${packages.join(' ')} failed`);
}

/** True when `command` is on PATH. */
export function haveCommand(command) {
  return spawnSync('sh', ['-c', 'command -v "$0"', command], { stdio: 'ignore' }).status === 0;
}

// ---------------------------------------------------------------- results

/**
 * Result files are committed and read on other machines: every path in them
 * is made relative to the repository root (`root`), and each of `places`
 * (e.g. { CORPUS: dir }) is written as $NAME.
 */
export function portablePaths(value, places = {}, root = ROOT) {
  const subs = [...Object.entries(places).map(([name, dir]) => [dir, `$${name}`]), [root, '.']]
    .filter(([dir]) => dir)
    .sort((a, b) => b[0].length - a[0].length);
  const fix = (s) => {
    for (const [dir, to] of subs) s = s.split(`${dir}/`).join(to === '.' ? '' : `${to}/`).split(dir).join(to);
    return s;
  };
  const walk = (v) => {
    if (typeof v === 'string') return fix(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(value);
}

export function writeResult(name, result, places = {}) {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${name}.json`);
  writeFileSync(file, JSON.stringify(portablePaths(result, places), null, 2) + '\n');
  return file;
}

export function goal(name, value, target) {
  return { name, target: `>= ${target}`, value: round(value, 3), met: value >= target };
}

/** Tiny strict option parser: `--flag`, `--key value`, `--key=value`. */
export function parseArgs(argv, spec, usage) {
  const out = {};
  for (const [k, v] of Object.entries(spec)) out[k] = v.default;
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    if (arg === '--help' || arg === '-h') {
      console.log(usage);
      process.exit(0);
    }
    let value;
    const eq = arg.indexOf('=');
    if (eq > 0) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const key = arg.replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    const s = spec[key];
    if (!arg.startsWith('--') || !s) {
      console.error(`unknown option '${argv[i]}'\n\n${usage}`);
      process.exit(2);
    }
    if (s.type === 'boolean') {
      out[key] = value === undefined ? true : value !== 'false';
      continue;
    }
    if (value === undefined) value = argv[++i];
    if (value === undefined) {
      console.error(`option ${arg} needs a value\n\n${usage}`);
      process.exit(2);
    }
    out[key] = s.type === 'number' ? Number(value) : value;
    const min = s.min ?? 1;
    if (s.type === 'number' && !(Number.isFinite(out[key]) && out[key] >= min)) {
      console.error(`option ${arg}: '${value}' is not a number >= ${min}`);
      process.exit(2);
    }
  }
  return out;
}

export function fmtGBs(bytesPerSecond) {
  return `${(bytesPerSecond / GB).toFixed(2)} GB/s`;
}

// One child timed from outside by a small Python wrapper: wall seconds around
// the child only, and getrusage(RUSAGE_CHILDREN) after it: the CPU seconds
// and the peak RSS (KiB) of the child and of everything it waited for. The
// child's stdout goes to /dev/null, or with `stdout` its last 200 kB are
// returned. Returns {rc, wall, user, sys, maxrssKiB, stdout, stderr}; throws
// when the wrapper fails or, unless allowFail, the child exits non-zero.
const CHILD_TIMER = `
import json, resource, subprocess, sys, time
keep = sys.argv[1] == "stdout"
t = time.monotonic()
p = subprocess.run(sys.argv[2:], stdout=subprocess.PIPE if keep else subprocess.DEVNULL, stderr=subprocess.PIPE)
w = time.monotonic() - t
r = resource.getrusage(resource.RUSAGE_CHILDREN)
out = p.stdout.decode(errors="replace")[-200000:] if keep else ""
print(json.dumps({"rc": p.returncode, "wall": w, "user": r.ru_utime, "sys": r.ru_stime, "maxrssKiB": r.ru_maxrss, "stdout": out, "stderr": p.stderr.decode(errors="replace")[-2000:]}))
`;
export function timeChild(argv, { env = process.env, allowFail = false, stdout = false } = {}) {
  const args = ['-c', CHILD_TIMER, stdout ? 'stdout' : 'null', ...argv];
  const r = spawnSync('/usr/bin/python3', args, { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`the timer of ${commandString(argv)} exited ${r.status}: ${String(r.stderr).slice(-2000)}`);
  const j = JSON.parse(r.stdout);
  if (j.rc !== 0 && !allowFail) throw new Error(`${commandString(argv)} exited ${j.rc}: ${j.stderr}`);
  return j;
}
