// Undelete on camera cards (issue 16): a FAT32 card and an exFAT card holding
// live JPEGs and deleted ones (some fragmented by delete-and-rewrite, a
// deleted directory tree, some deleted files partly overwritten afterwards),
// recovered by blocksmith (`undelete`, and `carve --scope free|all` when the
// build has it) and by the peers: sleuthkit `tsk_recover` (deleted files,
// through metadata), photorec (free space, and whole), `foremost -t jpg`.
//
// Per tool: deleted files recovered exact (an output byte-equal to a deleted
// original), with the right name (at its original path for tools that keep
// paths; the same base name otherwise), with the right mtime (+-2 s), outputs
// presented as good that are not (blocksmith: a file the report calls
// recovered whose bytes differ from the original; peers present every output
// as a recovered file: outputs equal to no original), extra live files
// written (outputs byte-equal to a live file), bytes written, time.
//
//   node bench/undelete.bench.js [--cards fat32,exfat] [--size 4G] [--exfat-size 2G] [--live 2000] [--deleted 300]
//                                [--tools blocksmith,carve-free,carve-all,tsk,photorec-free,photorec,foremost] [--out undelete]
//
// The JPEGs are the shared carving corpus's 301 sources (make-corpus.sh builds
// them into /tmp/carve-corpus/src/jpeg), each copy made unique by a COM
// segment naming it. Images and outputs are not kept: images in bench/work,
// outputs in /dev/shm (another filesystem than the card's).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { aptInstall, haveCommand, machineInfo, parseArgs, provenance, ROOT, round, WORK_DIR, writeResult } from './lib.js';
import { dropCaches, filesUnder, isToolBookkeeping, jpegWithComment, sha256 as sha, timeOf } from './recovery-lib.js';

const usage =
  'node bench/undelete.bench.js [--cards fat32,exfat] [--size 4G] [--exfat-size 2G] [--live N] [--deleted N] [--tools list] [--jpegs DIR] [--out NAME] [--keep]';
const opts = parseArgs(
  process.argv.slice(2),
  {
    cards: { type: 'string', default: 'fat32,exfat' },
    size: { type: 'string', default: '4G' },
    exfatSize: { type: 'string', default: '2G' },
    live: { type: 'number', default: 2000 },
    deleted: { type: 'number', default: 300 },
    tools: { type: 'string', default: 'blocksmith,carve-undelete,carve-free,carve-all,tsk,photorec-free,photorec,foremost' },
    jpegs: { type: 'string', default: '/tmp/carve-corpus/src/jpeg' },
    out: { type: 'string', default: 'undelete' },
    keep: { type: 'boolean', default: false },
  },
  usage,
);
process.env.TZ = 'UTC'; // FAT stores local time: one zone for writing and reading
process.env.MTOOLS_SKIP_CHECK = '1';
for (const [cmd, pkg] of [['mcopy', 'mtools'], ['mkfs.fat', 'dosfstools'], ['mkfs.exfat', 'exfatprogs'], ['mount.exfat-fuse', 'exfat-fuse'],
  ['tsk_recover', 'sleuthkit'], ['photorec', 'testdisk'], ['foremost', 'foremost'], ['/usr/bin/time', 'time']]) {
  if (!haveCommand(cmd)) aptInstall([pkg]);
}
if (!existsSync(opts.jpegs)) {
  execFileSync('bash', [join(ROOT, '..', 'shared', 'carve', 'make-corpus.sh'), '/tmp/carve-corpus', '--only=raw-mix'], { stdio: 'inherit' });
}

const run = (cmd, args, o = {}) => execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'], ...o });
const workDir = join(WORK_DIR, 'undelete');
const outRoot = '/dev/shm/blocksmith-undelete-bench';
const blocksmith = join(ROOT, 'dist', 'cli', 'bin', 'blocksmith.js');

// ---------------------------------------------------------------- the photos

const sources = readdirSync(opts.jpegs).filter((n) => n.endsWith('.jpg')).sort().map((n) => readFileSync(join(opts.jpegs, n)));
/** Photo number i: a source JPEG with a COM segment naming it (so every copy is unique). */
function photo(i) {
  return jpegWithComment(sources[i % sources.length], `blocksmith undelete bench photo ${i}`);
}

