// carve(): recover JPEGs from an image file or a block device. The source is
// only ever opened read-only (by the addon's FileReader); files go to outDir,
// partial ones to outDir/partial, thumbnails to outDir/thumbnails, a
// report.json describes the run (kept by carve-run.ts) and index.html shows it
// (src/render/gallery.ts).
//
// Every refusal comes before anything is created (src/output/carve-output.ts decides
// on the nearest existing ancestor of outDir). report.json is kept current
// while the run goes and written on every way out (done, stopped, failed,
// process exit), so that --resume always has something to continue from.
import { closeSync, existsSync, lstatSync, openSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { carveOutputIn, clearStaleTemporaries, createOutput, planOutput, ReportReserve, type OutputPlan } from '../output/carve-output.js';
import { sameStorage } from '../host/same-storage.js';
import { refuseMountedReadWrite } from '../host/mounted-source.js';
import { sourceSize } from '../host/source-size.js';
import { runJob, type JobOptions } from '../seam/job.js';
import { native, type CarveScopeName, type NativeCarveOptions, type NativeCarveReport } from '../seam/native.js';
import { defaults } from './defaults.js';
import { readPrevious } from './carve-resume.js';
import { CarveRun } from './carve-run.js';
import { isByName, planRedo, recoverByName, removeEarlierAttempt, type RedoPlan } from './carve-undelete.js';
import { AbortError, BlocksmithError, InvalidArgumentError } from './errors.js';
import { parseSize, type SizesAsText } from './units.js';

export type { CarvedFile, CarveReportFile, FileFragment, RecoveredByName, UnreadableRange } from './carved-file.js';
export type { CarveUndeletePart } from './carve-undelete.js';
import type { CarveReportFile } from './carved-file.js';

export type { CarveReport, CarveSummary } from './carve-report.js';
export type { CarveScopeName, NativeCarveScope as CarveScope } from '../seam/native.js';
import type { CarveReport } from './carve-report.js';

/** The carve's options (NativeCarveOptions, sizes also as text) but those of a resumed run, which `resume` sets. */
export interface CarveOptions
  extends JobOptions,
    SizesAsText<
      Omit<NativeCarveOptions, 'chunkSize' | 'write' | 'keepIdentical' | 'held' | 'recovered' | 'known' | 'rangeStart'>,
      'offset' | 'length' | 'minSize' | 'maxSize' | 'blockSize' | 'maxGap'
    > {
  /** Allow an output directory on the same device/filesystem as the source. */
  force?: boolean;
  /** A report.json of an interrupted run of the same source: continue from its nextOffset. */
  resume?: string;
  /** Write outDir/index.html, a page showing the recovered photos (default true). */
  gallery?: boolean;
  /**
   * Recover the deleted files of the source's FAT/exFAT/ext2/3/4 volumes by name first (into outDir/recovered/<original
   * path>, as `undelete` does), then carve; in scope free (the default on such a filesystem) the bytes of the files
   * recovered whole are not carved again. Refused while a filesystem of the source is mounted read-write. Default
   * false: only carving.
   */
  undelete?: boolean;
  /** Called once for every file written (and every duplicate), in order: those recovered by name first. */
  onFile?: (file: CarveReportFile) => void;
}

/** Thrown (as AbortError) when the signal stopped the run; the report was written. */
export interface CarveAbortError extends AbortError {
  report: CarveReport;
}

const SCOPES: readonly CarveScopeName[] = ['auto', 'free', 'all', 'allocated'];

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
  // A report without a scope was written before scopes existed: that run scanned everything.
  ['scope', 'scope', 'all'],
  ['undelete', 'undelete', false],
];

/** What the caller asked for, checked before anything is read or created (the source is only opened and closed). */
interface CheckedRequest {
  offset: number;
  /** 0: to the end of the source. */
  length: number;
  sectorSize: number;
  minSize: number;
  maxSize: number | undefined;
  blockSize: number | undefined;
  maxGap: number | undefined;
  /** The source's size, when it can be told without reading it. */
  size: number | undefined;
}

