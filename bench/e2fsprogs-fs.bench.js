#!/usr/bin/env node
// `sparsify --fs` against e2fsprogs' own test images (issue 14, case 10):
// every image is either refused, with its one-line reason, or reclaimed
// without changing anything in use.
//
//   node bench/e2fsprogs-fs.bench.js [--images DIR] [--cli DIR] [--only REGEX] [--out NAME]
//
// Input: the tests/*/image* files of the Debian e2fsprogs source package,
// fetched by bench/e2fsprogs-images.sh into --images (default
// bench/work/e2fsprogs; gitignored): 223 images in 1.47.0, each test's
// image.gz or image.bz2, the two members of each image.tar.bz2 (a filesystem
// and its external journal), i_qcow's three raw originals. Each is unpacked
// one at a time into a temp dir, then:
//   1. blocksmith info --fs --json IMG      per volume: filesystem, action, error
//   2. sparsify --fs IMG OUT                copy mode; exit 1 must leave no OUT
//   3. IMG's sha256 is unchanged (a copy never writes its source)
// and when sparsify reclaimed (exit 0), that nothing in use changed and
// that no block in use was taken for free:
//   a. the 1 KiB pieces where OUT differs from IMG lie in blocks the bitmaps
//      (as dumpe2fs reads them) call free; none differing proves b, c, f
//   b. e2fsck -fn on both: the same output (image name replaced) and exit code
//   c. debugfs -c -R 'rdump / DIR' of both: every file's bytes (symlink
//      targets) the same; on damaged images whatever debugfs reads of IMG
//      it must read alike of OUT
//   d. debugfs -c icheck of every block the bitmaps call free: none belongs
//      to an inode (libext2fs's own walk of every linked inode's blocks)
//   e. e2fsck -fn's "Block bitmap differences: +N" on IMG (blocks in use but
//      marked free): none. d and e hold whether or not the blocks held zeros
//      (the five images of case 10 held zeros). Where -n stops early (a
//      directory it must salvage, a corrupt journal), e2fsck -fy on a copy
//      of IMG must find none either
//   f. when OUT differs: e2fsck -fy on copies of IMG and OUT, the same output
// Any failure of 3, a-f, or OUT left by a refusal, is a bug (outcome "bug",
// the details in `bug`); info --fs disagreeing with sparsify, a refusal that
// is not one line, or an exit other than 0/1 is a report flaw (`flaw`).
// The run exits 1 if there is either.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, WORK_DIR, commandString, machineInfo, parseArgs, provenance, round, writeResult } from './lib.js';

const USAGE = `usage: node bench/e2fsprogs-fs.bench.js [options]
  --images DIR   where bench/e2fsprogs-images.sh puts the test images (default bench/work/e2fsprogs)
  --cli DIR      the blocksmith build to test: its dist/cli/bin directory (default dist/cli/bin; dist/cli in builds before the issue-15 layout)
  --only REGEX   only the images whose name matches
  --out NAME     result file under bench/results (default e2fsprogs-fs; "-" for none)`;

const opts = parseArgs(
  process.argv.slice(2),
  {
    images: { type: 'string', default: path.join(WORK_DIR, 'e2fsprogs') },
    cli: { type: 'string', default: path.join(ROOT, 'dist', 'cli', 'bin') },
    only: { type: 'string', default: '' },
    out: { type: 'string', default: 'e2fsprogs-fs' },
  },
  USAGE,
);

const log = (m) => process.stderr.write(`[e2fsprogs-fs] ${m}\n`);
const IMAGES = path.resolve(opts.images);
const CLI = path.resolve(opts.cli);
const MiB = 1 << 20;

function run(cmd, args, { timeout = 120_000, cwd } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'buffer', maxBuffer: 256 * MiB, timeout, killSignal: 'SIGKILL', cwd });
  const timedOut = r.error?.code === 'ETIMEDOUT';
  if (r.error && !timedOut) throw new Error(`${commandString([cmd, ...args])}: ${r.error.message}`);
  return { code: r.status ?? -1, signal: r.signal, timedOut, stdout: r.stdout?.toString('utf8') ?? '', stderr: r.stderr?.toString('utf8') ?? '' };
}

