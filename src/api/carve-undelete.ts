// carve --undelete: recovery by name first, then carving (issue 16). The
// source's FAT/exFAT/ext2/3/4 volumes are read and their deleted files written to
// OUTDIR/recovered/<original path> by the writer `blocksmith undelete` uses
// (the addon's undelete); their entries join report.json's files with method
// 'metadata', and the bytes of every file recovered whole are handed to the
// carver as `exclude`, so that scope free does not carve them a second time
// (scopes all and allocated scan what they always scan: exclusions are only
// a part of scope free).
//
// A resumed carve does not redo this part when its report says it finished;
// when it did not (the run was stopped while recovering by name), what that
// attempt wrote is removed (only files the report lists, with the bytes it
// says) and it is done again.
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, rmdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { runJob, type JobOptions } from '../seam/job.js';
import { native, type UndeletedFile, type UndeleteVolume } from '../seam/native.js';
import type { CarveReportFile, FileFragment, RecoveredByName } from './carved-file.js';
import { AbortError, BlocksmithError, InvalidArgumentError } from './errors.js';

/** The undelete part of a carve report (report.undelete). */
export interface CarveUndeletePart {
  /** False until every deleted entry was handled: a resumed run does this part again (see the file comment). */
  finished: boolean;
  /** Why nothing was recovered by name (no FAT, exFAT or ext filesystem could be read): the carve went on alone. */
  reason?: string;
  scheme?: 'none' | 'mbr' | 'gpt';
  tableProblem?: string;
  volumes: UndeleteVolume[];
  recovered: number;
  /** JPEGs completed by the fragment search in free clusters (absent in reports written before it). */
  reassembled?: number;
  partial: number;
  overwritten: number;
  empty: number;
  unreadable: number;
  directories: number;
  bytesWritten: number;
  seconds: number;
  /** Bytes of the files recovered whole: left out of the carve in scope free. */
  excludedBytes: number;
}

export const notStarted = (): CarveUndeletePart => ({
  finished: false,
  volumes: [],
  recovered: 0,
  partial: 0,
  overwritten: 0,
  empty: 0,
  unreadable: 0,
  directories: 0,
  bytesWritten: 0,
  seconds: 0,
  excludedBytes: 0,
});

export const isByName = (f: CarveReportFile): f is RecoveredByName => f.method === 'metadata';

/** A deleted file's entry among the carve's files (directories have none: report.undelete counts them). */
function entryOf(f: UndeletedFile): RecoveredByName | undefined {
  if (f.directory || f.status === 'recoverable') return undefined;
  const slash = f.path.lastIndexOf('/');
  const e: RecoveredByName = {
    method: 'metadata',
    status: f.status,
    name: f.path.slice(slash + 1),
    originalPath: '/' + f.path,
    volume: f.volume,
    ...(f.writtenAs !== undefined ? { path: f.writtenAs } : {}),
    offset: f.extents[0]?.offset ?? 0,
    length: f.size,
    ...(f.sha256 !== undefined ? { sha256: f.sha256 } : {}),
    times: f.times,
    localTime: f.localTime,
    rule: f.rule,
    firstCluster: f.firstCluster,
    ...(f.inode !== undefined ? { inode: f.inode } : {}),
    ...(f.foundIn !== undefined ? { foundIn: f.foundIn } : {}),
    ...(f.jpeg !== undefined ? { jpeg: f.jpeg } : {}),
    ...(f.reason !== undefined ? { reason: f.reason } : {}),
    ...(f.overwrittenBytes !== undefined ? { overwrittenBytes: f.overwrittenBytes } : {}),
    ...(f.validSize !== undefined ? { validSize: f.validSize } : {}),
    extents: f.extents,
    ...(f.fragments !== undefined ? { fragments: f.fragments } : {}),
  };
  return e;
}

/** The byte ranges of the files recovered whole (not the partial ones: the carver may still reassemble those; a reassembled one's fragments). */
export function excludeOf(files: readonly RecoveredByName[]): FileFragment[] {
  return files
    .filter((f) => f.status === 'recovered' || f.status === 'reassembled')
    .flatMap((f) => (f.status === 'reassembled' ? (f.fragments ?? []) : f.extents).map((x) => ({ offset: x.offset, length: x.length })));
}

export interface MetadataPhase {
  part: CarveUndeletePart;
  files: RecoveredByName[];
  cancelled: boolean;
}

