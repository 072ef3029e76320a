// One carve run's state on the JS side: the files found so far (the earlier
// run's, then this run's), report.json kept current while the run goes and
// written on every way out (done, stopped, failed, process exit), and the
// gallery page. carve() decides whether and where to run; this keeps its
// record.
import { existsSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { removeCreated, ReportReserve, writeFileAtomicSync } from '../output/carve-output.js';
import { writeGallerySync } from '../render/gallery.js';
import type { NativeCarveOptions, NativeCarveReport } from '../seam/native.js';
import type { CarveReport } from './carve-report.js';
import { removeOurFile } from './carve-resume.js';
import { excludeOf, isByName, notStarted, type CarveUndeletePart } from './carve-undelete.js';
import type { CarvedFile, CarveReportFile, RecoveredByName } from './carved-file.js';
import { BlocksmithError } from './errors.js';

export interface CarveRunSetup {
  source: string;
  outDir: string;
  /** The options handed to the addon (recorded in the report, compared on --resume). */
  nativeOptions: NativeCarveOptions & { offset: number; dedupe: boolean };
  /** The interrupted run's report, when resuming. */
  previous: CarveReport | undefined;
  /** Where this run starts scanning. */
  offset: number;
  size: number | undefined;
  end: number | undefined;
  gallery: boolean;
  /** carve --undelete: recovery by name comes first (carve-undelete.ts). */
  undelete: boolean;
  signal: AbortSignal | undefined;
  onFile: ((file: CarveReportFile) => void) | undefined;
}

const keyOf = (f: CarvedFile) => `${f.status === 'thumbnail' ? 't' : 'f'}:${f.offset}`;

export class CarveRun {
  private readonly t0 = Date.now();
  private readonly startedAt = new Date(this.t0).toISOString();
  private readonly reportPath: string;
  // A resumed run scans again from `offset` and checks the held candidates
  // again: the earlier entries there are replaced by what it finds, and those
  // it does not find again are dropped (with their files) when it finishes.
  private readonly heldBefore: number[];
  private readonly recoveredBefore: { offset: number; length: number }[];
  private readonly files: CarvedFile[];
  // --undelete: the files recovered by name, and how that part went.
  private byName: RecoveredByName[];
  private undeletePart: CarveUndeletePart | undefined;
  private readonly index: Map<string, number>;
  private readonly unconfirmed: Set<string>;
  /** The addon's last checkpoint: where a resumed run would continue. */
  private checkpoint: NativeCarveReport | undefined;
  // report.json: replaced atomically (its previous version stays until the
  // new one is complete on disk); a reserve keeps room for the last one.
  private readonly reserve: ReportReserve;
  private haveReport: boolean;
  private lastWrite = Date.now();
  private cost = 0;
  private unwritten = 0;
  /** The last report was written (or given up on): the exit handler does nothing more. */
  private settled = false;

  constructor(private readonly setup: CarveRunSetup) {
    const { previous, offset, outDir } = setup;
    this.reportPath = join(outDir, 'report.json');
    this.heldBefore = (previous?.resumeState?.held ?? []).filter((o) => o < offset);
    this.recoveredBefore = (previous?.resumeState?.recovered ?? []).filter((r) => r.offset < offset);
    const heldSet = new Set(this.heldBefore);
    // An undelete part that finished is kept as it is; one that did not is done again (its entries dropped).
    const before = previous?.files ?? [];
    this.undeletePart = setup.undelete ? (previous?.undelete?.finished ? previous.undelete : notStarted()) : undefined;
    this.byName = this.undeletePart?.finished ? before.filter(isByName) : [];
    this.files = before.filter((f): f is CarvedFile => !isByName(f));
    this.index = new Map(this.files.map((f, i) => [keyOf(f), i]));
    this.unconfirmed = new Set(
      this.files.filter((f) => (f.status === 'thumbnail' ? (f.parent ?? f.offset) : f.offset) >= offset || heldSet.has(f.offset)).map(keyOf),
    );
    this.reserve = new ReportReserve(outDir);
    this.haveReport = previous !== undefined;
  }

  /** The recovery by name is still to do (not done, or not finished by the interrupted run). */
  get undeleteToDo(): boolean {
    return this.undeletePart !== undefined && !this.undeletePart.finished;
  }

  /** The recovery by name is over (or was stopped): its files join the report, and the report is brought up to date. */
  undeleteDone(part: CarveUndeletePart, files: RecoveredByName[]): void {
    this.undeletePart = part;
    this.byName = files;
    for (const f of files) this.setup.onFile?.(f);
    this.unwritten++;
    this.update(true);
  }

  /** The addon's options for this run: the user's, plus what a resumed run carries over. */
  jobOptions(): NativeCarveOptions {
    const { undelete: _undelete, ...o } = this.setup.nativeOptions as NativeCarveOptions & { undelete?: boolean };
    // What was recovered by name is not carved again (scope free).
    const exclude = [...(o.exclude ?? []), ...excludeOf(this.byName)];
    return {
      ...o,
      ...(exclude.length > 0 ? { exclude } : {}),
      keepIdentical: this.setup.previous !== undefined,
      // The scope's byte counts cover the whole carve, the interrupted run's part too.
      ...(this.setup.previous ? { rangeStart: this.setup.previous.start } : {}),
      held: this.heldBefore,
      recovered: this.recoveredBefore,
      known: o.dedupe ? this.files.filter((f) => f.status === 'complete' && f.offset < this.setup.offset && f.path).map((f) => ({ sha256: f.sha256, offset: f.offset })) : [],
    };
  }

  /** The first report ('running'), and the exit handler that writes the last one if the process leaves mid-run. */
  begin(): void {
    this.writeReport(this.build('running', undefined));
    process.on('exit', this.onExit);
  }

  /** For each file the addon wrote (f), and about once a second with a checkpoint (null, ckpt). */
  readonly onEvent = (f: CarvedFile | null, ckpt?: NativeCarveReport): void => {
    if (f === null) {
      if (ckpt) this.checkpoint = ckpt;
      this.update();
      return;
    }
    f.method = f.status === 'reassembled' ? 'reassembled' : 'carved';
    const k = keyOf(f);
    const at = this.index.get(k);
    if (at !== undefined) this.files[at] = f;
    else this.index.set(k, this.files.push(f) - 1);
    this.unconfirmed.delete(k);
    this.unwritten++;
    this.setup.onFile?.(f);
    this.update();
  };

  /**
   * The run failed: the error to throw. Before anything was carved into a
   * directory of our own, nothing is left behind; otherwise the files and an
   * up-to-date report.json stay, and the message says how to resume.
   */
  failed(err: unknown, created: string[]): unknown {
    process.off('exit', this.onExit);
    if (this.settled) return err;
    this.settled = true;
    this.reserve.release();
    const { outDir, previous } = this.setup;
    const ours = new Set(['report.json', '.report-reserve', 'index.html']);
    if (!previous && this.files.length === 0 && this.byName.length === 0 && readdirSync(outDir).every((n) => ours.has(n))) {
      for (const n of ours) {
        try {
          unlinkSync(join(outDir, n));
        } catch {
          // not there
        }
      }
      removeCreated(created);
      return err;
    }
    let note = `; the files so far and report.json are kept: resume with --resume ${this.reportPath}`;
    try {
      const report = this.build('failed', undefined, err);
      this.writeReport(report);
      try {
        this.writeGallery(report);
      } catch {
        // the page is a view of the report; the report is what matters here
      }
    } catch (e2) {
      note = `; report.json could not be brought up to date (${(e2 as NodeJS.ErrnoException).code ?? (e2 as Error).message}): the last one written says where to resume (--resume ${this.reportPath})`;
    }
    if (err instanceof BlocksmithError) err.message += note;
    return err;
  }

  /** The run ended (done or stopped): the final report, written with the gallery. */
  ended(r: NativeCarveReport): CarveReport {
    process.off('exit', this.onExit);
    this.settled = true;
    if (!r.cancelled) this.dropUnconfirmed();
    this.reserve.release();
    const report = this.build(r.cancelled ? 'stopped' : 'done', r);
    this.writeReport(report);
    this.writeGallery(report);
    return report;
  }

  /** Stopped before the carving started (while recovering by name): the report, written with the gallery. */
  stoppedEarly(): CarveReport {
    process.off('exit', this.onExit);
    this.settled = true;
    this.reserve.release();
    const report = this.build('stopped', undefined);
    this.writeReport(report);
    this.writeGallery(report);
    return report;
  }

  /** Finished: what the earlier run listed there and this one did not find again is not a file of this carve. */
  private dropUnconfirmed(): void {
    for (const k of this.unconfirmed) {
      const at = this.index.get(k);
      if (at !== undefined) removeOurFile(this.setup.outDir, this.files[at]!);
    }
    const keep = this.files.filter((f) => !this.unconfirmed.has(keyOf(f)));
    this.files.length = 0;
    this.files.push(...keep);
  }

  /** Where a resumed run would continue: from the start of this one until the first checkpoint arrives. */
  private resumePoint() {
    return {
      nextOffset: this.checkpoint?.nextOffset ?? this.setup.offset,
      held: this.checkpoint?.held ?? this.heldBefore,
      recovered: this.checkpoint?.recovered ?? this.recoveredBefore,
    };
  }

  private build(state: CarveReport['state'], r: NativeCarveReport | undefined, error?: unknown): CarveReport {
    const { source, outDir, previous, offset, size, end, nativeOptions } = this.setup;
    const carved = this.files;
    const files: CarveReportFile[] = [...this.byName, ...carved];
    const prev = (k: 'candidates' | 'rejected' | 'filtered' | 'bytesScanned' | 'seconds') => previous?.[k] ?? 0;
    const at = r && (state === 'done' || state === 'stopped') ? { nextOffset: r.nextOffset, held: r.held, recovered: r.recovered } : this.resumePoint();
    const cur = r ?? this.checkpoint;
    const count = (s: string) => carved.reduce((a, f) => a + (f.status === s ? 1 : 0), 0);
    const seconds = (Date.now() - this.t0) / 1000;
    const finished = state === 'done';
    const e = error as NodeJS.ErrnoException | undefined;
    return {
      tool: 'blocksmith carve',
      version: 1,
      source: r?.source ?? previous?.source ?? source,
      outDir,
      state,
      finished,
      ...(finished ? {} : { resumeWith: `--resume ${this.reportPath}` }),
      ...(e ? { error: { message: e.message, ...(typeof e.code === 'string' ? { code: e.code } : {}) } } : {}),
      startedAt: previous?.startedAt ?? this.startedAt,
      finishedAt: new Date().toISOString(),
      options: { ...nativeOptions, outDir: undefined, ...(previous ? { resumedFrom: offset } : {}) },
      size: r?.size ?? size ?? 0,
      start: previous ? previous.start : offset,
      end: r?.end ?? end ?? 0,
      nextOffset: at.nextOffset,
      bytesScanned: prev('bytesScanned') + (cur?.bytesScanned ?? 0),
      ...((cur?.scope ?? previous?.scope) ? { scope: cur?.scope ?? previous?.scope } : {}),
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
      ...(this.undeletePart ? { undelete: this.undeletePart } : {}),
      files,
      ...(finished ? {} : { resumeState: { held: at.held, recovered: at.recovered } }),
    };
  }

  private writeReport(report: CarveReport): void {
    const text = JSON.stringify(report, null, 2) + '\n';
    try {
      writeFileAtomicSync(this.setup.outDir, 'report.json', text, this.haveReport);
    } catch (err) {
      if (err instanceof BlocksmithError) throw err;
      const e = err as NodeJS.ErrnoException;
      throw new BlocksmithError(`cannot write ${this.reportPath}: ${e.message.replace(/^[A-Z0-9]+: /, '').replace(/, \w+( '.*')?$/, '')}`, {
        code: e.code ?? 'EIO',
        errno: e.errno,
        syscall: e.syscall,
        path: this.reportPath,
      });
    }
    this.haveReport = true;
    if (report.state === 'running') this.reserve.grow(Math.max(64 << 10, 2 * text.length));
  }

  private writeGallery(report: CarveReport): void {
    const { outDir, previous } = this.setup;
    if (this.setup.gallery) writeGallerySync(outDir, report, previous !== undefined || existsSync(join(outDir, 'index.html')));
  }

  /**
   * report.json brought up to date every second, and within a quarter of a
   * second of a new file, but spending at most about 5% of the time on it (a
   * report of 10,000 files is a few MB).
   */
  private update(force = false): void {
    const now = Date.now();
    const since = now - this.lastWrite;
    if (!force && since < Math.max(1000, 20 * this.cost) && !(this.unwritten > 0 && since >= Math.max(250, 20 * this.cost))) return;
    this.lastWrite = now;
    this.unwritten = 0;
    try {
      this.writeReport(this.build('running', undefined));
      this.cost = Date.now() - now;
    } catch {
      // Out of space or the like: the last good report stays; the run's own
      // writes will fail soon and the final report goes into the reserve.
    }
  }

  // The last report when the process exits while the run goes on (a second
  // Ctrl-C, or a CLI leaving on a closed stdout): synchronous, as 'exit'
  // handlers must be.
  private readonly onExit = (): void => {
    if (this.settled) return;
    this.settled = true;
    this.reserve.release();
    const aborted = this.setup.signal?.aborted;
    try {
      const report = this.build(aborted ? 'stopped' : 'failed', undefined, aborted ? undefined : new Error('the process exited before the run ended'));
      this.writeReport(report);
      this.writeGallery(report);
    } catch {
      // the last report written by update() stays
    }
  };
}