/**
 * The card's history as steps: copy sets of files, delete some. Files get
 * camera names (IMG_0001.JPG, 8.3) in DCIM and long names in Trips; mtimes
 * are distinct whole seconds (FAT keeps 2 s steps).
 */
function plan(live, deleted) {
  const steps = [];
  let n = 0;
  const file = (dir, long) => {
    const i = n++;
    const name = long ? `Trip ${String(i).padStart(4, '0')} - sea view.jpg` : `IMG_${String(i).padStart(4, '0')}.JPG`;
    return { i, path: `${dir}/${name}`, mtime: 1_700_000_000 + i * 2 };
  };
  const total = live + deleted;
  const a = Array.from({ length: Math.round(total * 0.5) }, () => file('DCIM/100CANON', false));
  const b = Array.from({ length: Math.round(total * 0.3) }, () => file('DCIM/101CANON', false));
  const c = Array.from({ length: Math.round(total * 0.15) }, () => file('Trips/Sea', true));
  const tree = Array.from({ length: Math.round(deleted * 0.15) }, () => file('Trips/Deleted album', true));
  const d = Array.from({ length: Math.max(0, total - a.length - b.length - c.length - tree.length) }, () => file('DCIM/102CANON', false));
  // Deleted: spread over A (holes that B then fills: B's files fragment), some of B (fragmented deleted
  // files), the album tree, and some more of A just before D is written (D overwrites part of them).
  const delA = a.filter((_, k) => k % 9 === 4).slice(0, Math.round(deleted * 0.35));
  const delB = b.filter((_, k) => k % 7 === 3).slice(0, Math.round(deleted * 0.3));
  const rest = deleted - delA.length - delB.length - tree.length;
  const delLate = a.filter((_, k) => k % 9 === 7).slice(0, Math.max(0, rest));
  steps.push({ mkdir: ['DCIM', 'DCIM/100CANON', 'DCIM/101CANON', 'DCIM/102CANON', 'Trips', 'Trips/Sea', 'Trips/Deleted album'] });
  steps.push({ copy: a }, { del: delA }, { copy: b }, { del: delB }, { copy: c }, { copy: tree }, { deltree: 'Trips/Deleted album', files: tree });
  steps.push({ del: delLate }, { copy: d });
  const gone = new Set([...delA, ...delB, ...tree, ...delLate].map((f) => f.i));
  const all = [...a, ...b, ...c, ...tree, ...d];
  return { steps, deleted: all.filter((f) => gone.has(f.i)), live: all.filter((f) => !gone.has(f.i)) };
}

function stageFiles(dir, files) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return files.map((f) => {
    const p = join(dir, basename(f.path));
    writeFileSync(p, photo(f.i));
    utimesSync(p, f.mtime, f.mtime);
    return p;
  });
}

function buildFat32(image, size, history) {
  rmSync(image, { force: true });
  run('truncate', ['-s', size, image]);
  // 32 KiB clusters, as cameras format SDHC cards; small test cards keep mkfs.fat's choice (FAT32 needs 65525 clusters).
  const bytes = statSync(image).size;
  run('mkfs.fat', ['-F', '32', ...(bytes >= 4 * 2 ** 30 ? ['-s', '64'] : []), '-n', 'CARD', image]);
  const stage = join(workDir, 'stage');
  for (const s of history.steps) {
    if (s.mkdir) for (const d of s.mkdir) run('mmd', ['-i', image, `::${d}`]);
    if (s.copy && s.copy.length) {
      const dirOf = s.copy[0].path.slice(0, s.copy[0].path.lastIndexOf('/'));
      for (let k = 0; k < s.copy.length; k += 200) {
        const chunk = s.copy.slice(k, k + 200);
        run('mcopy', ['-m', '-i', image, ...stageFiles(stage, chunk), `::${dirOf}/`]);
      }
    }
    if (s.del) for (let k = 0; k < s.del.length; k += 200) run('mdel', ['-i', image, ...s.del.slice(k, k + 200).map((f) => `::${f.path}`)]);
    if (s.deltree) run('mdeltree', ['-i', image, `::${s.deltree}`]);
  }
  rmSync(stage, { recursive: true, force: true });
}

