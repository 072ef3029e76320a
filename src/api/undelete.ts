// undelete(): the deleted files of a source's FAT12/16/32, exFAT and ext2/3/4
// volumes (the whole source or its MBR/GPT partitions), listed, or recovered by name
// into outDir/recovered/<original path> with their mtime and atime
// (native/core/operations/undelete.h says how names are made safe and how
// FAT's local times are read). The source is only ever read, and refused
// while a filesystem of it is mounted read-write (read-only mounts are fine).
//
// outDir follows carve's rules (src/output/carve-output.ts): every refusal
// comes before anything is created; it must be new or empty, and not on the
// source's storage unless `force`. report.json is written there atomically,
// kept current while files are written, and written on every way out:
// done, stopped (state stopped), failed (ENOSPC...: state failed, with the
// error and the files written so far) and process exit (undelete-run.ts).
import { closeSync, openSync, readdirSync, statSync } from 'node:fs';
import { createOutput, planOutput, removeCreated } from '../output/carve-output.js';
import { sameStorage } from '../host/same-storage.js';
import { refuseMountedReadWrite } from '../host/mounted-source.js';
import { runJob, type JobOptions } from '../seam/job.js';
import { native, type NativeUndeleteReport, type UndeletedFile } from '../seam/native.js';
import { AbortError, BlocksmithError, InvalidArgumentError } from './errors.js';
import { UndeleteRun } from './undelete-run.js';

export type { UndeletedFile, UndeleteVolume } from '../seam/native.js';

export interface UndeleteOptions extends JobOptions {
  /** Where recovered/ and report.json go: a new or empty directory (created). Required unless `list`. */
  outDir?: string;
  /** Only list the deleted files (names, sizes, times, status): nothing is written. */
  list?: boolean;
  /** Allow an output directory on the same device or filesystem as the source. */
  force?: boolean;
  /** Called for every deleted file and directory as it is done (written, or listed), in order. */
  onFile?: (file: UndeletedFile) => void;
}

export type { UndeleteReport } from './undelete-report.js';
import type { UndeleteReport } from './undelete-report.js';

/** Thrown (as AbortError) when the signal stopped the run; report.json was written. */
export interface UndeleteAbortError extends AbortError {
  report: UndeleteReport;
}

function checkSource(source: string): void {
  try {
    if (statSync(source).isDirectory())
      throw new BlocksmithError(`'${source}' is a directory; expected an image file or a block device`, { code: 'EISDIR', path: source, syscall: 'open' });
    closeSync(openSync(source, 'r'));
  } catch (err) {
    if (err instanceof BlocksmithError) throw err;
    const e = err as NodeJS.ErrnoException;
    const why = e.message.replace(/^[A-Z0-9_]+: /, '').replace(/, \w+ '.*'$/, '');
    throw new BlocksmithError(`cannot open '${source}': ${why}`, { code: e.code ?? 'EIO', errno: e.errno, syscall: e.syscall ?? 'open', path: source });
  }
}

/** Lists or recovers the deleted files of `source` (image file or block device). */
export async function undelete(source: string, options: UndeleteOptions = {}): Promise<UndeleteReport> {
  const list = !!options.list;
  if (!list && (typeof options.outDir !== 'string' || options.outDir === '')) throw new InvalidArgumentError('outDir is required (or list the deleted files with list: true)');
  checkSource(source);
  // A filesystem mounted read-write is not what is on disk: refused before anything is created.
  refuseMountedReadWrite(source);
  let outDir: string | undefined;
  let created: string[] = [];
  if (!list) {
    const plan = planOutput(options.outDir!);
    outDir = plan.dir;
    if (plan.missing.length === 0) {
      const there = readdirSync(outDir);
      if (there.length > 0)
        throw new BlocksmithError(`output directory '${outDir}' is not empty (it holds '${there.sort()[0]}'); recover into a new or empty directory`, {
          code: 'ENOTEMPTY',
          syscall: 'open',
          path: outDir,
        });
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
    created = createOutput(plan);
  }
  const run = new UndeleteRun(source, outDir, options.signal, options.onFile);
  let r: NativeUndeleteReport;
  try {
    run.begin();
    r = await runJob((onProgress) => native.undelete(source, list ? { list } : { outDir }, onProgress, run.onEvent), {
      signal: options.signal,
      onProgress: options.onProgress,
    });
  } catch (err) {
    // Refused before anything was written (no readable volume), or stopped
    // before the volumes were read: leave nothing behind.
    if (!run.wroteAny && (err instanceof AbortError || (err instanceof BlocksmithError && err.code === 'ERR_FS_UNSUPPORTED'))) {
      run.abandoned();
      removeCreated(created);
      throw err;
    }
    // Failed while writing (ENOSPC, EIO): the files so far stay, listed in report.json (state failed).
    throw run.failed(err);
  }
  const report = run.ended(r);
  if (r.cancelled) {
    const err = new AbortError(undefined, { cause: options.signal?.reason }) as UndeleteAbortError;
    err.report = report;
    throw err;
  }
  return report;
}