function sha256File(file) {
  const h = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(4 * MiB);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

// ------------------------------------------------------------ the images

/** [{ name, source, unpack(dst) }] for every image in the tarball's tests/. */
function listImages(testsDir) {
  const out = [];
  for (const test of fs.readdirSync(testsDir).sort()) {
    const d = path.join(testsDir, test);
    for (const f of fs.readdirSync(d).sort()) {
      const src = path.join(d, f);
      const source = `tests/${test}/${f}`;
      if (f === 'image.gz') out.push({ name: test, source, unpack: (dst) => shell(`gzip -dc "$0" > "$1"`, src, dst) });
      else if (f === 'image.bz2') out.push({ name: test, source, unpack: (dst) => shell(`bzip2 -dc "$0" > "$1"`, src, dst) });
      // f_bad_local_jnl ships its image twice, as image.gz and as image
      else if (f === 'image' && !fs.existsSync(`${src}.gz`)) out.push({ name: test, source, unpack: (dst) => fs.copyFileSync(src, dst) });
      else if (/^image\d+\.orig\.bz2$/.test(f)) {
        out.push({ name: `${test}:${f.replace('.orig.bz2', '')}`, source, unpack: (dst) => shell(`bzip2 -dc "$0" > "$1"`, src, dst) });
      } else if (f === 'image.tar.bz2') {
        for (const member of run('tar', ['-tjf', src]).stdout.split('\n').filter(Boolean)) {
          out.push({ name: `${test}:${member}`, source: `${source}:${member}`, unpack: (dst) => shell(`tar -xjOf "$0" "$1" > "$2"`, src, member, dst) });
        }
      }
    }
  }
  return out;
}

function shell(script, ...args) {
  const r = run('sh', ['-c', script, ...args]);
  if (r.code !== 0) throw new Error(`${script}: ${r.stderr.trim()}`);
}

// ------------------------------------------------------------ the checks

/** e2fsck -fn's output with the image's name replaced, its exit code, and the "+" bitmap differences. */
function fsck(image, mode = '-fn') {
  // e2fsck -fn loops on some images (f_misstable: "Error writing block ...
  // Ignore error? no" again and again): it then has no verdict to compare.
  const r = run('e2fsck', [mode, image], { timeout: 60_000 });
  if (r.timedOut) return { code: null, out: 'timed out after 60 s', plus: [], timedOut: true };
  const out = (r.stdout + r.stderr).split(image).join('IMG');
  const plus = [];
  for (const m of out.matchAll(/Block bitmap differences:([^\n]*(?:\n(?!Fix\?)[^\n]*)*)/g)) {
    for (const t of m[1].matchAll(/\+(?:\((\d+)--(\d+)\)|(\d+))/g)) plus.push(t[3] ?? `${t[1]}-${t[2]}`);
  }
  return { code: r.code, out, plus };
}

/** The lines only one of two outputs has (as multisets), at most 10 of each: what to record of a difference. */
function lineDiff(img, out) {
  const count = new Map();
  for (const l of img.split('\n')) count.set(l, (count.get(l) ?? 0) + 1);
  const onlyOut = [];
  for (const l of out.split('\n')) {
    if (count.get(l)) count.set(l, count.get(l) - 1);
    else onlyOut.push(l);
  }
  const onlyImg = [...count].flatMap(([l, n]) => Array(n).fill(l));
  return { onlyImg: onlyImg.slice(0, 10), onlyOut: onlyOut.slice(0, 10), lines: onlyImg.length + onlyOut.length };
}

/** e2fsck -fy on a copy of the image (the repair a user would run), as fsck() reports it. */
function fsckRepair(image, work) {
  const copy = path.join(work, 'repair.img');
  fs.copyFileSync(image, copy);
  try {
    const r = fsck(copy, '-fy');
    return { ...r, out: r.out.split(copy).join('IMG') };
  } finally {
    fs.rmSync(copy, { force: true });
  }
}

/** The 1 KiB pieces (by index) where b differs from a; a and b have the same size. */
function differingKiB(a, b) {
  const size = fs.statSync(a).size;
  if (fs.statSync(b).size !== size) return null;
  const fa = fs.openSync(a, 'r');
  const fb = fs.openSync(b, 'r');
  const diff = [];
  try {
    const ba = Buffer.allocUnsafe(4 * MiB);
    const bb = Buffer.allocUnsafe(4 * MiB);
    for (let at = 0; at < size; at += ba.length) {
      const n = fs.readSync(fa, ba, 0, ba.length, at);
      fs.readSync(fb, bb, 0, bb.length, at);
      if (ba.subarray(0, n).equals(bb.subarray(0, n))) continue;
      for (let k = 0; k < n; k += 1024) {
        if (!ba.subarray(k, Math.min(n, k + 1024)).equals(bb.subarray(k, Math.min(n, k + 1024)))) diff.push((at + k) / 1024);
      }
    }
  } finally {
    fs.closeSync(fa);
    fs.closeSync(fb);
  }
  return diff;
}

/** Every file debugfs can dump of the image: relative path -> sha256 (symlinks: "-> target"), and debugfs's errors. */
function dumpFiles(image, dir) {
  fs.mkdirSync(dir);
  const r = run('debugfs', ['-c', '-R', `rdump / ${dir}`, image], { timeout: 300_000 });
  const files = {};
  const walk = (d, rel) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const q = rel ? `${rel}/${e.name}` : e.name;
      if (e.isSymbolicLink()) files[q] = `-> ${fs.readlinkSync(p)}`;
      else if (e.isDirectory()) walk(p, q);
      else if (e.isFile()) files[q] = sha256File(p);
    }
  };
  walk(dir, '');
  const errors = r.stderr.split(dir).join('DIR').split(image).join('IMG').split('\n').filter((l) => l && !/^debugfs \d/.test(l));
  fs.rmSync(dir, { recursive: true, force: true });
  return { files, errors, code: r.code, signal: r.signal };
}