function buildExfat(image, size, history) {
  rmSync(image, { force: true });
  run('truncate', ['-s', size, image]);
  run('mkfs.exfat', ['-L', 'CARD', image]);
  const mnt = join(workDir, 'mnt');
  mkdirSync(mnt, { recursive: true });
  // exfat-fuse wants a block device.
  const loop = execFileSync('losetup', ['-f', '--show', image], { encoding: 'utf8' }).trim();
  run('mount.exfat-fuse', [loop, mnt]);
  try {
    for (const s of history.steps) {
      if (s.mkdir) for (const d of s.mkdir) mkdirSync(join(mnt, d), { recursive: true });
      if (s.copy) {
        for (const f of s.copy) {
          const p = join(mnt, f.path);
          writeFileSync(p, photo(f.i));
          utimesSync(p, f.mtime, f.mtime);
        }
        run('sync', []);
      }
      if (s.del) for (const f of s.del) rmSync(join(mnt, f.path));
      if (s.deltree) rmSync(join(mnt, s.deltree), { recursive: true });
      run('sync', []);
    }
  } finally {
    run('umount', [mnt]);
    run('losetup', ['-d', loop]);
  }
}

// ---------------------------------------------------------------- the tools

const carveHasScope = () => spawnSync(process.execPath, [blocksmith, 'carve', '--help'], { encoding: 'utf8' }).stdout.includes('--scope');

const TOOLS = {
  blocksmith: { what: 'blocksmith undelete IMG -o OUT', keepsPaths: true, argv: (img, out) => [process.execPath, blocksmith, 'undelete', img, '-o', out, '--quiet'] },
  'carve-undelete': {
    what: 'blocksmith carve IMG -o OUT --undelete (by name first, then free space carved)',
    keepsPaths: true,
    available: () => spawnSync(process.execPath, [blocksmith, 'carve', '--help'], { encoding: 'utf8' }).stdout.includes('--undelete'),
    argv: (img, out) => [process.execPath, blocksmith, 'carve', img, '-o', out, '--quiet', '--undelete'],
  },
  'carve-free': { what: 'blocksmith carve IMG -o OUT --scope free', available: carveHasScope, argv: (img, out) => [process.execPath, blocksmith, 'carve', img, '-o', out, '--quiet', '--scope', 'free'] },
  'carve-all': { what: 'blocksmith carve IMG -o OUT --scope all', available: carveHasScope, argv: (img, out) => [process.execPath, blocksmith, 'carve', img, '-o', out, '--quiet', '--scope', 'all'] },
  tsk: { what: 'tsk_recover IMG OUT (unallocated files, through metadata)', keepsPaths: true, argv: (img, out) => ['tsk_recover', img, out] },
  'photorec-free': { what: 'photorec /cmd IMG fileopt,everything,disable,jpg,enable,freespace,search', argv: (img, out) => ['photorec', '/log', '/d', join(out, 'recup'), '/cmd', img, 'fileopt,everything,disable,jpg,enable,freespace,search'] },
  photorec: { what: 'photorec /cmd IMG fileopt,everything,disable,jpg,enable,wholespace,search', argv: (img, out) => ['photorec', '/log', '/d', join(out, 'recup'), '/cmd', img, 'fileopt,everything,disable,jpg,enable,wholespace,search'] },
  foremost: { what: 'foremost -Q -t jpg -i IMG -o OUT', argv: (img, out) => ['foremost', '-Q', '-t', 'jpg', '-i', img, '-o', out] },
};

