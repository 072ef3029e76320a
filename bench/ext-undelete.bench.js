// ext4 and ext3 undelete (issue 17): a filesystem made and written by the
// real kernel (loop mount) holding live files and a directory of about 500
// files (the carving corpus's 301 JPEGs, text and binary files of varied
// sizes, many past 48 KiB so ext3 files have indirect blocks), each with a
// known distinct mtime; the directory is deleted (`rm -r`), then new files
// are written so that some deleted files get partly overwritten. Then each
// tool reads the image (never written: its sha256 is checked after the
// tools) into an output directory on /dev/shm, and is scored against the
// ground truth recorded while the image was built.
//
//   node bench/ext-undelete.bench.js [--size-gib 2] [--only ext4|ext3] [--cli PATH] [--tools list] [--runs 1..3]
//                                    [--timeout-s 600] [--work DIR] [--jpegs DIR] [--out NAME] [--reuse] [--keep]
//
// Ground truth (IMAGE.truth.json next to the image): for every deleted file
// its path, sha256, size, mtime, inode and block map (`filefrag -v` before
// the delete), and how many of its blocks no longer hold its bytes (read from
// the image after unmounting: the files written after the delete took them);
// for every live file (present at unmount) its path, sha256 and mtime.
//
// Per tool: deleted files returned exact (an output byte-equal to a deleted
// original), exact at the right path (tools that keep names), exact with the
// right mtime (to the second), wrong content returned under a deleted file's
// path (presented as good: blocksmith's report calls it recovered, peers
// present every output), live files written, time (median of --runs runs,
// cold: page cache dropped before each). Carvers: deleted JPEGs returned exact.
import { execFileSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { aptInstall, haveCommand, machineInfo, median, parseArgs, provenance, ROOT, round, writeResult } from './lib.js';
import { dropCaches, filesUnder, isToolBookkeeping, jpegWithComment, sha256, sha256File, timeOf } from './recovery-lib.js';

const TOOL_NAMES = ['blocksmith', 'extundelete', 'ext4magic-r', 'ext4magic-M', 'tsk', 'foremost', 'photorec', 'photorec-free'];
const usage =
  'node bench/ext-undelete.bench.js [--size-gib 2] [--only ext4|ext3] [--cli PATH] [--tools ' + TOOL_NAMES.join(',') + ']\n' +
  '                                 [--runs 1..3] [--timeout-s 600] [--work DIR] [--jpegs DIR] [--out NAME] [--reuse] [--keep]';
const opts = parseArgs(
  process.argv.slice(2),
  {
    sizeGib: { type: 'number', default: 2 },
    only: { type: 'string', default: 'ext4,ext3' },
    cli: { type: 'string', default: join(ROOT, 'dist', 'cli', 'bin', 'blocksmith.js') },
    tools: { type: 'string', default: TOOL_NAMES.join(',') },
    runs: { type: 'number', default: 3 },
    timeoutS: { type: 'number', default: 600 },
    work: { type: 'string', default: '/var/tmp/blocksmith-ext-undelete' },
    jpegs: { type: 'string', default: '/tmp/carve-corpus/src/jpeg' },
    out: { type: 'string', default: 'ext-undelete' },
    reuse: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
  usage,
);
const filesystems = opts.only.split(',');
const tools = opts.tools.split(',');
for (const fs of filesystems) if (fs !== 'ext4' && fs !== 'ext3') usageError(`--only: '${fs}' is not ext4 or ext3`);
for (const t of tools) if (!TOOL_NAMES.includes(t)) usageError(`--tools: unknown tool '${t}'`);
if (opts.runs > 3) usageError('--runs: at most 3');
function usageError(message) {
  console.error(`${message}\n\n${usage}`);
  process.exit(2);
}
const cli = resolve(opts.cli);
for (const [cmd, pkg] of [['mkfs.ext4', 'e2fsprogs'], ['filefrag', 'e2fsprogs'], ['extundelete', 'extundelete'], ['ext4magic', 'ext4magic'],
  ['tsk_recover', 'sleuthkit'], ['foremost', 'foremost'], ['photorec', 'testdisk']]) {
  if (!haveCommand(cmd)) aptInstall([pkg]);
}
if (!existsSync(opts.jpegs)) {
  execFileSync('bash', [join(ROOT, '..', 'shared', 'carve', 'make-corpus.sh'), '/tmp/carve-corpus', '--only=raw-mix'], { stdio: 'inherit' });
}

const run = (cmd, args, o = {}) => execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'], ...o });
const outRoot = '/dev/shm/blocksmith-ext-undelete';
const DELETED_DIR = 'home/alice/projects/trip-2019';
const sourceNames = readdirSync(opts.jpegs).filter((n) => n.endsWith('.jpg')).sort();
const sources = sourceNames.map((n) => readFileSync(join(opts.jpegs, n)));

// ---------------------------------------------------------------- the files

/** Seeded PRNG (mulberry32): the same plan on every run. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Live files written first; the deleted directory's ~500 files (written in a
 * shuffled order so that kinds and sizes mix on disk); files written after the
 * delete (they take some of the freed blocks). mtimes: distinct whole seconds.
 */
function plan() {
  const rnd = prng(17);
  const logUniform = (lo, hi) => Math.round(Math.exp(Math.log(lo) + rnd() * (Math.log(hi) - Math.log(lo))));
  let t = 1_400_000_000;
  const file = (path, kind, extra) => ({ path, kind, mtime: (t += 600 + Math.floor(rnd() * 86_400)), ...extra });
  const live = [];
  for (let k = 0; k < 40; k++) live.push(file(`home/alice/Pictures/2018/IMG_${2000 + k}.jpg`, 'jpeg-copy', { src: (k * 7) % sources.length }));
  for (let k = 0; k < 50; k++) {
    live.push(k % 2 ? file(`home/alice/Documents/report-${k}.txt`, 'text', { size: logUniform(100, 512 * 1024) }) : file(`home/alice/Documents/blob-${k}.bin`, 'binary', { size: logUniform(1024, 2 * 1024 * 1024) }));
  }
  for (let k = 0; k < 10; k++) live.push(file(`etc/conf.d/service-${k}.conf`, 'text', { size: logUniform(40, 4096) }));
  const D = DELETED_DIR;
  const deleted = [];
  sources.forEach((_, k) => deleted.push(file(`${D}/photos/IMG_${1000 + k}.jpg`, 'jpeg', { src: k })));
  for (let k = 0; k < 70; k++) deleted.push(file(`${D}/notes/note-${k}.${['txt', 'md', 'csv'][k % 3]}`, 'text', { size: logUniform(60, 256 * 1024) }));
  for (let k = 0; k < 90; k++) deleted.push(file(`${D}/data/sample-${k}.bin`, 'binary', { size: logUniform(1024, 8 * 1024 * 1024) }));
  for (let k = 0; k < 25; k++) deleted.push(file(`${D}/data/old/archive-${k}.dat`, 'binary', { size: logUniform(16 * 1024, 3 * 1024 * 1024) }));
  deleted.push(file(`${D}/README.txt`, 'text', { size: 2500 }));
  for (let k = 0; k < 13; k++) deleted.push(file(`${D}/itinerary-day-${k + 1}.md`, 'text', { size: logUniform(500, 80 * 1024) }));
  for (let k = deleted.length - 1; k > 0; k--) {
    const j = Math.floor(rnd() * (k + 1));
    [deleted[k], deleted[j]] = [deleted[j], deleted[k]];
  }
  // After the delete: a few downloads (contiguous: they take whole deleted files), and a download that a
  // BitTorrent client writes piece by piece, out of order, into a sparse file: the allocator leaves room for the
  // pieces not yet written, so the deleted files under that stretch are partly overwritten.
  const later = [];
  for (let k = 0; k < 5; k++) later.push(file(`home/alice/projects/trip-2020/clip-${k}.bin`, 'binary', { size: logUniform(64 * 1024, 2 * 1024 * 1024) }));
  const pieces = Array.from({ length: 128 }, (_, k) => k).filter(() => rnd() < 0.25);
  for (let k = pieces.length - 1; k > 0; k--) {
    const j = Math.floor(rnd() * (k + 1));
    [pieces[k], pieces[j]] = [pieces[j], pieces[k]];
  }
  later.push(file('home/alice/projects/trip-2020/drone-footage.mp4.part', 'sparse', { size: 128 * PIECE, pieces }));
  return { live, deleted, later };
}

const PIECE = 256 * 1024;
const WORDS = 'the of and to in is was for on that with as by at from this be are or an which were have it has not but had its also one their first two new after more'.split(' ');
/** A file's bytes, from its plan entry alone (so the truth can be checked again later). */
function bytesOf(f) {
  if (f.kind === 'jpeg') return sources[f.src];
  if (f.kind === 'jpeg-copy') return jpegWithComment(sources[f.src], `live copy ${f.path}`);
  if (f.kind === 'binary' || f.kind === 'sparse') {
    // AES-CTR keystream keyed by the path: incompressible, unique, reproducible.
    const key = createHash('sha256').update(f.path).digest().subarray(0, 16);
    const bytes = createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(f.size));
    if (f.kind === 'binary') return bytes;
    const sparse = Buffer.alloc(f.size);
    for (const k of f.pieces) bytes.copy(sparse, k * PIECE, k * PIECE, (k + 1) * PIECE);
    return sparse;
  }
  const rnd = prng(parseInt(sha256(f.path).slice(0, 8), 16));
  const parts = [`${f.path}\n`];
  let n = parts[0].length;
  while (n < f.size) {
    const line = Array.from({ length: 6 + Math.floor(rnd() * 10) }, () => WORDS[Math.floor(rnd() * WORDS.length)]).join(' ') + '\n';
    parts.push(line);
    n += line.length;
  }
  return Buffer.from(parts.join('')).subarray(0, f.size);
}

function writeFiles(mnt, files) {
  for (const f of files) {
    const p = join(mnt, f.path);
    mkdirSync(dirname(p), { recursive: true });
    if (f.kind === 'sparse') {
      const bytes = bytesOf(f);
      const fd = openSync(p, 'w');
      try {
        ftruncateSync(fd, f.size);
        for (const k of f.pieces) writeSync(fd, bytes, k * PIECE, PIECE, k * PIECE);
      } finally {
        closeSync(fd);
      }
    } else {
      writeFileSync(p, bytesOf(f));
    }
    utimesSync(p, f.mtime + 30, f.mtime);
  }
}

/** `filefrag -v` of each file: extents as [logical, physical, length] in filesystem blocks, and the block size. */
function blockMaps(paths) {
  const maps = new Map();
  let blockSize = 0;
  for (let k = 0; k < paths.length; k += 100) {
    const text = execFileSync('filefrag', ['-v', ...paths.slice(k, k + 100)], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    let current = null;
    for (const line of text.split('\n')) {
      const head = line.match(/^File size of (.*) is (\d+) \((\d+) blocks? of (\d+) bytes\)/);
      if (head) {
        current = [];
        maps.set(head[1], current);
        blockSize = Number(head[4]);
        continue;
      }
      const row = line.match(/^\s*\d+:\s*(\d+)\.\.\s*(\d+):\s*(\d+)\.\.\s*(\d+):\s*(\d+):/);
      if (row && current) current.push([Number(row[1]), Number(row[3]), Number(row[5])]);
    }
  }
  return { maps, blockSize };
}

function liveFilesOf(mnt) {
  return filesUnder(mnt)
    .map((p) => relative(mnt, p))
    .filter((rel) => !rel.startsWith('lost+found/'))
    .sort()
    .map((rel) => {
      const st = statSync(join(mnt, rel));
      return { path: rel, sha256: sha256File(join(mnt, rel)), size: st.size, mtime: Math.floor(st.mtimeMs / 1000) };
    });
}

/** Makes the image with the real kernel and returns its ground truth (also written next to it). */
function buildImage(fs, image) {
  const { live, deleted, later } = plan();
  rmSync(image, { force: true });
  run('truncate', ['-s', `${opts.sizeGib}G`, image]);
  run(`mkfs.${fs}`, ['-q', '-F', '-E', 'lazy_itable_init=0', image]);
  const mnt = join(opts.work, 'mnt');
  mkdirSync(mnt, { recursive: true });
  run('mount', ['-t', fs, '-o', 'loop', image, mnt]);
  let truth;
  try {
    writeFiles(mnt, live);
    run('sync', []);
    writeFiles(mnt, deleted);
    run('sync', []);
    const { maps, blockSize } = blockMaps(deleted.map((f) => join(mnt, f.path)));
    const del = deleted.map((f) => {
      const buf = bytesOf(f);
      const st = statSync(join(mnt, f.path));
      return { path: f.path, kind: f.kind, sha256: sha256(buf), size: buf.length, mtime: f.mtime, inode: st.ino, extents: maps.get(join(mnt, f.path)) };
    });
    run('rm', ['-r', join(mnt, DELETED_DIR)]);
    run('sync', []);
    writeFiles(mnt, later);
    run('sync', []);
    truth = { fs, sizeGib: opts.sizeGib, blockSize, deletedDir: DELETED_DIR, deleted: del, live: liveFilesOf(mnt) };
  } finally {
    run('umount', [mnt]);
  }
  // Which deleted files still hold their bytes: read each block of their maps from the unmounted image.
  const fd = openSync(image, 'r');
  try {
    const byPath = new Map(deleted.map((f) => [f.path, f]));
    for (const f of truth.deleted) {
      const want = bytesOf(byPath.get(f.path));
      let changed = 0;
      let blocks = 0;
      for (const [logical, physical, length] of f.extents) {
        for (let b = 0; b < length; b++) {
          const off = (logical + b) * truth.blockSize;
          if (off >= want.length) break;
          const n = Math.min(truth.blockSize, want.length - off);
          const got = Buffer.alloc(n);
          readSync(fd, got, 0, n, (physical + b) * truth.blockSize);
          blocks++;
          if (!got.equals(want.subarray(off, off + n))) changed++;
        }
      }
      f.overwrittenBlocks = changed;
      f.status = changed === 0 ? 'intact' : changed === blocks ? 'overwritten' : 'partly overwritten';
    }
  } finally {
    closeSync(fd);
  }
  const shas = new Set(truth.live.map((f) => f.sha256));
  for (const f of truth.deleted) {
    if (shas.has(f.sha256)) throw new Error(`${fs}: ${f.path} is not unique by content`);
    shas.add(f.sha256);
  }
  writeFileSync(`${image}.truth.json`, JSON.stringify(truth, null, 1) + '\n');
  return truth;
}

// ---------------------------------------------------------------- the tools

// mode_ext2: photorec's ext2/ext3 mode (skips blocks that look like indirect blocks); wholespace or freespace
// (only the blocks the bitmaps mark free).
const photorecCmd = (space) => `options,mode_ext2,fileopt,everything,disable,jpg,enable,${space},search`;
/** argv: the command; claims: the deleted path an output stands for, from where it was written (carvers: none). */
const TOOLS = {
  blocksmith: {
    what: 'blocksmith undelete IMG -o OUT',
    argv: (img, out) => [process.execPath, cli, 'undelete', img, '-o', out, '--quiet'],
    claims: (rel) => (rel.startsWith('recovered/') ? rel.slice('recovered/'.length) : null),
    report: true,
  },
  // extundelete 0.2.4 fails to create the directories it restores into ("No such file or directory while creating
  // directory") when -o is an absolute path: it is given OUT relative to its working directory, OUT's parent.
  extundelete: {
    what: 'extundelete IMG --restore-all -o OUT',
    argv: (img, out) => ['extundelete', img, '--restore-all', '-o', basename(out)],
    cwd: (out) => dirname(out),
    claims: (rel) => rel,
  },
  'ext4magic-r': { what: 'ext4magic IMG -r -d OUT', argv: (img, out) => ['ext4magic', img, '-r', '-d', out], claims: (rel) => rel },
  'ext4magic-M': { what: 'ext4magic IMG -M -d OUT', argv: (img, out) => ['ext4magic', img, '-M', '-d', out], claims: (rel) => rel },
  tsk: { what: 'tsk_recover IMG OUT (unallocated files only, the default)', argv: (img, out) => ['tsk_recover', img, out], claims: (rel) => rel },
  foremost: { what: 'foremost -d -t jpg -i IMG -o OUT', argv: (img, out) => ['foremost', '-d', '-t', 'jpg', '-i', img, '-o', out] },
  photorec: { what: `photorec /log /d OUT/recup /cmd IMG ${photorecCmd('wholespace')}`, argv: (img, out) => ['photorec', '/log', '/d', join(out, 'recup'), '/cmd', img, photorecCmd('wholespace')] },
  'photorec-free': { what: `photorec /log /d OUT/recup /cmd IMG ${photorecCmd('freespace')}`, argv: (img, out) => ['photorec', '/log', '/d', join(out, 'recup'), '/cmd', img, photorecCmd('freespace')] },
};

/** Scores one tool's output directory against the image's truth. */
function score(tool, out, truth) {
  const t = TOOLS[tool];
  const deletedBySha = new Map(truth.deleted.map((f) => [f.sha256, f]));
  const deletedByPath = new Map(truth.deleted.map((f) => [f.path, f]));
  const liveSha = new Set(truth.live.map((f) => f.sha256));
  // blocksmith says which files it stands behind: status recovered or reassembled in its report.
  let good = null;
  let reportSummary;
  if (t.report && existsSync(join(out, 'report.json'))) {
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    good = new Set((report.files ?? []).filter((f) => (f.status === 'recovered' || f.status === 'reassembled') && f.writtenAs).map((f) => f.writtenAs));
    reportSummary = Object.fromEntries(['recovered', 'reassembled', 'partial', 'overwritten', 'empty', 'unreadable'].map((k) => [k, report[k]]));
    // What it said of the deleted files whose blocks the truth knows (joined by inode number).
    const byInode = new Map(truth.deleted.map((f) => [f.inode, f]));
    const said = { overwrittenAndTrulyNotIntact: 0, overwrittenButIntact: 0, recoveredButNotIntact: 0, deletedFilesNotListed: 0 };
    const listed = new Set();
    for (const r of report.files ?? []) {
      const f = byInode.get(r.inode);
      if (!f || r.directory) continue;
      listed.add(f.path);
      if (r.status === 'overwritten' || r.status === 'partial') said[f.status === 'intact' ? 'overwrittenButIntact' : 'overwrittenAndTrulyNotIntact']++;
      if ((r.status === 'recovered' || r.status === 'reassembled') && f.status !== 'intact') said.recoveredButNotIntact++;
    }
    said.deletedFilesNotListed = truth.deleted.length - listed.size;
    reportSummary.byInode = said;
  }
  // A deleted file's base name stands for it where no other deleted file has that name (extundelete and ext4magic
  // write some files under their name without the directories above it).
  const byBaseName = new Map();
  for (const f of truth.deleted) byBaseName.set(basename(f.path), byBaseName.has(basename(f.path)) ? null : f);
  const exact = new Set(), named = new Set(), atPath = new Set(), withMtime = new Set(), atPathWithMtime = new Set();
  let wrongUnderName = 0, unmatchedPresentedGood = 0, liveWritten = 0, unmatched = 0, outputs = 0, bytes = 0;
  for (const p of filesUnder(out)) {
    const rel = relative(out, p);
    if (isToolBookkeeping(rel)) continue;
    const st = statSync(p);
    outputs++;
    bytes += st.size;
    const h = sha256File(p);
    const claimed = t.claims ? t.claims(rel) : null;
    const namedAs = claimed === null ? null : (deletedByPath.get(claimed) ?? byBaseName.get(basename(claimed)) ?? null);
    const presentedGood = good ? good.has(rel) : true;
    const f = deletedBySha.get(h);
    if (f) {
      exact.add(f.path);
      const mtimeOk = Math.floor(st.mtimeMs / 1000) === f.mtime;
      if (namedAs === f) named.add(f.path);
      if (claimed === f.path) atPath.add(f.path);
      if (mtimeOk) withMtime.add(f.path);
      if (claimed === f.path && mtimeOk) atPathWithMtime.add(f.path);
    } else if (liveSha.has(h)) {
      liveWritten++;
    } else {
      unmatched++;
      if (presentedGood) unmatchedPresentedGood++;
    }
    if (namedAs && namedAs.sha256 !== h && presentedGood) wrongUnderName++;
  }
  const isJpeg = (path) => deletedByPath.get(path).kind === 'jpeg';
  return {
    deletedExact: exact.size,
    exactWithName: named.size,
    exactAtPath: atPath.size,
    exactWithMtime: withMtime.size,
    exactAtPathWithMtime: atPathWithMtime.size,
    jpegExact: [...exact].filter(isJpeg).length,
    exactOfIntact: [...exact].filter((p) => deletedByPath.get(p).status === 'intact').length,
    wrongUnderDeletedName: wrongUnderName,
    unmatchedPresentedGood,
    liveWritten,
    unmatchedOutputs: unmatched,
    outputs,
    bytesWritten: bytes,
    ...(reportSummary ? { report: reportSummary } : {}),
  };
}

function cliInfo() {
  const root = resolve(dirname(cli), '..', '..', '..');
  const git = (...a) => {
    try {
      return execFileSync('git', ['-C', root, ...a], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return null;
    }
  };
  const addon = join(root, 'build', 'Release', 'blocksmith.node');
  return {
    cli,
    exists: existsSync(cli),
    commit: git('rev-parse', 'HEAD'),
    branch: git('rev-parse', '--abbrev-ref', 'HEAD'),
    subject: git('log', '-1', '--format=%s'),
    dirty: (git('status', '--porcelain', '--untracked-files=no') ?? '') !== '',
    addonSha256: existsSync(addon) ? sha256File(addon) : null,
  };
}

function peerVersions() {
  const v = (cmd, args) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split('\n')[0];
    } catch (e) {
      return `${e.stdout ?? ''}${e.stderr ?? ''}`.trim().split('\n')[0] || null;
    }
  };
  return {
    extundelete: v('extundelete', ['--version']),
    ext4magic: v('ext4magic', ['-V']),
    sleuthkit: v('tsk_recover', ['-V']),
    foremost: v('foremost', ['-V']),
    photorec: v('photorec', ['/version']),
  };
}

// ---------------------------------------------------------------- run

mkdirSync(opts.work, { recursive: true });
mkdirSync(outRoot, { recursive: true });
const results = {};
const t00 = Date.now();
for (const fs of filesystems) {
  const image = join(opts.work, `${fs}-${opts.sizeGib}g.img`);
  const t0 = Date.now();
  let truth;
  if (opts.reuse && existsSync(image) && existsSync(`${image}.truth.json`)) {
    truth = JSON.parse(readFileSync(`${image}.truth.json`, 'utf8'));
    console.error(`${fs}: reusing ${image}`);
  } else {
    truth = buildImage(fs, image);
    console.error(`${fs}: built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  const count = (s) => truth.deleted.filter((f) => f.status === s).length;
  const imageInfo = {
    bytes: statSync(image).size,
    blockSize: truth.blockSize,
    liveFiles: truth.live.length,
    deleted: truth.deleted.length,
    deletedJpegs: truth.deleted.filter((f) => f.kind === 'jpeg').length,
    deletedBytes: truth.deleted.reduce((a, f) => a + f.size, 0),
    deletedPastTwelveBlocks: truth.deleted.filter((f) => f.size > 12 * truth.blockSize).length,
    intact: count('intact'),
    partlyOverwritten: count('partly overwritten'),
    overwritten: count('overwritten'),
  };
  console.error(`${fs}: ${JSON.stringify(imageInfo)}`);
  const imageSha = sha256File(image);
  const perTool = {};
  for (const tool of tools) {
    const t = TOOLS[tool];
    if (tool === 'blocksmith' && !existsSync(cli)) {
      perTool[tool] = { what: t.what, skipped: `no CLI at ${cli}` };
      continue;
    }
    const seconds = [];
    let last;
    const out = join(outRoot, `${fs}-${tool}`);
    for (let r = 0; r < opts.runs; r++) {
      rmSync(out, { recursive: true, force: true });
      if (!t.cwd) mkdirSync(out, { recursive: true });
      dropCaches();
      // cwd = OUT: whatever a tool writes next to itself (logs, default output folders) stays with its output.
      last = timeOf(t.argv(image, out), { cwd: t.cwd ? t.cwd(out) : out, timeoutMs: opts.timeoutS * 1000 });
      seconds.push(last.seconds);
    }
    perTool[tool] = {
      what: t.what,
      exit: last.status,
      ...(last.signal ? { signal: last.signal } : {}),
      ...(last.timedOut ? { timedOut: true } : {}),
      ...(last.status ? { stderr: last.stderr } : {}),
      seconds: round(median(seconds), 2),
      runs: seconds.map((s) => round(s, 2)),
      ...score(tool, out, truth),
    };
    console.error(`${fs} ${tool}: ${JSON.stringify(perTool[tool])}`);
    if (!opts.keep) rmSync(out, { recursive: true, force: true });
  }
  if (sha256File(image) !== imageSha) throw new Error(`${fs}: the image changed during the run`);
  const peers = Object.entries(perTool).filter(([k, v]) => k !== 'blocksmith' && !v.skipped);
  const bestPeer = Math.max(0, ...peers.map(([, v]) => v.exactAtPath));
  const b = perTool.blocksmith;
  const goals = b && !b.skipped
    ? [
        { name: 'exact at the original path, of all deleted', target: '>= 0.9', value: round(b.exactAtPath / truth.deleted.length, 3), met: b.exactAtPath >= 0.9 * truth.deleted.length },
        { name: 'exact at the original path, more than the best peer', target: `> ${bestPeer}`, value: b.exactAtPath, met: b.exactAtPath > bestPeer },
        { name: 'live files written', target: '0', value: b.liveWritten, met: b.liveWritten === 0 },
        { name: 'wrong content presented as good', target: '0', value: b.wrongUnderDeletedName + b.unmatchedPresentedGood, met: b.wrongUnderDeletedName + b.unmatchedPresentedGood === 0 },
      ]
    : [];
  results[fs] = { image: imageInfo, tools: perTool, goals };
  if (!opts.keep) {
    rmSync(image, { force: true });
    rmSync(`${image}.truth.json`, { force: true });
  }
}

const table = [];
for (const [fs, r] of Object.entries(results)) {
  table.push(`| ${fs} ${opts.sizeGib} GiB (${r.image.deleted} deleted, ${r.image.intact} intact) | exact | name | path | mtime | path+mtime | JPEGs | wrong as good | live written | time |`, '|---|---|---|---|---|---|---|---|---|---|');
  for (const [tool, v] of Object.entries(r.tools)) {
    if (v.skipped) table.push(`| ${tool} | skipped: ${v.skipped} ||||||||`);
    else table.push(`| ${tool}${v.exit !== 0 ? ` (exit ${v.exit ?? v.signal})` : ''} | ${v.deletedExact} | ${v.exactWithName} | ${v.exactAtPath} | ${v.exactWithMtime} | ${v.exactAtPathWithMtime} | ${v.jpegExact} | ${v.wrongUnderDeletedName} | ${v.liveWritten} | ${v.seconds} s |`);
  }
  table.push('');
}
const file = writeResult(
  opts.out,
  {
    suite: 'ext-undelete',
    provenance: provenance(),
    machine: machineInfo(),
    blocksmithCli: cliInfo(),
    peers: peerVersions(),
    options: { ...opts, cli },
    totalSeconds: round((Date.now() - t00) / 1000, 1),
    results,
    table: table.join('\n'),
  },
  { BLOCKSMITH_CLI: dirname(dirname(dirname(dirname(cli)))), WORK: opts.work },
);
console.log(table.join('\n'));
console.error(`wrote ${file}`);