function checkRequest(source: string, options: CarveOptions): CheckedRequest {
  if (!options || typeof options.outDir !== 'string' || options.outDir === '') throw new InvalidArgumentError('outDir is required');
  const d = defaults.carve;
  const sectorSize = options.sectorSize ?? d.sectorSize;
  if (!Number.isSafeInteger(sectorSize) || sectorSize < 1 || sectorSize > 1 << 20)
    throw new InvalidArgumentError(`sector size must be an integer from 1 to 1M, got ${options.sectorSize}`);
  for (const [k, v] of [['minWidth', options.minWidth], ['minHeight', options.minHeight]] as const) {
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) throw new InvalidArgumentError(`${k} must be a non-negative integer`);
  }
  const offset = optSize(options.offset, 'offset') ?? d.offset;
  const length = optSize(options.length, 'length') ?? d.length;
  const minSize = optSize(options.minSize, 'min size') ?? d.minSize;
  const maxSize = optSize(options.maxSize, 'max size');
  const blockSize = optSize(options.blockSize, 'block size');
  const maxGap = optSize(options.maxGap, 'max gap');
  if (blockSize !== undefined && (blockSize < 1 || blockSize > 1 << 24))
    throw new InvalidArgumentError(`block size must be from 1 to 16M, got ${options.blockSize}`);
  if (options.maxAttempts !== undefined && (!Number.isSafeInteger(options.maxAttempts) || options.maxAttempts < 0))
    throw new InvalidArgumentError('maxAttempts must be a non-negative integer');
  if (options.scope !== undefined && !SCOPES.includes(options.scope))
    throw new InvalidArgumentError(`scope must be one of ${SCOPES.join(', ')}, got ${String(options.scope)}`);
  if (options.length !== undefined && length === 0) throw new InvalidArgumentError('length must be at least 1 byte (omit it to scan to the end)');
  const size = checkSource(source);
  if (options.offset !== undefined && size !== undefined && offset > 0 && offset >= size)
    throw new BlocksmithError(`offset ${offset} is at or past the end of '${source}' (${size} bytes)`, { code: 'EINVAL', path: source });
  return { offset, length, sectorSize, minSize, maxSize, blockSize, maxGap, size };
}

type CarveJobOptions = NativeCarveOptions & { offset: number; dedupe: boolean; scope: CarveScopeName; undelete?: boolean };

/**
 * The options handed to the addon, and report.json's `options`: the result
 * options are recorded with their values (the core's defaults where not
 * given), the limits only when given.
 */
function nativeOptionsFor(options: CarveOptions, req: CheckedRequest, outDir: string): CarveJobOptions {
  const { offset, length, sectorSize, minSize, maxSize, blockSize, maxGap } = req;
  const d = defaults.carve;
  return {
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
    scope: options.scope ?? d.scope,
    ...(options.exclude !== undefined ? { exclude: options.exclude } : {}),
    // Recorded (report.json's options, compared on --resume); carve-run.ts keeps it from the addon.
    ...(options.undelete ? { undelete: true } : {}),
  };
}

/**
 * --resume: the interrupted run's report, checked against this run's options
 * (they must be the same); the run continues from its nextOffset (unless an
 * offset is given) up to where it was to end (unless a length is given).
 */
function resumeFrom(resume: string, source: string, options: CarveOptions, plan: OutputPlan, nativeOpts: CarveJobOptions): CarveReport {
  const previous = readPrevious(resume, source, plan.dir, plan.missing.length === 0);
  const then = (k: string, fallback: unknown) => (previous.options as Record<string, unknown>)?.[k] ?? fallback;
  const given = nativeOpts as unknown as Record<string, unknown>;
  const now = (k: string, fallback: unknown) => given[k] ?? fallback;
  const differ = RESULT_OPTIONS.filter(([k, , fallback]) => then(k, fallback) !== now(k, fallback)).map(
    ([k, flag, fallback]) => `${flag}: ${String(then(k, fallback))} then, ${String(now(k, fallback))} now`,
  );
  if (differ.length > 0) throw new InvalidArgumentError(`--resume: the interrupted run used other options (${differ.join('; ')}); give the same ones`);
  if (options.offset === undefined) nativeOpts.offset = previous.nextOffset;
  // Up to where the interrupted run was to end (nothing, when only held candidates are left).
  if (options.length === undefined) nativeOpts.length = Math.max(0, previous.end - nativeOpts.offset);
  return previous;
}

const existsOrLink = (p: string) => {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
};

/** Without --resume, an existing outDir must not hold another carve's output. */
function refuseEarlierOutput(plan: OutputPlan): void {
  if (plan.missing.length > 0) return;
  const outDir = plan.dir;
  const other = carveOutputIn(outDir);
  if (!other) return;
  const reportPath = join(outDir, 'report.json');
  const hasReport = existsSync(reportPath);
  throw new BlocksmithError(
    `'${outDir}' already holds a carve's output (${hasReport ? 'report.json' : other}); ${
      hasReport ? `continue that run with --resume ${reportPath}, or carve into another directory` : 'carve into another directory (or empty this one)'
    }`,
    { code: 'EEXIST', syscall: 'open', path: join(outDir, hasReport ? 'report.json' : other) },
  );
}