/** Scores one tool's output against the card's history. */
function score(tool, out, history) {
  const deletedBySha = new Map(history.deleted.map((f) => [sha(photo(f.i)), f]));
  const liveSha = new Set(history.live.map((f) => sha(photo(f.i))));
  const exact = new Set(), named = new Set(), timed = new Set();
  let wrongGood = 0, extraLive = 0, unmatched = 0, bytes = 0, outputs = 0;
  const recoveredDir = join(out, 'recovered');
  const report = (tool === 'blocksmith' || tool === 'carve-undelete') && existsSync(join(out, 'report.json')) ? JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) : null;
  const goodPaths = new Set();
  if (report) {
    for (const f of report.files ?? []) {
      if ((f.status === 'recovered' || f.status === 'reassembled') && f.writtenAs) goodPaths.add(f.writtenAs);
    }
  }
  for (const p of filesUnder(out)) {
    const rel = relative(out, p);
    if (isToolBookkeeping(rel)) continue;
    const st = statSync(p);
    outputs++;
    bytes += st.size;
    const h = sha(readFileSync(p));
    const f = deletedBySha.get(h);
    if (f) {
      exact.add(f.i);
      const shown = tool === 'blocksmith' || tool === 'carve-undelete' ? relative(recoveredDir, p) : rel;
      if (shown === f.path || (!TOOLS[tool].keepsPaths && basename(p) === basename(f.path))) named.add(f.i);
      if (Math.abs(st.mtimeMs / 1000 - f.mtime) <= 2) timed.add(f.i);
    } else if (liveSha.has(h)) {
      extraLive++;
    } else {
      unmatched++;
      // blocksmith says which files it is sure of: undelete's report (status recovered), carve's partial/ is not.
      const presented =
        tool === 'blocksmith' ? goodPaths.has(rel)
        : tool === 'carve-undelete' && rel.startsWith('recovered/') ? goodPaths.has(rel)
        : tool.startsWith('carve-') ? !rel.startsWith('partial/')
        : true;
      if (presented) wrongGood++;
    }
  }
  return {
    deletedExact: exact.size,
    withRightName: [...exact].filter((i) => named.has(i)).length,
    withRightMtime: [...exact].filter((i) => timed.has(i)).length,
    presentedGoodButWrong: wrongGood,
    extraLiveFiles: extraLive,
    outputs,
    unmatchedOutputs: unmatched,
    bytesWritten: bytes,
  };
}

// ---------------------------------------------------------------- run

mkdirSync(workDir, { recursive: true });
const history = plan(opts.live, opts.deleted);
const deletedBytes = history.deleted.reduce((a, f) => a + photo(f.i).length, 0);
const results = {};
for (const card of opts.cards.split(',')) {
  const image = join(workDir, `${card}.img`);
  const t0 = Date.now();
  if (card === 'fat32') buildFat32(image, opts.size, history);
  else if (card === 'exfat') buildExfat(image, opts.exfatSize, history);
  else throw new Error(`unknown card ${card}`);
  console.error(`${card}: built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const fileSha = (p) => execFileSync('sha256sum', [p], { encoding: 'utf8' }).split(' ')[0];
  const imageSha = fileSha(image);
  const perTool = {};
  for (const tool of opts.tools.split(',')) {
    const t = TOOLS[tool];
    if (!t) throw new Error(`unknown tool ${tool}`);
    if (t.available && !t.available()) {
      perTool[tool] = { what: t.what, skipped: 'not in this build' };
      continue;
    }
    const out = join(outRoot, `${card}-${tool}`);
    rmSync(out, { recursive: true, force: true });
    if (!tool.startsWith('blocksmith') && !tool.startsWith('carve')) mkdirSync(out, { recursive: true });
    dropCaches();
    const r = timeOf(t.argv(image, out));
    perTool[tool] = { what: t.what, exit: r.status, seconds: round(r.seconds, 2), ...(r.status ? { stderr: r.stderr } : {}), ...score(tool, out, history) };
    console.error(`${card} ${tool}: ${JSON.stringify(perTool[tool])}`);
    if (!opts.keep) rmSync(out, { recursive: true, force: true });
  }
  if (fileSha(image) !== imageSha) throw new Error(`${card}: the image changed during the run`);
  results[card] = {
    image: { bytes: statSync(image).size, live: history.live.length, deleted: history.deleted.length, deletedBytes },
    tools: perTool,
  };
  if (!opts.keep) rmSync(image, { force: true });
}
const file = writeResult(opts.out, { suite: 'undelete', provenance: provenance(), machine: machineInfo(), options: opts, results });
console.log(JSON.stringify(results, null, 2));
console.error(`wrote ${file}`);