/**
 * The filesystem as dumpe2fs reads it: block size and the blocks its bitmaps
 * call free (bigalloc: dumpe2fs names each free cluster range by its blocks'
 * first and the last cluster's first block; the whole clusters are free).
 */
function bitmapFree(image) {
  const r = run('dumpe2fs', [image], { timeout: 300_000 });
  const head = (re) => Number(r.stdout.match(re)?.[1] ?? NaN);
  const bs = head(/^Block size:\s+(\d+)$/m);
  const cluster = head(/^Cluster size:\s+(\d+)$/m) || bs;
  const count = head(/^Block count:\s+(\d+)$/m);
  if (!bs || !count) return null;
  const free = new Set();
  for (const m of r.stdout.matchAll(/^ {2}Free blocks: (.*)$/gm)) {
    for (const t of m[1].split(', ').filter(Boolean)) {
      const [lo, hi = lo] = t.split('-').map(Number);
      for (let b = lo; b <= Math.min(count - 1, hi + cluster / bs - 1); b++) free.add(b);
    }
  }
  return { bs, count, free };
}

/**
 * Which of these blocks an inode uses, according to libext2fs (debugfs's
 * icheck on IMG: the extended-attribute block and every block the inode's
 * map or extent tree names, of every linked inode), as [{ block, inode }].
 * icheck takes its blocks as arguments: lines of a command file, under
 * debugfs's 8 KiB line.
 */
