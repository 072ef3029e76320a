// carve's output directory and its report (issue 14, cases 4, 5 and the
// carve messages of case 7):
// - a refused carve creates nothing: not the output directory, not its
//   parents (on the filesystem being recovered or anywhere else);
// - OUT/report.json exists after every way a run can end early (output
//   filesystem full, stdout closed, Ctrl-C once or twice, the process exiting
//   mid-run), says so and where to resume, and --resume then ends with
//   exactly the files of an uninterrupted run;
// - a resume into another directory, or a carve into a directory holding
//   another carve, is refused; nothing planted in OUT is followed or replaced;
// - the messages say what is true: EROFS for a read-only mount, "is a file"
//   for -o naming a file.
// Ground truth: an uninterrupted run of the same image (path -> sha256 of
// every file written), and the sha256 of every JPEG placed in the images.
import { spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, writeSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { carve, writeGallery, type CarvedFile, type CarveReport } from '../src/index.js';
import { AbortError, BlocksmithError } from '../src/api/errors.js';
import { fname, makeJpeg, outputs, randomBytes, sha256 } from './helpers/carve.js';
import { GiB, KiB, MiB, cliPath, makeTempDir, removeDir, repoRoot, runCli, sleep, spawnSyncOk, waitForOpen, writeLayout, type Piece } from './helpers/foundation.js';

const root = process.getuid?.() === 0;
const CL = 4 * KiB;

let dir: string;
/** 16 MiB: six photos at 1..6 MiB, 1.6 MiB of JPEG in all. */
let small: string;
/** 2 GiB sparse: in its first 16 MiB two JPEGs in 2 fragments, three damaged in place, two whole; whole photos at 0.5, 1 and 1.5 GiB and near the end. */
let big: string;
/** 32 GiB sparse, photos at 1 MiB, 0.5 GiB and near the end: read in full (--no-seek-hole), seconds of work (holes
 * read around the page cache go at ~10 GB/s: 8 GiB was over before report.json was first brought up to date). */
let long: string;
const smallPhotos: Buffer[] = [];
let longClean: Map<string, string>;
/** Fragment searches bounded so that the damaged JPEGs cost a fraction of a second each. */
const ATTEMPTS = 5000;
let smallClean: Map<string, string>;
let bigClean: Map<string, string>;
let bigCleanReport: CarveReport;

const readReport = (out: string) => JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as CarveReport;
const listed = (r: CarveReport) => new Map(r.files.filter((f) => f.path).map((f) => [f.path!, f.sha256]));
const carveCli = (args: string[], opts?: Parameters<typeof runCli>[1]) => runCli(['carve', ...args], opts);

/** OUT holds exactly the files of the uninterrupted run, its report lists exactly those, and nothing else is left. */
function expectSameAsClean(out: string, clean: Map<string, string>): void {
  expect(outputs(out)).toEqual(clean);
  const report = readReport(out);
  expect(report.state).toBe('done');
  expect(report.finished).toBe(true);
  expect(report.resumeWith).toBeUndefined();
  expect(listed(report)).toEqual(clean);
  expect(readdirSync(out).sort()).toEqual([...new Set([...clean.keys()].map((p) => p.split('/')[0]!)), 'index.html', 'report.json'].sort());
}

beforeAll(async () => {
  dir = makeTempDir('carve-output');
  const sizes: [number, number][] = [[640, 480], [800, 600], [320, 200], [1024, 768], [500, 400], [720, 540]];
  sizes.forEach(([w, h], i) => smallPhotos.push(makeJpeg(dir, `s${i}`, w, h, 500 + i)));
  small = join(dir, 'small.img');
  writeLayout(small, 16 * MiB, smallPhotos.map((bytes, i) => ({ offset: (i + 1) * MiB, bytes })));

  const jpeg = (name: string, w: number, h: number, seed: number) => makeJpeg(dir, name, w, h, seed);
  const size = 2 * GiB;
  const pieces: Piece[] = [{ offset: 0, bytes: randomBytes(16 * MiB, 11) }];
  const split = (bytes: Buffer, cut: number, at: number[]) => {
    pieces.push({ offset: at[0]!, bytes: bytes.subarray(0, cut * CL) }, { offset: at[1]!, bytes: bytes.subarray(cut * CL) });
  };
  split(jpeg('a', 640, 480, 601), 5, [1 * MiB, 1 * MiB + 8 * CL]);
  // Damaged in place (64 bytes of their data overwritten): partial, after a fragment search.
  for (let i = 0; i < 3; i++) {
    const d = Buffer.from(jpeg(`d${i}`, 800, 600, 610 + i));
    randomBytes(64, 620 + i).copy(d, Math.floor(d.length / 2));
    pieces.push({ offset: (3 + i) * MiB, bytes: d });
  }
  split(jpeg('b', 720, 540, 602), 6, [8 * MiB, 8 * MiB + 10 * CL]);
  pieces.push({ offset: 10 * MiB, bytes: jpeg('w1', 400, 300, 603) }, { offset: 12 * MiB, bytes: jpeg('w2', 300, 400, 604) });
  [GiB / 2, 1 * GiB, 1.5 * GiB, size - 4 * MiB].forEach((offset, i) => pieces.push({ offset, bytes: jpeg(`g${i}`, 480, 360, 630 + i) }));
  big = join(dir, 'big.img');
  writeLayout(big, size, pieces);
  long = join(dir, 'long.img');
  writeLayout(long, 32 * GiB, [1 * MiB, GiB / 2, 32 * GiB - 4 * MiB].map((offset, i) => ({ offset, bytes: jpeg(`l${i}`, 400, 300, 640 + i) })));

  smallClean = outputs((await carve(small, { force: true, outDir: join(dir, 'small-clean') })).outDir);
  bigCleanReport = await carve(big, { force: true, outDir: join(dir, 'big-clean'), maxAttempts: ATTEMPTS });
  bigClean = outputs(bigCleanReport.outDir);
  longClean = outputs((await carve(long, { force: true, outDir: join(dir, 'long-clean') })).outDir);
}, 120_000);
afterAll(() => removeDir(dir));

describe('the uninterrupted runs the others are compared with', () => {
  it('recover what the images hold', () => {
    expect(smallClean.size).toBe(6);
    expect(new Set(smallClean.values())).toEqual(new Set(smallPhotos.map(sha256)));
    const byStatus = (s: string) => bigCleanReport.files.filter((f) => f.status === s).map((f) => f.offset);
    expect(byStatus('reassembled')).toEqual(expect.arrayContaining([1 * MiB, 8 * MiB]));
    expect(byStatus('complete')).toEqual([10 * MiB, 12 * MiB, GiB / 2, 1 * GiB, 1.5 * GiB, 2 * GiB - 4 * MiB]);
    // The damaged ones are written (partial; whether a search may "complete" one is issue 14 case 11, not this suite).
    const damaged = bigCleanReport.files.filter((f) => [3 * MiB, 4 * MiB, 5 * MiB].includes(f.offset));
    expect(damaged.map((f) => f.offset)).toEqual([3 * MiB, 4 * MiB, 5 * MiB]);
    expect(bigCleanReport.state).toBe('done');
    expect(longClean.size).toBe(3);
  });
});

describe('a refused carve creates nothing', () => {
  /** Runs the CLI and checks that `parent` is unchanged afterwards (compared by listing). */
  async function refused(args: string[], parent: string) {
    const before = readdirSync(parent).sort();
    const r = await carveCli(args);
    expect(readdirSync(parent).sort()).toEqual(before);
    return r;
  }

  it('bad options, a missing source, an offset past the end: no output directory, no parents', async () => {
    const out = join(dir, 'never', 'out');
    const bad = await refused([small, '-o', out, '--min-width', 'abc'], dir);
    expect(bad.code).toBe(2);
    const missing = await refused([join(dir, 'missing.img'), '-o', out], dir);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^blocksmith: cannot open '.*missing\.img': .*\(ENOENT\)\n$/);
    const past = await refused([small, '-o', out, '--offset', '1G'], dir);
    expect(past.code).toBe(1);
    expect(past.stderr).toBe(`blocksmith: offset ${GiB} is at or past the end of '${small}' (${16 * MiB} bytes) (EINVAL)\n`);
    expect(existsSync(join(dir, 'never'))).toBe(false);
  });

  it('-o naming a file says it is a file, not a directory (ENOTDIR), and creates nothing', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'mine\n');
    const r = await refused([small, '-o', file], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`blocksmith: output directory '${file}' is a file, not a directory (ENOTDIR)\n`);
    const under = await refused([small, '-o', join(file, 'sub', 'out')], dir);
    expect(under.code).toBe(1);
    expect(under.stderr).toBe(`blocksmith: cannot create output directory '${file}/sub/out': '${file}' is a file, not a directory (ENOTDIR)\n`);
    expect(readFileSync(file, 'utf8')).toBe('mine\n');
  });
});

