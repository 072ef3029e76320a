// One undelete run's record on the JS side: report.json kept current while
// files are written (each file arrives from the addon as it is done), and
// written on every way out: done, stopped (AbortSignal), failed (ENOSPC and
// the like: the files written so far are listed) and process exit (a second
// Ctrl-C, a CLI leaving on a closed stdout). As carve-run.ts does: the report
// is replaced atomically, and a reserve file keeps room for the last one on
// a filesystem that fills up.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { ReportReserve, writeFileAtomicSync } from '../output/carve-output.js';
import type { NativeUndeleteReport, UndeletedFile, UndeleteVolume } from '../seam/native.js';
import { BlocksmithError } from './errors.js';
import type { UndeleteReport } from './undelete-report.js';

export class UndeleteRun {
  private readonly startedAt = new Date().toISOString();
  private readonly t0 = Date.now();
  private readonly files: UndeletedFile[] = [];
  private volumes: UndeleteVolume[] = [];
  private readonly reserve: ReportReserve | undefined;
  private haveReport = false;
  private lastWrite = 0;
  private cost = 0;
  private unwritten = 0;
  /** The last report was written (or given up on): the exit handler does nothing more. */
  private settled = false;

  constructor(
    private readonly source: string,
    /** Undefined with `list`: nothing is written. */
    private readonly outDir: string | undefined,
    private readonly signal: AbortSignal | undefined,
    private readonly onFile: ((f: UndeletedFile) => void) | undefined,
  ) {
    this.reserve = outDir !== undefined ? new ReportReserve(outDir) : undefined;
  }

  /** The run starts: the first report ('running'), and the exit handler that writes the last one if the process leaves mid-run. */
  begin(): void {
    if (this.outDir === undefined) return;
    this.writeReport(this.build('running', undefined));
    this.lastWrite = Date.now();
    process.on('exit', this.onExit);
  }

  /** For each file the addon is done with (the volumes come with the first one). */
  readonly onEvent = (f: UndeletedFile, volumes?: UndeleteVolume[]): void => {
    if (volumes) this.volumes = volumes;
    this.files.push(f);
    this.unwritten++;
    this.onFile?.(f);
    this.update();
  };

  /** Files were written before the run failed: report.json says failed, with them. */
  get wroteAny(): boolean {
    return this.files.some((f) => f.writtenAs !== undefined);
  }

  /** The run ended (done or stopped): the final report. */
  ended(r: NativeUndeleteReport): UndeleteReport {
    this.settle();
    const report = this.build(r.cancelled ? 'stopped' : 'done', r);
    if (this.outDir !== undefined) this.writeReport(report);
    return report;
  }

  /** Refused before anything was written (no readable volume): the report goes too (the caller removes the directory). */
  abandoned(): void {
    this.settle();
    if (this.outDir !== undefined) rmSync(join(this.outDir, 'report.json'), { force: true });
  }

  /** The run failed after writing: report.json says failed, with the error and the files written so far; the error to throw. */
  failed(err: unknown): unknown {
    this.settle();
    if (this.outDir === undefined) return err;
    const path = join(this.outDir, 'report.json');
    let note = `; the files written so far are listed in ${path}`;
    try {
      this.writeReport(this.build('failed', undefined, err));
    } catch (e2) {
      note = `; ${path} could not be written (${(e2 as NodeJS.ErrnoException).code ?? (e2 as Error).message})`;
    }
    if (err instanceof BlocksmithError) err.message += note;
    return err;
  }

  private settle(): void {
    process.off('exit', this.onExit);
    this.settled = true;
    this.reserve?.release();
  }

  private build(state: UndeleteReport['state'], r: NativeUndeleteReport | undefined, error?: unknown): UndeleteReport {
    const files = r?.files ?? this.files;
    const count = (s: UndeletedFile['status']) => files.reduce((a, f) => a + (!f.directory && f.status === s ? 1 : 0), 0);
    const e = error as NodeJS.ErrnoException | undefined;
    const base: NativeUndeleteReport = r ?? {
      source: this.source,
      size: 0,
      scheme: 'none',
      volumes: this.volumes,
      files,
      recovered: count('recovered') + count('recoverable'),
      reassembled: count('reassembled'),
      partial: count('partial'),
      overwritten: count('overwritten'),
      empty: count('empty'),
      unreadable: count('unreadable'),
      directories: files.reduce((a, f) => a + (f.directory ? 1 : 0), 0),
      bytesWritten: files.reduce((a, f) => a + (f.writtenAs !== undefined && !f.directory ? f.size : 0), 0),
      seconds: (Date.now() - this.t0) / 1000,
      cancelled: state === 'stopped',
    };
    return {
      tool: 'blocksmith undelete',
      version: 1,
      ...(this.outDir !== undefined ? { outDir: this.outDir } : {}),
      list: this.outDir === undefined,
      state,
      ...(e ? { error: { message: e.message, ...(typeof e.code === 'string' ? { code: e.code } : {}) } } : {}),
      startedAt: this.startedAt,
      finishedAt: new Date().toISOString(),
      finished: state === 'done',
      ...base,
    };
  }

  private writeReport(report: UndeleteReport): void {
    const path = join(this.outDir!, 'report.json');
    const text = JSON.stringify(report, null, 2) + '\n';
    try {
      writeFileAtomicSync(this.outDir!, 'report.json', text, this.haveReport);
    } catch (err) {
      if (err instanceof BlocksmithError) throw err;
      const e = err as NodeJS.ErrnoException;
      throw new BlocksmithError(`cannot write ${path}: ${e.message.replace(/^[A-Z0-9]+: /, '').replace(/, \w+( '.*')?$/, '')}`, {
        code: e.code ?? 'EIO',
        errno: e.errno,
        syscall: e.syscall,
        path,
      });
    }
    this.haveReport = true;
    if (report.state === 'running') this.reserve?.grow(Math.max(64 << 10, 2 * text.length));
  }

  /** report.json brought up to date about every second, and soon after new files, at most ~5% of the time (as carve does). */
  private update(): void {
    if (this.outDir === undefined) return;
    const now = Date.now();
    const since = now - this.lastWrite;
    if (this.haveReport && since < Math.max(1000, 20 * this.cost) && !(this.unwritten > 0 && since >= Math.max(250, 20 * this.cost))) return;
    this.lastWrite = now;
    this.unwritten = 0;
    try {
      this.writeReport(this.build('running', undefined));
      this.cost = Date.now() - now;
    } catch {
      // Out of space or the like: the last good report stays; the run's own
      // writes fail soon and the final report goes into the reserve.
    }
  }

  private readonly onExit = (): void => {
    if (this.settled) return;
    this.settled = true;
    this.reserve?.release();
    const aborted = this.signal?.aborted;
    try {
      this.writeReport(this.build(aborted ? 'stopped' : 'failed', undefined, aborted ? undefined : new Error('the process exited before the run ended')));
    } catch {
      // the last report written stays
    }
  };
}