async function refuseSameStorage(source: string, outDir: string): Promise<void> {
  const why = await sameStorage(source, outDir);
  if (why)
    throw new BlocksmithError(`refusing to write recovered files where they could overwrite the source: ${why} (use --force to override)`, {
      code: 'ESAMEDEV',
      path: outDir,
    });
}

/**
 * --undelete writes outDir/recovered: a fresh run needs it absent; a resumed
 * one that must do it again (the report says it did not finish), only the
 * files it wrote there. Returns what to remove before doing it again.
 */
function checkUndeleteTarget(options: CarveOptions, previous: CarveReport | undefined, plan: OutputPlan): RedoPlan | undefined {
  if (options.undelete !== undefined && typeof options.undelete !== 'boolean') throw new InvalidArgumentError('undelete must be true or false');
  if (!options.undelete || previous?.undelete?.finished) return undefined;
  if (previous) return planRedo(plan.dir, previous.files.filter(isByName));
  const recovered = join(plan.dir, 'recovered');
  if (plan.missing.length === 0 && existsOrLink(recovered))
    throw new BlocksmithError(`'${recovered}' already exists; carve --undelete writes the files it recovers by name there: carve into another directory`, {
      code: 'EEXIST',
      syscall: 'mkdir',
      path: recovered,
    });
  return undefined;
}

/** The run itself: the recovery by name first (with --undelete), then the carve of what is in scope. */
async function runCarve(source: string, outDir: string, run: CarveRun, redo: RedoPlan | undefined, options: CarveOptions): Promise<NativeCarveReport> {
  // What an unfinished recovery by name left goes first: the report still lists it until begin() replaces it.
  if (redo) removeEarlierAttempt(outDir, redo);
  run.begin();
  if (run.undeleteToDo) {
    const m = await recoverByName(source, outDir, { signal: options.signal, onProgress: options.onProgress });
    run.undeleteDone(m.part, m.files);
    if (m.cancelled) {
      const err = new AbortError(undefined, { cause: options.signal?.reason }) as CarveAbortError;
      err.report = run.stoppedEarly();
      throw err;
    }
  }
  return runJob((onProgress) => native.carve(source, run.jobOptions(), onProgress, run.onEvent), {
    signal: options.signal,
    onProgress: options.onProgress,
  });
}

/** Carves JPEGs from `source` (image file or block device) into `options.outDir`. */
export async function carve(source: string, options: CarveOptions): Promise<CarveReport> {
  const req = checkRequest(source, options);
  const plan = planOutput(options.outDir);
  const outDir = plan.dir;
  const nativeOpts = nativeOptionsFor(options, req, outDir);
  let previous: CarveReport | undefined;
  if (options.resume !== undefined) previous = resumeFrom(options.resume, source, options, plan, nativeOpts);
  else refuseEarlierOutput(plan);
  const redo = checkUndeleteTarget(options, previous, plan);
  // --undelete reads the filesystems as they are on disk: not while one is mounted read-write.
  if (options.undelete) refuseMountedReadWrite(source);
  if (!options.force) await refuseSameStorage(source, outDir);
  // Every refusal is above: from here on, things are created.
  const created = createOutput(plan);
  if (previous) {
    clearStaleTemporaries(outDir);
    ReportReserve.clearStale(outDir);
  }
  const { offset } = nativeOpts;
  const size = req.size;
  const end = size === undefined ? undefined : nativeOpts.length !== undefined ? Math.min(size, offset + nativeOpts.length) : size;

  const run = new CarveRun({
    source,
    outDir,
    nativeOptions: nativeOpts,
    previous,
    offset,
    size,
    end,
    gallery: options.gallery ?? true,
    undelete: !!options.undelete,
    signal: options.signal,
    onFile: options.onFile,
  });
  let r: NativeCarveReport;
  try {
    r = await runCarve(source, outDir, run, redo, options);
  } catch (err) {
    if (err instanceof AbortError && (err as CarveAbortError).report) throw err;
    throw run.failed(err, created);
  }
  const report = run.ended(r);
  if (r.cancelled) {
    const err = new AbortError(undefined, { cause: options.signal?.reason }) as CarveAbortError;
    err.report = report;
    throw err;
  }
  return report;
}