describe.skipIf(!root)('refused on the storage being recovered: decided before anything is created', () => {
  let fsImage = '';
  let loop = '';
  let mnt = '';
  beforeAll(() => {
    fsImage = join(dir, 'fs.img');
    writeLayout(fsImage, 64 * MiB, []);
    spawnSyncOk('mkfs.ext4', ['-q', fsImage]);
    loop = spawnSyncOk('losetup', ['-f', '--show', fsImage]).trim();
    mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    spawnSyncOk('mount', [loop, mnt]);
    copyFileSync(small, join(mnt, 'src.img'));
  });
  afterAll(() => {
    if (mnt) spawnSync('umount', [mnt]);
    if (loop) spawnSync('losetup', ['-d', loop]);
  });

  const nothingNew = () => expect(readdirSync(mnt).sort()).toEqual(['lost+found', 'src.img']);

  it('a source file on the mounted filesystem, -o a nested path on it', async () => {
    const r = await carveCli([join(mnt, 'src.img'), '-o', join(mnt, 'a', 'b', 'out')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `blocksmith: refusing to write recovered files where they could overwrite the source: ${mnt}/a/b/out is on the filesystem that holds ${mnt}/src.img (use --force to override) (ESAMEDEV)\n`,
    );
    nothingNew();
  });

  it('the loop device as the source, -o a nested path on its filesystem', async () => {
    const r = await carveCli([loop, '-o', join(mnt, 'c', 'd', 'out')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is on \/dev\/loop\d+ \(loop\d+\) \(use --force to override\) \(ESAMEDEV\)\n$/);
    nothingNew();
  });

  it("the loop device as the source, -o a nested path on its backing file's filesystem", async () => {
    const before = readdirSync(dir).sort();
    const r = await carveCli([loop, '-o', join(dir, 'x', 'y')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`is on the filesystem that holds ${fsImage}, the backing file of ${loop} .*\\(ESAMEDEV\\)\\n$`));
    expect(readdirSync(dir).sort()).toEqual(before);
  });

  it('a read-only mount: EROFS naming it, not ENOENT; nothing created', async () => {
    const roImage = join(dir, 'ro.img');
    writeLayout(roImage, 16 * MiB, []);
    spawnSyncOk('mkfs.ext4', ['-q', roImage]);
    const ro = join(dir, 'ro');
    mkdirSync(ro);
    spawnSyncOk('mount', ['-o', 'loop,ro', roImage, ro]);
    try {
      const nested = await carveCli([small, '-o', join(ro, 'a', 'b')]);
      expect(nested.code).toBe(1);
      expect(nested.stderr).toBe(`blocksmith: cannot create '${ro}/a/b': the filesystem mounted at ${ro} is read-only (EROFS)\n`);
      const itself = await carveCli([small, '-o', ro]);
      expect(itself.code).toBe(1);
      expect(itself.stderr).toBe(`blocksmith: cannot write in '${ro}': the filesystem mounted at ${ro} is read-only (EROFS)\n`);
      expect(readdirSync(ro)).toEqual(['lost+found']);
    } finally {
      spawnSync('umount', [ro]);
    }
  });
});

describe('an output directory holding another carve, a resume from elsewhere', () => {
  it('carving into a directory that holds a report is refused; the earlier run is untouched', async () => {
    const out = join(dir, 'twice');
    await carve(small, { force: true, outDir: out });
    const before = readFileSync(join(out, 'report.json'));
    const r = await carveCli(['--force', small, '-o', out, '--offset', '3M']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `blocksmith: '${out}' already holds a carve's output (report.json); continue that run with --resume ${out}/report.json, or carve into another directory (EEXIST)\n`,
    );
    expect(readFileSync(join(out, 'report.json'))).toEqual(before);
    expect(outputs(out)).toEqual(smallClean);
  });

  it('carving into a directory holding carved JPEGs without a report is refused', async () => {
    const out = join(dir, 'jpegs');
    mkdirSync(out);
    writeFileSync(join(out, fname(0)), smallPhotos[0]!);
    const r = await carveCli(['--force', small, '-o', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`blocksmith: '${out}' already holds a carve's output (${fname(0)}); carve into another directory (or empty this one) (EEXIST)\n`);
    expect(readdirSync(out)).toEqual([fname(0)]);
  });

  it('an existing empty directory, or one holding other files, is used; the other files stay', async () => {
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    expect((await carveCli(['--force', small, '-o', empty, '-q'])).code).toBe(0);
    expectSameAsClean(empty, smallClean);
    const other = join(dir, 'other');
    mkdirSync(other);
    writeFileSync(join(other, 'notes.txt'), 'keep\n');
    expect((await carveCli(['--force', small, '-o', other, '-q'])).code).toBe(0);
    expect(readFileSync(join(other, 'notes.txt'), 'utf8')).toBe('keep\n');
  });

  it('--resume with other options than the interrupted run is refused, the directory unchanged', async () => {
    const out = join(dir, 'other-options');
    await carve(small, { force: true, outDir: out, length: 2 * MiB });
    const before = readFileSync(join(out, 'report.json'));
    const r = await carveCli(['--force', small, '-o', out, '--resume', join(out, 'report.json'), '--sector-size', '512', '--no-partial']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('blocksmith: --resume: the interrupted run used other options (sector size: 1 then, 512 now; partial files: true then, false now); give the same ones\n');
    expect(readFileSync(join(out, 'report.json'))).toEqual(before);
  });

  it('--resume OLD/report.json -o NEW is refused with one line, NEW not created', async () => {
    const old = join(dir, 'old');
    await carve(small, { force: true, outDir: old, length: 3 * MiB });
    const fresh = join(dir, 'new');
    const r = await carveCli(['--force', small, '--resume', join(old, 'report.json'), '-o', fresh]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `blocksmith: --resume ${old}/report.json: the report is not in the output directory ${fresh}; resume into the directory that holds it (-o ${old})\n`,
    );
    expect(existsSync(fresh)).toBe(false);
  });
});

describe('report.json on every way a run ends early; --resume ends with the files of an uninterrupted run', () => {
  it('stopped during the scan: held candidates are not written as partial, the resumed run reassembles them', async () => {
    const out = join(dir, 'stop-scan');
    const ac = new AbortController();
    const err = await carve(big, {
      force: true,
      outDir: out,
      maxAttempts: ATTEMPTS,
      seekHole: false,
      signal: ac.signal,
      onFile: (f) => f.offset === GiB / 2 && ac.abort(),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortError);
    const stopped = readReport(out);
    expect(stopped.state).toBe('stopped');
    expect(stopped.finished).toBe(false);
    expect(stopped.resumeWith).toBe(`--resume ${out}/report.json`);
    expect(stopped.nextOffset).toBeGreaterThan(GiB / 2);
    expect(stopped.nextOffset).toBeLessThan(stopped.end);
    // The fragmented and damaged JPEGs wait for the fragment search; the whole ones are written.
    expect(stopped.resumeState!.held).toEqual(expect.arrayContaining([1 * MiB, 3 * MiB, 4 * MiB, 5 * MiB, 8 * MiB]));
    expect(existsSync(join(out, 'partial'))).toBe(false);
    expect(stopped.files.map((f) => f.offset)).toEqual(expect.arrayContaining([10 * MiB, 12 * MiB, GiB / 2]));
    expect(listed(stopped)).toEqual(outputs(out));

    const done = await carve(big, { force: true, outDir: out, maxAttempts: ATTEMPTS, resume: join(out, 'report.json') });
    expect(done.state).toBe('done');
    expectSameAsClean(out, bigClean);
  }, 60_000);

  it('stopped during the fragment search: the rest stays held, the resumed run resolves it', async () => {
    const out = join(dir, 'stop-search');
    const ac = new AbortController();
    const err = await carve(big, { force: true, outDir: out, maxAttempts: ATTEMPTS, signal: ac.signal, onFile: (f) => f.status === 'reassembled' && ac.abort() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortError);
    const stopped = readReport(out);
    expect(stopped.state).toBe('stopped');
    expect(stopped.nextOffset).toBe(stopped.end); // the scan had ended
    expect(stopped.resumeState!.held).toEqual(expect.arrayContaining([8 * MiB]));
    expect(existsSync(join(out, fname(8 * MiB)))).toBe(false);

    const done = await carve(big, { force: true, outDir: out, maxAttempts: ATTEMPTS, resume: join(out, 'report.json') });
    expect(done.state).toBe('done');
    expectSameAsClean(out, bigClean);
  }, 60_000);

  it('the process exiting mid-run (the second Ctrl-C exits at once): the report is written from the exit handler', async () => {
    const out = join(dir, 'exit');
    const script = join(dir, 'exit-mid-run.mjs');
    writeFileSync(
      script,
      `import { carve } from ${JSON.stringify(pathToFileURL(join(repoRoot, 'dist', 'index.js')).href)};
const ac = new AbortController();
await carve(process.argv[2], { force: true, outDir: process.argv[3], maxAttempts: ${ATTEMPTS}, seekHole: false, signal: ac.signal,
  onFile: (f) => { if (f.offset === ${GiB / 2}) { ac.abort(); process.exit(130); } } });
`,
    );
    const r = spawnSync(process.execPath, [script, big, out], { encoding: 'utf8' });
    expect(r.status).toBe(130);
    expect(r.stderr).toBe('');
    const stopped = readReport(out);
    expect(stopped.state).toBe('stopped');
    expect(stopped.resumeWith).toBe(`--resume ${out}/report.json`);
    expect(stopped.files.map((f) => f.offset)).toContain(GiB / 2);
    expect(stopped.nextOffset).toBeLessThan(stopped.end);
    expect(existsSync(join(out, '.report-reserve'))).toBe(false);

    const resumed = await carveCli(['--force', big, '-o', out, '--max-attempts', String(ATTEMPTS), '--resume', join(out, 'report.json'), '-q']);
    expect(resumed.code).toBe(0);
    expectSameAsClean(out, bigClean);
  }, 60_000);

  it('two SIGINTs (as `timeout -s INT` sends): exit 130, the report says stopped; kept current while running', async () => {
    const out = join(dir, 'sigint');
    let sending: Promise<void> | undefined;
    let running: CarveReport | undefined;
    const r = await carveCli(['--force', long, '-o', out, '--no-seek-hole'], {
      timeoutMs: 60_000,
      onSpawn: (pid) => {
        sending = waitForOpen(pid, long).then(async () => {
          // report.json is brought up to date while the run goes: it soon lists the file at 0.5 GiB.
          for (let i = 0; i < 1000 && !running; i++) {
            await sleep(5);
            try {
              const rep = readReport(out);
              if (rep.state === 'running' && rep.files.some((f) => f.offset === GiB / 2)) running = rep;
            } catch {
              // not there yet
            }
          }
          try {
            process.kill(pid, 'SIGINT');
            process.kill(pid, 'SIGINT');
          } catch {
            // it ended first: the assertions below say so
          }
        });
      },
    });
    await sending;
    expect(running?.resumeWith).toBe(`--resume ${out}/report.json`);
    expect(r.code).toBe(130);
    const stopped = readReport(out);
    expect(stopped.state).toBe('stopped');
    expect(stopped.finished).toBe(false);

    const resumed = await carveCli(['--force', long, '-o', out, '--resume', join(out, 'report.json'), '-q']);
    expect(resumed.code).toBe(0);
    expectSameAsClean(out, longClean);
  }, 60_000);

  it('stdout closed (`--json | head -1`): exit 141 quietly, no stack trace; the report says stopped', async () => {
    const out = join(dir, 'epipe');
    const r = spawnSync('bash', ['-c', `set -o pipefail; "${process.execPath}" "${cliPath}" carve "${long}" -o "${out}" --force --no-seek-hole --json | head -1`], {
      encoding: 'utf8',
      cwd: repoRoot,
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(141);
    expect((JSON.parse(r.stdout) as CarvedFile).status).toBe('complete');
    const stopped = readReport(out);
    expect(stopped.state).toBe('stopped');
    expect(stopped.nextOffset).toBeLessThan(stopped.end);

    const resumed = await carveCli(['--force', long, '-o', out, '--resume', join(out, 'report.json'), '-q']);
    expect(resumed.code).toBe(0);
    expectSameAsClean(out, longClean);
  }, 60_000);
});

describe.skipIf(!root)('the output filesystem full (ENOSPC)', () => {
  const tmpfs = (name: string, size: string) => {
    const mnt = join(dir, name);
    mkdirSync(mnt);
    spawnSyncOk('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', mnt]);
    return mnt;
  };
  afterAll(() => {
    for (const m of ['tiny', 'filled']) spawnSync('umount', [join(dir, m)]);
  });

  it('one line, exit 1; the report says failed with ENOSPC; after room is made --resume finishes; a planted symlink is not followed', async () => {
    const mnt = tmpfs('tiny', '1M');
    const out = join(mnt, 'out');
    const r = await carveCli([small, '-o', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(`^blocksmith: write '${out}/\\.f\\d{14}\\.jpg\\.part-\\d+-0': no space left on device; the files so far and report\\.json are kept: resume with --resume ${out}/report\\.json \\(ENOSPC\\)\\n$`),
    );
    const failed = readReport(out);
    expect(failed.state).toBe('failed');
    expect(failed.error?.code).toBe('ENOSPC');
    expect(failed.resumeWith).toBe(`--resume ${out}/report.json`);
    expect(failed.files.length).toBeGreaterThan(0);
    expect(listed(failed)).toEqual(outputs(out)); // no temporary file, no reserve left
    expect(failed.files.length).toBeLessThan(6);

    // A symlink planted where the resumed run writes its next file: refused, not followed.
    spawnSyncOk('mount', ['-o', 'remount,size=16M', mnt]);
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'precious');
    const next = fname((failed.files.length + 1) * MiB);
    symlinkSync(victim, join(out, next));
    const planted = await carveCli([small, '-o', out, '--resume', join(out, 'report.json')]);
    expect(planted.code).toBe(1);
    expect(planted.stderr).toMatch(new RegExp(`^blocksmith: '${out}/${next}' already exists \\(not replaced\\).*\\(EEXIST\\)\\n$`));
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    expect(lstatSync(join(out, next)).isSymbolicLink()).toBe(true);

    rmSync(join(out, next));
    const resumed = await carveCli([small, '-o', out, '--resume', join(out, 'report.json'), '-q']);
    expect(resumed.code).toBe(0);
    expectSameAsClean(out, smallClean);
  });

  it('filled by another writer: room for one photo and a half, the reserve makes room for the final report', async () => {
    const mnt = tmpfs('filled', '4M');
    const out = join(mnt, 'out');
    // Another writer leaves room for the report reserve (64 KiB), the first
    // photo and half of the second, so the run fails on its second file
    // whatever the timing (filling from onFile raced the carve under load).
    const pages = (n: number) => Math.ceil(n / 4096) * 4096;
    const room = 2 * 65536 + pages(smallPhotos[0]!.length) + pages(smallPhotos[1]!.length) / 2;
    const fs = statfsSync(mnt);
    const fill = fs.bavail * fs.bsize - room;
    expect(fill).toBeGreaterThan(0);
    writeFileSync(join(mnt, 'filler'), Buffer.alloc(fill, 1));
    const err = await carve(small, { force: true, outDir: out }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BlocksmithError);
    expect((err as BlocksmithError).code).toBe('ENOSPC');
    const failed = readReport(out);
    expect(failed.state).toBe('failed');
    expect(failed.error?.code).toBe('ENOSPC');
    expect(failed.files.length).toBeGreaterThan(0);
    expect(listed(failed)).toEqual(outputs(out));
  });
});

describe('nothing planted in the output directory is followed', () => {
  it('writeGallery does not replace an index.html (or write through a symlink there) without overwrite', async () => {
    const d = join(dir, 'gallery-planted');
    mkdirSync(d);
    const victim = join(dir, 'gallery-victim');
    writeFileSync(victim, 'precious');
    symlinkSync(victim, join(d, 'index.html'));
    const err = await writeGallery(d, { files: [] }).catch((e: unknown) => e);
    expect((err as BlocksmithError).code).toBe('EEXIST');
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    expect(readdirSync(d)).toEqual(['index.html']);
  });

  it('a report.json that is a symlink is not read as the report to resume', async () => {
    const d = join(dir, 'report-planted');
    mkdirSync(d);
    symlinkSync(join(dir, 'small-clean', 'report.json'), join(d, 'report.json'));
    const r = await carveCli(['--force', small, '-o', d, '--resume', join(d, 'report.json')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`blocksmith: cannot read the report to resume from (${d}/report.json): not a regular file\n`);
    expect(readdirSync(d)).toEqual(['report.json']);
  });
});