/** Recovers by name into outDir/recovered; a source without a readable FAT/exFAT/ext volume is not an error here (part.reason). */
export async function recoverByName(source: string, outDir: string, job: JobOptions): Promise<MetadataPhase> {
  let r;
  try {
    r = await runJob((onProgress) => native.undelete(source, { outDir }, onProgress), job);
  } catch (err) {
    if (err instanceof AbortError) return { part: notStarted(), files: [], cancelled: true };
    if (err instanceof BlocksmithError && err.code === 'ERR_FS_UNSUPPORTED') {
      const prefix = `'${source}': `;
      const reason = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
      return { part: { ...notStarted(), finished: true, reason }, files: [], cancelled: false };
    }
    throw err;
  }
  const files = r.files.map(entryOf).filter((e): e is RecoveredByName => e !== undefined);
  const part: CarveUndeletePart = {
    finished: !r.cancelled,
    scheme: r.scheme,
    ...(r.tableProblem !== undefined ? { tableProblem: r.tableProblem } : {}),
    volumes: r.volumes,
    recovered: r.recovered,
    reassembled: r.reassembled,
    partial: r.partial,
    overwritten: r.overwritten,
    empty: r.empty,
    unreadable: r.unreadable,
    directories: r.directories,
    bytesWritten: r.bytesWritten,
    seconds: r.seconds,
    excludedBytes: excludeOf(files).reduce((a, x) => a + x.length, 0),
  };
  return { part, files, cancelled: r.cancelled };
}

const SAFE = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const STATUSES = new Set(['recovered', 'reassembled', 'partial', 'overwritten', 'empty', 'unreadable']);

/** An entry read back from a report (untrusted): what a resumed run relies on is checked; '' when fine, else what is wrong. */
export function checkByNameEntry(f: RecoveredByName): string {
  if (!STATUSES.has(f.status)) return 'status';
  if (!SAFE(f.offset) || !SAFE(f.length)) return 'offset';
  if (f.path !== undefined && (typeof f.path !== 'string' || !f.path.startsWith('recovered/') || f.path.split('/').some((c) => c === '' || c === '.' || c === '..')))
    return 'path';
  if (f.sha256 !== undefined && (typeof f.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(f.sha256))) return 'sha256';
  if (!Array.isArray(f.extents) || !f.extents.every((x) => x && SAFE(x.offset) && SAFE(x.length))) return 'extents';
  if (f.fragments !== undefined && (!Array.isArray(f.fragments) || !f.fragments.every((x) => x && SAFE(x.offset) && SAFE(x.length)))) return 'fragments';
  return '';
}

/** What an unfinished earlier attempt left in outDir/recovered, to remove before doing it again (post-order). */
export interface RedoPlan {
  files: string[];
  dirs: string[];
}

/**
 * The earlier attempt's files: outDir/recovered is walked without following
 * anything, and every entry must be a directory or a regular file the report
 * lists with its sha256; anything else stops the resume before it changes
 * anything.
 */
export function planRedo(outDir: string, listed: readonly RecoveredByName[]): RedoPlan {
  const sha = new Map(listed.filter((f) => f.path && f.sha256).map((f) => [f.path!, f.sha256!]));
  const plan: RedoPlan = { files: [], dirs: [] };
  const refuse = (what: string) =>
    new InvalidArgumentError(
      `--resume: the interrupted run stopped while recovering by name, and ${join(outDir, 'recovered')} holds ${what}; move it away to resume (the recovery by name is done again)`,
    );
  const walk = (rel: string) => {
    for (const name of readdirSync(join(outDir, rel)).sort()) {
      const r = `${rel}/${name}`;
      const st = lstatSync(join(outDir, r));
      if (st.isDirectory()) walk(r);
      else if (st.isFile() && sha.get(r) === createHash('sha256').update(readFileSync(join(outDir, r))).digest('hex')) plan.files.push(r);
      else throw refuse(`'${r}', which its report does not list`);
    }
    plan.dirs.push(rel);
  };
  let st;
  try {
    st = lstatSync(join(outDir, 'recovered'));
  } catch {
    return plan;
  }
  if (!st.isDirectory()) throw refuse('something that is not a directory');
  walk('recovered');
  return plan;
}

export function removeEarlierAttempt(outDir: string, plan: RedoPlan): void {
  for (const f of plan.files) unlinkSync(join(outDir, f));
  for (const d of plan.dirs) rmdirSync(join(outDir, d));
}