function icheck(image, blocks, work) {
  if (!blocks.length) return [];
  const file = path.join(work, 'icheck.cmd');
  const lines = [];
  for (let i = 0; i < blocks.length; i += 800) lines.push(`icheck ${blocks.slice(i, i + 800).join(' ')}`);
  fs.writeFileSync(file, lines.join('\n') + '\n');
  const r = run('debugfs', ['-c', '-f', file, image], { timeout: 600_000 });
  fs.rmSync(file);
  const owned = [];
  for (const m of r.stdout.matchAll(/^(\d+)\t(\d+)$/gm)) owned.push({ block: Number(m[1]), inode: Number(m[2]) });
  return owned;
}

const ranges = (nums) => {
  const out = [];
  for (const n of [...nums].sort((x, y) => x - y)) {
    const last = out[out.length - 1];
    if (last && n === last[1] + 1) last[1] = n;
    else out.push([n, n]);
  }
  return out.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(' ');
};

/** A refusal's reason without its numbers, to count refusals by kind. */
function reasonKind(message) {
  return message
    .replace(/^the ext\d filesystem at byte \d+:? ?/, '')
    .replace(/; run e2fsck.*$/, '')
    .replace(/\([^)]*\)/g, '(..)')
    .replace(/\d+(-\d+)?/g, 'N')
    .replace(/inode N, the [a-z ]+ \(/, 'inode N (');
}

/**
 * sparsify reclaimed IMG into OUT: nothing in use may have changed, and no
 * block the bitmaps call free may be in use (even if it held zeros).
 */
function reclaimedChecks(img, out, ext, diff, work, rec, bug) {
  rec.check = { differingKiB: diff.length };
  const fi = fsck(img);
  // an e2fsck that stops early (a corrupt journal, a directory it must salvage) lists no bitmap differences
  rec.check.fsck = { code: fi.code, completed: /^Pass 5: /m.test(fi.out) };
  if (fi.plus.length) {
    rec.check.fsck.inUseMarkedFree = fi.plus;
    bug.push(`reclaimed although e2fsck -fn finds blocks in use marked free: +${fi.plus.join(' +')}`);
  }
  if (!rec.check.fsck.completed) {
    // Then the repair says which blocks are in use: it gets past what -n stops at.
    const fy = fsckRepair(img, work);
    rec.check.fsckRepair = { code: fy.code, completed: /^Pass 5: /m.test(fy.out) };
    if (fy.plus.length) {
      rec.check.fsckRepair.inUseMarkedFree = fy.plus;
      bug.push(`reclaimed although e2fsck -fy finds blocks in use marked free: +${fy.plus.join(' +')}`);
    }
  }
  const bm = ext.length === 1 && ext[0].offset === 0 ? bitmapFree(img) : null;
  if (!bm) {
    rec.check.bitmap = 'dumpe2fs cannot read it';
  } else {
    rec.check.freeBlocks = bm.free.size;
    const owned = icheck(img, [...bm.free], work);
    if (owned.length) {
      rec.check.freeButOwned = owned.slice(0, 20);
      bug.push(`reclaimed although icheck finds blocks marked free that inodes use: ${owned.slice(0, 10).map((o) => `${o.block} (inode ${o.inode})`).join(', ')}`);
    }
    // Only free blocks may change (a used block that is zero reads alike as a hole).
    const changed = [...new Set(diff.map((k) => Math.floor((k * 1024) / bm.bs)))];
    const used = changed.filter((b) => !bm.free.has(b));
    if (used.length) bug.push(`blocks in use changed: ${ranges(used)}`);
  }
  if (!diff.length) return;  // byte-identical: e2fsck and every file read alike
  const fo = fsck(out);
  if (fo.out !== fi.out || fo.code !== fi.code) {
    bug.push('e2fsck -fn says otherwise on OUT');
    rec.check.fsck.outCode = fo.code;
    rec.check.fsck.diff = lineDiff(fi.out, fo.out);
  }
  // The repair of either does the same.
  const ri = fsckRepair(img, work);
  const ro = fsckRepair(out, work);
  if (ri.out !== ro.out || ri.code !== ro.code) {
    bug.push('e2fsck -fy repairs OUT otherwise');
    rec.check.fsckRepairDiff = lineDiff(ri.out, ro.out);
  }
  const di = dumpFiles(img, path.join(work, 'dump-img'));
  const dout = dumpFiles(out, path.join(work, 'dump-out'));
  const names = new Set([...Object.keys(di.files), ...Object.keys(dout.files)]);
  const changedFiles = [...names].filter((n) => di.files[n] !== dout.files[n]);
  rec.check.files = Object.keys(di.files).length;
  if (di.errors.length) rec.check.debugfsErrors = di.errors.slice(0, 5);
  if (changedFiles.length) bug.push(`files differ: ${changedFiles.slice(0, 10).join(', ')}`);
  if (di.errors.join('\n') !== dout.errors.join('\n')) bug.push('debugfs reads OUT otherwise');
}

