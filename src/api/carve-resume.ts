// Continuing an interrupted carve: the report it left, read as untrusted
// input (it sits in a directory others may write to: paths are only ever our
// own names), and the removal of files a resumed run did not find again.
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, realpathSync, unlinkSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { CarveReport } from './carve-report.js';
import { checkByNameEntry, isByName } from './carve-undelete.js';
import type { CarvedFile } from './carved-file.js';
import { InvalidArgumentError } from './errors.js';

const SAFE = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const FILE_PATH = /^(partial\/|thumbnails\/)?f\d{14}\.jpg$/;

/**
 * The report an interrupted run left, checked: it must be OUTDIR/report.json
 * (the files it lists are there), of this source, and well-formed (it is read
 * from a directory others may write to: paths are only ever our own names).
 */
export function readPrevious(resumePath: string, source: string, outDir: string, outExists: boolean): CarveReport {
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
    if (f && typeof f === 'object' && isByName(f)) {
      const wrong = checkByNameEntry(f);
      if (wrong) throw bad(`files[${i}].${wrong}`);
      return;
    }
    if (!f || typeof f !== 'object' || !SAFE(f.offset) || !SAFE(f.length) || typeof f.status !== 'string') throw bad(`files[${i}]`);
    if (f.path !== undefined && (typeof f.path !== 'string' || !FILE_PATH.test(f.path))) throw bad(`files[${i}].path`);
    if (typeof f.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(f.sha256)) throw bad(`files[${i}].sha256`);
  });
  const u = previous.undelete;
  if (u !== undefined && (!u || typeof u !== 'object' || typeof u.finished !== 'boolean' || !Array.isArray(u.volumes))) throw bad('undelete');
  const rs = previous.resumeState;
  if (rs !== undefined) {
    if (!Array.isArray(rs.held) || !rs.held.every(SAFE)) throw bad('resumeState.held');
    if (!Array.isArray(rs.recovered) || !rs.recovered.every((r) => r && SAFE(r.offset) && SAFE(r.length))) throw bad('resumeState.recovered');
  }
  return previous;
}

const sha256Of = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** Deletes OUTDIR/f.path if it is a regular file (in a real directory) holding what the report says: a file of ours. */
export function removeOurFile(outDir: string, f: CarvedFile): void {
  if (!f.path || !FILE_PATH.test(f.path)) return;
  try {
    if (f.path.includes('/') && !lstatSync(join(outDir, dirname(f.path))).isDirectory()) return;
    const p = join(outDir, f.path);
    if (lstatSync(p).isFile() && sha256Of(p) === f.sha256) unlinkSync(p);
  } catch {
    // gone already
  }
}
