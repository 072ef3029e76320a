// carve(): recover JPEGs from an image file or a block device. The source is
// only ever opened read-only (by the addon's FileReader); files go to outDir,
// partial ones to outDir/partial, thumbnails to outDir/thumbnails, a
// report.json describes the run and index.html shows it (src/render/gallery.ts).
//
// Every refusal comes before anything is created (src/output/carve-output.ts decides
// on the nearest existing ancestor of outDir). report.json is kept current
// while the run goes and written on every way out (done, stopped, failed,
// process exit), so that --resume always has something to continue from.
import { closeSync, existsSync, lstatSync, openSync, readdirSync, readFileSync, realpathSync, statSync, unlinkSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import {
  carveOutputIn,
  clearStaleTemporaries,
  createOutput,
  planOutput,
  removeCreated,
  ReportReserve,
  writeFileAtomicSync,
} from '../output/carve-output.js';
import { AbortError, BlocksmithError, InvalidArgumentError } from './errors.js';
import { writeGallerySync } from '../render/gallery.js';
import { runJob, type JobOptions } from '../seam/job.js';
import { native, type NativeCarveOptions, type NativeCarveReport } from '../seam/native.js';
import { defaults } from './defaults.js';
import { parseSize, type SizesAsText } from './units.js';
import { sourceSize } from '../host/source-size.js';
import { sameStorage } from '../host/same-storage.js';

export type { CarvedFile, FileFragment, UnreadableRange } from './carved-file.js';
import type { CarvedFile, FileFragment } from './carved-file.js';

/** The run's figures: the addon's (bytes scanned, candidates, complete / reassembled / partial / rejected counts,
 * unreadable ranges, where `resume` continues: `nextOffset`) plus where the files went and the rate. The counts
 * of files (complete, reassembled, partial, thumbnails, duplicates, bytesWritten) are those of `files`. */
export interface CarveSummary extends Omit<NativeCarveReport, 'held' | 'recovered'> {
  outDir: string;
  bytesPerSecond: number;
  /**
   * running: the run is going on (report.json is brought up to date every second, and soon after each new file);
   * stopped: by a signal or a closed stdout; failed: by an error (`error`), e.g. the output filesystem full;
   * done: the whole range was carved. Only `done` is finished; the others say how to continue (`resumeWith`).
   */
  state: 'running' | 'stopped' | 'failed' | 'done';
  finished: boolean;
  /** When not finished: the option that continues the run (`--resume OUTDIR/report.json`). */
  resumeWith?: string;
  error?: { message: string; code?: string };
}

export interface CarveReport extends CarveSummary {
  tool: 'blocksmith carve';
  version: 1;
  startedAt: string;
  /** When this report was written (the end of the run once finished). */
  finishedAt: string;
  options: Record<string, unknown>;
  files: CarvedFile[];
  /** When not finished, what --resume continues from besides nextOffset: candidates before it still held for the
   * fragment search (checked again), and the files recovered before it (the search's claims). */
  resumeState?: { held: number[]; recovered: FileFragment[] };
}

/** The carve's options (NativeCarveOptions, sizes also as text) but those of a resumed run, which `resume` sets. */
export interface CarveOptions
  extends JobOptions,
    SizesAsText<
      Omit<NativeCarveOptions, 'chunkSize' | 'write' | 'keepIdentical' | 'held' | 'recovered' | 'known'>,
      'offset' | 'length' | 'minSize' | 'maxSize' | 'blockSize' | 'maxGap'
    > {
  /** Allow an output directory on the same device/filesystem as the source. */
  force?: boolean;
  /** A report.json of an interrupted run of the same source: continue from its nextOffset. */
  resume?: string;
  /** Write outDir/index.html, a page showing the recovered photos (default true). */
  gallery?: boolean;
  /** Called once for every file written (and every duplicate), in order. */
  onFile?: (file: CarvedFile) => void;
}

/** Thrown (as AbortError) when the signal stopped the run; the report was written. */
export interface CarveAbortError extends AbortError {
  report: CarveReport;
}

function optSize(v: number | string | undefined, what: string): number | undefined {
  return v === undefined ? undefined : parseSize(v, what);
}


/** The source must be something to read: not a directory, and open-able read-only. Returns its size. */
function checkSource(source: string): number | undefined {
  try {
    const st = statSync(source);
    if (st.isDirectory()) throw new BlocksmithError(`'${source}' is a directory; expected an image file or a block device`, { code: 'EISDIR', path: source, syscall: 'open' });
    closeSync(openSync(source, 'r'));
    return sourceSize(source);
  } catch (err) {
    if (err instanceof BlocksmithError) throw err;
    const e = err as NodeJS.ErrnoException;
    // Node's message repeats the code and the path: keep only the reason.
    const why = e.message.replace(/^[A-Z0-9_]+: /, '').replace(/, \w+ '.*'$/, '');
    throw new BlocksmithError(`cannot open '${source}': ${why}`, { code: e.code ?? 'EIO', errno: e.errno, syscall: e.syscall ?? 'open', path: source });
  }
}

const SAFE = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const FILE_PATH = /^(partial\/|thumbnails\/)?f\d{14}\.jpg$/;

/**
 * The report an interrupted run left, checked: it must be OUTDIR/report.json
 * (the files it lists are there), of this source, and well-formed (it is read
 * from a directory others may write to: paths are only ever our own names).
 */
function readPrevious(resumePath: string, source: string, outDir: string, outExists: boolean): CarveReport {
  const where = resolve(resumePath);
  try {
    // Our own report is a regular file; a symlink there was planted.
    if (!lstatSync(where).isFile()) throw new Error('not a regular file');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new InvalidArgumentError(`cannot read the report to resume from (${resumePath}): ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  }
  let inOut = false;
  try {
    inOut = outExists && basename(where) === 'report.json' && realpathSync(dirname(where)) === outDir;
  } catch {
    // its directory does not exist: not in outDir either
  }
  if (!inOut)
    throw new InvalidArgumentError(
      `--resume ${resumePath}: the report is not in the output directory ${outDir}; resume into the directory that holds it (-o ${dirname(where)})`,
    );
  let previous: CarveReport;
  try {
    previous = JSON.parse(readFileSync(where, 'utf8')) as CarveReport;
  } catch (err) {
    throw new InvalidArgumentError(`cannot read the report to resume from (${resumePath}): ${(err as Error).message}`);
  }
  const bad = (what: string) => new InvalidArgumentError(`${resumePath} is not a usable carve report (${what})`);
  if (!previous || previous.tool !== 'blocksmith carve' || typeof previous.source !== 'string') throw bad('not written by blocksmith carve');
  if (resolve(previous.source) !== resolve(source)) throw new InvalidArgumentError(`${resumePath} is a carve report of ${previous.source}, not of ${source}`);
  for (const k of ['nextOffset', 'start', 'end'] as const) if (!SAFE(previous[k])) throw bad(k);
  if (!Array.isArray(previous.files)) throw bad('files');
  previous.files.forEach((f, i) => {
    if (!f || typeof f !== 'object' || !SAFE(f.offset) || !SAFE(f.length) || typeof f.status !== 'string') throw bad(`files[${i}]`);
    if (f.path !== undefined && (typeof f.path !== 'string' || !FILE_PATH.test(f.path))) throw bad(`files[${i}].path`);
    if (typeof f.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(f.sha256)) throw bad(`files[${i}].sha256`);
  });
  const rs = previous.resumeState;
  if (rs !== undefined) {
    if (!Array.isArray(rs.held) || !rs.held.every(SAFE)) throw bad('resumeState.held');
    if (!Array.isArray(rs.recovered) || !rs.recovered.every((r) => r && SAFE(r.offset) && SAFE(r.length))) throw bad('resumeState.recovered');
  }
  return previous;
}

/** Options that change which files a run writes: a resumed run must use the interrupted run's (absent: the core's default). */
const RESULT_OPTIONS: [key: string, name: string, fallback: unknown][] = [
  ['sectorSize', 'sector size', defaults.carve.sectorSize],
  ['minSize', 'min size', defaults.carve.minSize],
  ['minWidth', 'min width', defaults.carve.minWidth],
  ['minHeight', 'min height', defaults.carve.minHeight],
  ['maxSize', 'max size', defaults.carve.maxSize],
  ['dedupe', 'dedupe', defaults.carve.dedupe],
  ['thumbnails', 'thumbnails', defaults.carve.thumbnails],
  ['partials', 'partial files', defaults.carve.partials],
  ['reassemble', 'reassemble', defaults.carve.reassemble],
  // The core's 0: from the filesystem or the files' offsets.
  ['blockSize', 'block size', 'auto'],
  ['maxGap', 'max gap', defaults.carve.maxGap],
  ['maxAttempts', 'max attempts', defaults.carve.maxAttempts],
];

const sha256Of = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** Deletes OUTDIR/f.path if it is a regular file (in a real directory) holding what the report says: a file of ours. */
function removeOurFile(outDir: string, f: CarvedFile): void {
  if (!f.path || !FILE_PATH.test(f.path)) return;
  try {
    if (f.path.includes('/') && !lstatSync(join(outDir, dirname(f.path))).isDirectory()) return;
    const p = join(outDir, f.path);
    if (lstatSync(p).isFile() && sha256Of(p) === f.sha256) unlinkSync(p);
  } catch {
    // gone already
  }
}

/** Carves JPEGs from `source` (image file or block device) into `options.outDir`. */
export async function carve(source: string, options: CarveOptions): Promise<CarveReport> {
  if (!options || typeof options.outDir !== 'string' || options.outDir === '') throw new InvalidArgumentError('outDir is required');
  const d = defaults.carve;
  const sectorSize = options.sectorSize ?? d.sectorSize;
  if (!Number.isSafeInteger(sectorSize) || sectorSize < 1 || sectorSize > 1 << 20)
    throw new InvalidArgumentError(`sector size must be an integer from 1 to 1M, got ${options.sectorSize}`);
  for (const [k, v] of [['minWidth', options.minWidth], ['minHeight', options.minHeight]] as const) {
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) throw new InvalidArgumentError(`${k} must be a non-negative integer`);
  }
  let offset = optSize(options.offset, 'offset') ?? d.offset;
  let length = optSize(options.length, 'length') ?? d.length;
  const minSize = optSize(options.minSize, 'min size') ?? d.minSize;
  const maxSize = optSize(options.maxSize, 'max size');
  const blockSize = optSize(options.blockSize, 'block size');
  const maxGap = optSize(options.maxGap, 'max gap');
  if (blockSize !== undefined && (blockSize < 1 || blockSize > 1 << 24))
    throw new InvalidArgumentError(`block size must be from 1 to 16M, got ${options.blockSize}`);
  if (options.maxAttempts !== undefined && (!Number.isSafeInteger(options.maxAttempts) || options.maxAttempts < 0))
    throw new InvalidArgumentError('maxAttempts must be a non-negative integer');
  if (options.length !== undefined && length === 0) throw new InvalidArgumentError('length must be at least 1 byte (omit it to scan to the end)');
  const size = checkSource(source);
  if (options.offset !== undefined && size !== undefined && offset > 0 && offset >= size)
    throw new BlocksmithError(`offset ${offset} is at or past the end of '${source}' (${size} bytes)`, { code: 'EINVAL', path: source });

  const plan = planOutput(options.outDir);
  const outDir = plan.dir;
  const reportPath = join(outDir, 'report.json');
  // Also report.json's `options`: the result options are recorded with their
  // values (the core's defaults where not given), the limits only when given.
  const nativeOpts: NativeCarveOptions & { offset: number; dedupe: boolean } = {
    outDir,
    offset,
    // Absent: to the end of the source.
    ...(length > 0 ? { length } : {}),
    sectorSize,
    minSize,
    minWidth: options.minWidth ?? d.minWidth,
    minHeight: options.minHeight ?? d.minHeight,
    ...(maxSize !== undefined ? { maxSize } : {}),
    dedupe: options.dedupe ?? d.dedupe,
    thumbnails: options.thumbnails ?? d.thumbnails,
    partials: options.partials ?? d.partials,
    seekHole: options.seekHole ?? d.seekHole,
    reassemble: options.reassemble ?? d.reassemble,
    ...(blockSize !== undefined ? { blockSize } : {}),
    ...(maxGap !== undefined ? { maxGap } : {}),
    ...(options.maxAttempts !== undefined ? { maxAttempts: options.maxAttempts } : {}),
  };
  let previous: CarveReport | undefined;
  if (options.resume !== undefined) {
    previous = readPrevious(options.resume, source, outDir, plan.missing.length === 0);
    const given = nativeOpts as unknown as Record<string, unknown>;
    const differ = RESULT_OPTIONS.filter(([k, , fallback]) => {
      const was = (previous!.options as Record<string, unknown>)?.[k] ?? fallback;
      const now = given[k] ?? fallback;
      return was !== now;
    }).map(([k, flag, fallback]) => `${flag}: ${String((previous!.options as Record<string, unknown>)?.[k] ?? fallback)} then, ${String(given[k] ?? fallback)} now`);
    if (differ.length > 0)
      throw new InvalidArgumentError(`--resume: the interrupted run used other options (${differ.join('; ')}); give the same ones`);
    if (options.offset === undefined) offset = previous.nextOffset;
    nativeOpts.offset = offset;
    // Up to where the interrupted run was to end (nothing, when only held candidates are left).
    if (options.length === undefined) {
      length = Math.max(0, previous.end - offset);
      nativeOpts.length = length;
    }
  } else if (plan.missing.length === 0) {
    const other = carveOutputIn(outDir);
    if (other) {
      const hasReport = existsSync(reportPath);
      throw new BlocksmithError(
        `'${outDir}' already holds a carve's output (${hasReport ? 'report.json' : other}); ${
          hasReport ? `continue that run with --resume ${reportPath}, or carve into another directory` : 'carve into another directory (or empty this one)'
        }`,
        { code: 'EEXIST', syscall: 'open', path: join(outDir, hasReport ? 'report.json' : other) },
      );
    }
  }
  if (!options.force) {
    const why = await sameStorage(source, outDir);
    if (why)
      throw new BlocksmithError(`refusing to write recovered files where they could overwrite the source: ${why} (use --force to override)`, {
        code: 'ESAMEDEV',
        path: outDir,
      });
  }
  // Every refusal is above: from here on, things are created.
  const created = createOutput(plan);
  if (previous) {
    clearStaleTemporaries(outDir);
    ReportReserve.clearStale(outDir);
  }
  const t0 = Date.now();
  const startedAt = new Date(t0).toISOString();
  const end = size === undefined ? undefined : nativeOpts.length !== undefined ? Math.min(size, offset + length) : size;

  // Files: the earlier run's, then this run's. A resumed run scans again from
  // `offset` and checks the held candidates again: the earlier entries there
  // are replaced by what it finds, and those it does not find again are
  // dropped (with their files) when it finishes.
  const heldBefore = (previous?.resumeState?.held ?? []).filter((o) => o < offset);
  const recoveredBefore = (previous?.resumeState?.recovered ?? []).filter((r) => r.offset < offset);
  const heldSet = new Set(heldBefore);
  const files: CarvedFile[] = previous ? [...previous.files] : [];
  const keyOf = (f: CarvedFile) => `${f.status === 'thumbnail' ? 't' : 'f'}:${f.offset}`;
  const index = new Map(files.map((f, i) => [keyOf(f), i]));
  const unconfirmed = new Set(
    files.filter((f) => (f.status === 'thumbnail' ? (f.parent ?? f.offset) : f.offset) >= offset || heldSet.has(f.offset)).map(keyOf),
  );
  const runOpts = {
    ...nativeOpts,
    keepIdentical: previous !== undefined,
    held: heldBefore,
    recovered: recoveredBefore,
    known: nativeOpts.dedupe ? files.filter((f) => f.status === 'complete' && f.offset < offset && f.path).map((f) => ({ sha256: f.sha256, offset: f.offset })) : [],
  };

  // Where a resumed run would continue: from the start of this one until the
  // first checkpoint arrives.
  let checkpoint: NativeCarveReport | undefined;
  const resumePoint = () => ({
    nextOffset: checkpoint?.nextOffset ?? offset,
    held: checkpoint?.held ?? heldBefore,
    recovered: checkpoint?.recovered ?? recoveredBefore,
  });
  const prev = (k: 'candidates' | 'rejected' | 'filtered' | 'bytesScanned' | 'seconds') => previous?.[k] ?? 0;
  const build = (state: CarveReport['state'], r: NativeCarveReport | undefined, error?: unknown): CarveReport => {
    const at = r && (state === 'done' || state === 'stopped') ? { nextOffset: r.nextOffset, held: r.held, recovered: r.recovered } : resumePoint();
    const cur = r ?? checkpoint;
    const count = (s: string) => files.reduce((a, f) => a + (f.status === s ? 1 : 0), 0);
    const seconds = (Date.now() - t0) / 1000;
    const finished = state === 'done';
    const e = error as NodeJS.ErrnoException | undefined;
    return {
      tool: 'blocksmith carve',
      version: 1,
      source: r?.source ?? previous?.source ?? source,
      outDir,
      state,
      finished,
      ...(finished ? {} : { resumeWith: `--resume ${reportPath}` }),
      ...(e ? { error: { message: e.message, ...(typeof e.code === 'string' ? { code: e.code } : {}) } } : {}),
      startedAt: previous?.startedAt ?? startedAt,
      finishedAt: new Date().toISOString(),
      options: { ...nativeOpts, outDir: undefined, ...(previous ? { resumedFrom: offset } : {}) },
      size: r?.size ?? size ?? 0,
      start: previous ? previous.start : offset,
      end: r?.end ?? end ?? 0,
      nextOffset: at.nextOffset,
      bytesScanned: prev('bytesScanned') + (cur?.bytesScanned ?? 0),
      candidates: prev('candidates') + (cur?.candidates ?? 0),
      complete: count('complete'),
      reassembled: count('reassembled'),
      partial: count('partial'),
      rejected: prev('rejected') + (cur?.rejected ?? 0),
      filtered: prev('filtered') + (cur?.filtered ?? 0),
      duplicates: count('duplicate'),
      thumbnails: count('thumbnail'),
      bytesWritten: files.reduce((a, f) => a + (f.path ? f.length : 0), 0),
      unreadable: [...(previous?.unreadable ?? []), ...(cur?.unreadable ?? [])],
      seconds: prev('seconds') + seconds,
      bytesPerSecond: seconds > 0 ? Math.round(Math.max(0, at.nextOffset - offset) / seconds) : 0,
      cancelled: state === 'stopped',
      files,
      ...(finished ? {} : { resumeState: { held: at.held, recovered: at.recovered } }),
    };
  };

  // report.json: replaced atomically (its previous version stays until the
  // new one is complete on disk); a reserve keeps room for the last one.
  const reserve = new ReportReserve(outDir);
  let haveReport = previous !== undefined;
  const writeReport = (report: CarveReport) => {
    const text = JSON.stringify(report, null, 2) + '\n';
    try {
      writeFileAtomicSync(outDir, 'report.json', text, haveReport);
    } catch (err) {
      if (err instanceof BlocksmithError) throw err;
      const e = err as NodeJS.ErrnoException;
      throw new BlocksmithError(`cannot write ${reportPath}: ${e.message.replace(/^[A-Z0-9]+: /, '').replace(/, \w+( '.*')?$/, '')}`, {
        code: e.code ?? 'EIO',
        errno: e.errno,
        syscall: e.syscall,
        path: reportPath,
      });
    }
    haveReport = true;
    if (report.state === 'running') reserve.grow(Math.max(64 << 10, 2 * text.length));
  };
  const writeGalleryQuiet = (report: CarveReport) => {
    if (options.gallery ?? true) writeGallerySync(outDir, report, previous !== undefined || existsSync(join(outDir, 'index.html')));
  };
  // Every second, and within a quarter of a second of a new file, but
  // spending at most about 5% of the time on it (a report of 10,000 files is
  // a few MB).
  let lastWrite = Date.now();
  let cost = 0;
  let unwritten = 0;
  const update = () => {
    const now = Date.now();
    const since = now - lastWrite;
    if (since < Math.max(1000, 20 * cost) && !(unwritten > 0 && since >= Math.max(250, 20 * cost))) return;
    lastWrite = now;
    unwritten = 0;
    try {
      writeReport(build('running', undefined));
      cost = Date.now() - now;
    } catch {
      // Out of space or the like: the last good report stays; the run's own
      // writes will fail soon and the final report goes into the reserve.
    }
  };
  const onEvent = (f: CarvedFile | null, ckpt?: NativeCarveReport) => {
    if (f === null) {
      if (ckpt) checkpoint = ckpt;
      update();
      return;
    }
    const k = keyOf(f);
    const at = index.get(k);
    if (at !== undefined) files[at] = f;
    else index.set(k, files.push(f) - 1);
    unconfirmed.delete(k);
    unwritten++;
    options.onFile?.(f);
    update();
  };
  // The last report when the process exits while the run goes on (a second
  // Ctrl-C, or a CLI leaving on a closed stdout): synchronous, as 'exit'
  // handlers must be.
  let settled = false;
  const onExit = () => {
    if (settled) return;
    settled = true;
    reserve.release();
    try {
      const report = build(options.signal?.aborted ? 'stopped' : 'failed', undefined, options.signal?.aborted ? undefined : new Error('the process exited before the run ended'));
      writeReport(report);
      writeGalleryQuiet(report);
    } catch {
      // the last report written by update() stays
    }
  };

  let r: NativeCarveReport;
  try {
    writeReport(build('running', undefined));
    process.on('exit', onExit);
    r = await runJob((onProgress) => native.carve(source, runOpts, onProgress, onEvent), { signal: options.signal, onProgress: options.onProgress });
  } catch (err) {
    process.off('exit', onExit);
    if (settled) throw err;
    settled = true;
    reserve.release();
    // Failed before anything was carved into a directory of our own: leave nothing behind.
    const ours = new Set(['report.json', '.report-reserve', 'index.html']);
    if (!previous && files.length === 0 && readdirSync(outDir).every((n) => ours.has(n))) {
      for (const n of ours) {
        try {
          unlinkSync(join(outDir, n));
        } catch {
          // not there
        }
      }
      removeCreated(created);
      throw err;
    }
    let note = `; the files so far and report.json are kept: resume with --resume ${reportPath}`;
    try {
      const report = build('failed', undefined, err);
      writeReport(report);
      try {
        writeGalleryQuiet(report);
      } catch {
        // the page is a view of the report; the report is what matters here
      }
    } catch (e2) {
      note = `; report.json could not be brought up to date (${(e2 as NodeJS.ErrnoException).code ?? (e2 as Error).message}): the last one written says where to resume (--resume ${reportPath})`;
    }
    if (err instanceof BlocksmithError) err.message += note;
    throw err;
  }
  process.off('exit', onExit);
  settled = true;
  if (!r.cancelled) {
    // Finished: what the earlier run listed there and this one did not find again is not a file of this carve.
    for (const k of unconfirmed) {
      const at = index.get(k);
      if (at !== undefined) removeOurFile(outDir, files[at]!);
    }
    const keep = files.filter((f) => !unconfirmed.has(keyOf(f)));
    files.length = 0;
    files.push(...keep);
  }
  reserve.release();
  const report = build(r.cancelled ? 'stopped' : 'done', r);
  writeReport(report);
  writeGalleryQuiet(report);
  if (r.cancelled) {
    const err = new AbortError(undefined, { cause: options.signal?.reason }) as CarveAbortError;
    err.report = report;
    throw err;
  }
  return report;
}