function checkImage(entry, work) {
  const img = path.join(work, 'image.img');
  const out = path.join(work, 'out.img');
  fs.rmSync(img, { force: true });
  fs.rmSync(out, { force: true });
  entry.unpack(img);
  const rec = { name: entry.name, source: entry.source, bytes: fs.statSync(img).size };
  const before = sha256File(img);
  rec.sha256 = before;

  const info = run('node', [path.join(CLI, 'blocksmith.js'), 'info', '--fs', '--json', img]);
  rec.info = { code: info.code };
  try {
    const j = JSON.parse(info.stdout);
    rec.info.volumes = (j.filesystems?.volumes ?? []).map((v) => ({
      offset: v.offset,
      filesystem: v.filesystem || null,
      action: v.action,
      ...(v.error ? { error: v.error.code + ': ' + v.error.message.split(img).join('IMG') } : {}),
    }));
  } catch {
    rec.info.stderr = info.stderr.split(img).join('IMG').trim();
  }

  const t0 = process.hrtime.bigint();
  const sp = run('node', [path.join(CLI, 'sparsify.js'), '--fs', '--quiet', img, out]);
  rec.sparsify = { code: sp.code, seconds: round(Number(process.hrtime.bigint() - t0) / 1e9, 3) };
  if (sp.stderr.trim()) rec.sparsify.stderr = sp.stderr.split(img).join('IMG').split(out).join('OUT').trim();
  const bug = []; // data: the source, a file, e2fsck's verdict, a block in use
  const flaw = []; // the report: info disagrees, the refusal is not one line, sparsify crashed
  if (sha256File(img) !== before) bug.push('the source image changed');

  const ext = (rec.info.volumes ?? []).filter((v) => v.filesystem && /^ext/.test(v.filesystem));
  if (sp.code !== 0) {
    rec.outcome = 'refused';
    if (sp.code !== 1 || sp.signal) flaw.push(`sparsify ended with ${sp.signal ?? `exit ${sp.code}`}`);
    if (sp.stderr.split('\n').filter(Boolean).length !== 1) flaw.push('the refusal is not one line');
    if (fs.existsSync(out)) bug.push('a refused copy left OUT behind');
    if (!(rec.info.volumes ?? []).some((v) => v.action === 'refused')) flaw.push('sparsify refused what info --fs did not');
  } else {
    rec.outcome = ext.length ? 'reclaimed' : 'no-filesystem';
    if ((rec.info.volumes ?? []).some((v) => v.action === 'refused')) flaw.push('info --fs refused what sparsify reclaimed');
    const diff = differingKiB(img, out);
    if (diff === null) bug.push('OUT has another size');
    else if (!ext.length && diff.length) bug.push(`no filesystem, yet ${diff.length} KiB changed`);
    else if (ext.length) reclaimedChecks(img, out, ext, diff, work, rec, bug);
  }
  if (bug.length) {
    rec.outcome = 'bug';
    rec.bug = bug;
  }
  if (flaw.length) rec.flaw = flaw;
  return rec;
}

