#!/usr/bin/env node
// Makes the non-sparse master images the sparsify benchmark runs on (issue 3).
// They are NOT committed: they go to bench/work/ (gitignored).
//
//   node bench/make-images.js [--vm-size 8G] [--mix-size 4G] [--fill 0.32] [--force] [--only vm|mix]
//
// sparsify-vm.raw   A VM-like raw image: an ext4 filesystem made by `mke2fs -t ext4 -d STAGE`
//          from real files (/usr/include, /usr/share, then /usr/lib subtrees, until
//          the staged files reach --fill of the image), written sparse by mke2fs and
//          then copied with `cp --sparse=never`, so every byte is allocated.
// sparsify-mix.raw  A zero/data mix: four equal regions, each alternating a run of zeros
//          and a run of random bytes of one granularity: 512 B, 4 KiB, 64 KiB,
//          1 MiB (in that order). Written byte by byte (zeros included): non-sparse.
//
// Both masters end with fsync and are checked to be fully allocated
// (st_blocks * 512 >= size). A manifest with their sizes, allocation and sha256
// goes to bench/work/sparsify-images.json.
import { spawnSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const WORK = path.join(here, 'work');
export const MANIFEST = path.join(WORK, 'sparsify-images.json');
export const imagePath = (name) => path.join(WORK, `sparsify-${name}.raw`);

function parseSize(s) {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?$/i.exec(String(s).trim());
  if (!m) throw new Error(`bad size '${s}'`);
  const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[m[2].toUpperCase()];
  return Math.round(Number(m[1]) * mult);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20, ...opts });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${String(r.stderr).trim().slice(-2000)}`);
  }
  return String(r.stdout);
}

function log(msg) {
  process.stderr.write(`[make-images] ${msg}\n`);
}

function allocated(file) {
  return fs.statSync(file).blocks * 512;
}

function sha256(file) {
  return run('sha256sum', [file]).split(/\s+/)[0];
}

function duBytes(dir) {
  return Number(run('du', ['-s', '--block-size=1', dir]).split(/\s+/)[0]);
}

// ---------------------------------------------------------------- vm.raw
// `keepSparse`: also keep mke2fs's sparse output under that path (the sparse
// twin of `out`, same bytes; the RBD benchmark copies both). `sparseOnly`
// (with keepSparse): make only the sparse one, `out` is not written (the
// 16 GiB RBD runs measure only it, and the full copy would not fit the disk).
export function makeVm(size, fill, out, { keepSparse = null, sparseOnly = false } = {}) {
  if (sparseOnly && !keepSparse) throw new Error('makeVm: sparseOnly needs keepSparse');
  const stage = path.join(WORK, `${path.basename(out, '.raw')}-stage`);
  fs.rmSync(stage, { recursive: true, force: true });
  fs.mkdirSync(stage, { recursive: true });
  const target = Math.floor(size * fill);
  // Real trees, small first-level pieces so the fill lands near the target.
  const candidates = ['/usr/include', '/usr/share'];
  const libs = fs
    .readdirSync('/usr/lib')
    .map((n) => path.join('/usr/lib', n))
    .filter((p) => {
      try {
        return fs.lstatSync(p).isDirectory();
      } catch {
        return false;
      }
    });
  // Put the distribution's library tree and toolchains first (what a VM's root fs holds).
  const preferred = ['x86_64-linux-gnu', 'gcc', 'python3', 'python3.11', 'llvm-14', 'jvm', 'git-core', 'postgresql'];
  libs.sort((a, b) => {
    const ia = preferred.indexOf(path.basename(a));
    const ib = preferred.indexOf(path.basename(b));
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
  });
  candidates.push(...libs);
  const staged = [];
  let bytes = 0;
  for (const src of candidates) {
    if (bytes >= target) break;
    const dst = path.join(stage, src.replace(/^\//, ''));
    fs.mkdirSync(path.dirname(dst), { recursive: true });
    run('cp', ['-a', '--no-preserve=ownership', src, dst]);
    bytes = duBytes(stage);
    staged.push(src);
    log(`staged ${src} (total ${(bytes / 2 ** 30).toFixed(2)} GiB of ${(target / 2 ** 30).toFixed(2)} GiB)`);
  }
  const sparse = out + '.sparse';
  fs.rmSync(sparse, { force: true });
  log(`mke2fs -t ext4 -d ${stage} ${sparse} ${size / 1024}k`);
  run('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'benchroot', '-d', stage, sparse, `${size / 1024}k`]);
  run('e2fsck', ['-fn', sparse]);
  fs.rmSync(stage, { recursive: true, force: true });
  let master = out;
  if (sparseOnly) {
    fs.renameSync(sparse, keepSparse);
    master = keepSparse;
  } else {
    log(`cp --sparse=never ${sparse} ${out}`);
    fs.rmSync(out, { force: true });
    run('cp', ['--sparse=never', sparse, out]);
    if (keepSparse) fs.renameSync(sparse, keepSparse);
    else fs.rmSync(sparse, { force: true });
  }
  run('sync', [master]);
  const df = run('dumpe2fs', ['-h', master], { stdio: ['ignore', 'pipe', 'ignore'] });
  const field = (name) => Number((new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(df) || [])[1]);
  const blockCount = field('Block count');
  const freeBlocks = field('Free blocks');
  return {
    kind: 'vm',
    description:
      `ext4 made by mke2fs -t ext4 -d from copies of ${staged.join(', ')}; ` +
      (sparseOnly ? 'kept sparse as mke2fs wrote it (no non-sparse twin)' : `then cp --sparse=never (non-sparse master)`),
    stagedBytes: bytes,
    fsBlockCount: blockCount,
    fsFreeBlocks: freeBlocks,
    fsUsedFraction: blockCount ? Number(((blockCount - freeBlocks) / blockCount).toFixed(4)) : null,
  };
}

// ---------------------------------------------------------------- mix.raw
export const MIX_GRAINS = [512, 4096, 65536, 1 << 20];

function makeMix(size, out) {
  const region = size / MIX_GRAINS.length;
  for (const g of MIX_GRAINS) {
    if (region % (2 * g) !== 0) throw new Error(`mix size ${size} must split into regions that are multiples of ${2 * g}`);
  }
  const pool = Buffer.alloc(64 << 20);
  randomFillSync(pool);
  // Random bytes are almost never a zero 512 B sector, but make sure.
  for (let i = 0; i < pool.length; i += 256) if (pool[i] === 0) pool[i] = 1;
  const chunk = Buffer.alloc(8 << 20);
  const fd = fs.openSync(out, 'w');
  let off = 0;
  let poolPos = 0;
  try {
    for (const g of MIX_GRAINS) {
      const end = off + region;
      while (off < end) {
        // Fill one chunk with pairs (zero run, data run) of g bytes.
        for (let p = 0; p < chunk.length; p += 2 * g) {
          chunk.fill(0, p, p + g);
          if (poolPos + g > pool.length) poolPos = (poolPos + 4099) % 4096;  // shift so pieces differ
          pool.copy(chunk, p + g, poolPos, poolPos + g);
          poolPos += g;
        }
        fs.writeSync(fd, chunk, 0, chunk.length, off);
        off += chunk.length;
      }
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return {
    kind: 'mix',
    description:
      `${MIX_GRAINS.length} regions of ${region} bytes; region i alternates a zero run and a random-data run ` +
      `of ${MIX_GRAINS.join(', ')} bytes (in order); written non-sparse`,
    regions: MIX_GRAINS.map((g, i) => ({ offset: i * region, length: region, grain: g })),
    // What a 4 KiB-granular sparsifier can free: zero runs of >= 4 KiB, i.e. half of regions 2..4.
    reclaimableAt4K: MIX_GRAINS.filter((g) => g >= 4096).length * (region / 2),
  };
}

// ---------------------------------------------------------------- main
function parseArgs(argv) {
  const a = { vmSize: '8G', mixSize: '4G', fill: 0.32, force: false, only: null };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (k === '--vm-size') a.vmSize = argv[++i];
    else if (k === '--mix-size') a.mixSize = argv[++i];
    else if (k === '--fill') a.fill = Number(argv[++i]);
    else if (k === '--force') a.force = true;
    else if (k === '--only') a.only = argv[++i];
    else throw new Error(`unknown argument ${k}`);
  }
  return a;
}

export function readManifest() {
  try {
    return JSON.parse(fs.readFileSync(MANIFEST, 'utf8'));
  } catch {
    return { images: {} };
  }
}

/** Makes the images that are missing (or of another size, or all with force); returns the manifest. */
export function ensureImages({ vmSize = '8G', mixSize = '4G', fill = 0.32, force = false, only = null } = {}) {
  fs.mkdirSync(WORK, { recursive: true });
  const manifest = readManifest();
  const want = { vm: parseSize(vmSize), mix: parseSize(mixSize) };
  for (const name of ['vm', 'mix']) {
    if (only && only !== name) continue;
    const file = imagePath(name);
    const have = manifest.images[name];
    const ok =
      !force && have && fs.existsSync(file) && fs.statSync(file).size === want[name] && have.size === want[name] &&
      (name !== 'vm' || have.fill === fill);
    if (ok) {
      log(`${file}: present (${want[name]} bytes), kept`);
      continue;
    }
    const t0 = process.hrtime.bigint();
    log(`making ${file} (${want[name]} bytes)`);
    const meta = name === 'vm' ? makeVm(want[name], fill, file) : makeMix(want[name], file);
    const alloc = allocated(file);
    if (alloc < want[name]) throw new Error(`${file} is not fully allocated (${alloc} of ${want[name]} bytes)`);
    manifest.images[name] = {
      path: path.relative(path.join(here, '..'), file),
      size: want[name],
      allocated: alloc,
      fill: name === 'vm' ? fill : undefined,
      sha256: sha256(file),
      made: new Date().toISOString(),
      seconds: Number(process.hrtime.bigint() - t0) / 1e9,
      ...meta,
    };
    fs.writeFileSync(MANIFEST, JSON.stringify(manifest, null, 2) + '\n');
    log(`${file}: done in ${manifest.images[name].seconds.toFixed(1)} s`);
  }
  return manifest;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const m = ensureImages(parseArgs(process.argv.slice(2)));
  process.stdout.write(JSON.stringify(m, null, 2) + '\n');
}