// ------------------------------------------------------------ main

const testsDir = path.join(IMAGES, 'tests');
if (!fs.existsSync(path.join(IMAGES, 'VERSION'))) {
  log(`fetching e2fsprogs' test images into ${IMAGES}`);
  const r = spawnSync(path.join(ROOT, 'bench', 'e2fsprogs-images.sh'), [IMAGES], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) {
    log('fetching the test images failed');
    process.exit(1);
  }
}
const version = fs.readFileSync(path.join(IMAGES, 'VERSION'), 'utf8').trim();
const tarball = fs.readdirSync(path.join(IMAGES, 'src')).find((f) => /\.orig\.tar\.[a-z0-9]+$/.test(f));
const tarballSha256 = sha256File(path.join(IMAGES, 'src', tarball));
let images = listImages(testsDir);
if (opts.only) images = images.filter((e) => new RegExp(opts.only).test(e.name));

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bs-e2fsprogs-'));
const results = [];
const t0 = process.hrtime.bigint();
try {
  for (const entry of images) {
    const rec = checkImage(entry, work);
    results.push(rec);
    const why = rec.outcome === 'refused' ? ` (${rec.sparsify.stderr})` : rec.outcome === 'bug' ? `: ${rec.bug.join('; ')}` : '';
    if (rec.flaw) log(`${entry.name}: report flaw: ${rec.flaw.join('; ')}`);
    log(`${entry.name}: ${rec.outcome}${why}`);
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;

const counts = {};
for (const r of results) counts[r.outcome] = (counts[r.outcome] ?? 0) + 1;
const refusals = {};
for (const r of results.filter((x) => x.outcome === 'refused')) {
  const v = (r.info.volumes ?? []).find((x) => x.action === 'refused');
  const k = v ? reasonKind(v.error.replace(/^[A-Z_]+: /, '')) : 'info gave no volume';
  refusals[k] = (refusals[k] ?? 0) + 1;
}
const byPrefix = {};
for (const r of results) {
  const p = r.name.slice(0, 2);
  byPrefix[p] ??= {};
  byPrefix[p][r.outcome] = (byPrefix[p][r.outcome] ?? 0) + 1;
}
const summary = {
  images: results.length,
  counts,
  byCategory: byPrefix,
  refusalsByReason: Object.fromEntries(Object.entries(refusals).sort((a, b) => b[1] - a[1])),
  bugs: results.filter((r) => r.outcome === 'bug').map((r) => r.name),
  reportFlaws: results.filter((r) => r.flaw).map((r) => r.name),
  // e2fsck -fn stopped early on these (e2fsck -fy on a copy then gave the verdict), and -fy too on the second list
  fsckNStoppedEarly: results.filter((r) => r.check?.fsck && !r.check.fsck.completed).map((r) => r.name),
  fsckRepairStoppedEarlyToo: results.filter((r) => r.check?.fsckRepair && !r.check.fsckRepair.completed).map((r) => r.name),
  sparsifySeconds: round(results.reduce((a, r) => a + r.sparsify.seconds, 0), 1),
  seconds: round(seconds, 1),
};
log(`${results.length} images in ${round(seconds, 1)} s: ${JSON.stringify(counts)}`);
if (opts.out !== '-') {
  const file = writeResult(
    opts.out,
    {
      suite: 'e2fsprogs-fs',
      ...provenance(),
      date: new Date().toISOString(),
      machine: machineInfo(),
      corpus: { package: 'e2fsprogs (Debian source package)', version, tarball, tarballSha256, fetchedBy: 'bench/e2fsprogs-images.sh' },
      cli: CLI,
      summary,
      images: results,
    },
    { IMAGES, CLI: CLI === path.join(ROOT, 'dist', 'cli') ? null : CLI },
  );
  log(`wrote ${file}`);
}
process.exit(summary.bugs.length || summary.reportFlaws.length ? 1 : 0);
