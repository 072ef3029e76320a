// carve(): recover JPEGs from an image file or a block device. The source is
// only ever opened read-only (by the addon's FileReader); files go to outDir,
// partial ones to outDir/partial, thumbnails to outDir/thumbnails, a
// report.json describes the run and index.html shows it (src/gallery.ts).
import { existsSync, realpathSync } from 'node:fs';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { AbortError, BlocksmithError, InvalidArgumentError } from './errors.js';
import { writeGallery } from './gallery.js';
import { runJob, type JobOptions } from './job.js';
import { native, type NativeCarveReport } from './native.js';
import { parseSize } from './units.js';
import { sourceSize } from './source-size.js';

export interface CarvedFile {
  /** Byte offset of the file's SOI in the source. */
  offset: number;
  length: number;
  status: 'complete' | 'reassembled' | 'partial' | 'thumbnail' | 'duplicate';
  /** Relative to outDir (absent for a duplicate, which is not written). */
  path?: string;
  sha256: string;
  duplicateOf?: string;
  width: number;
  height: number;
  components: number;
  progressive: boolean;
  /** 'decoded': entropy data decoded against the file's Huffman tables; 'structure': arithmetic/lossless, markers only. */
  validated: 'decoded' | 'structure';
  /** partial: about where the data went bad, and why. */
  brokeAt?: number;
  reason?: string;
  /** thumbnail: offset of the file it is embedded in. */
  parent?: number;
  /** reassembled: where the file's bytes lie in the source, in file order (their concatenation is the file). */
  fragments?: FileFragment[];
  make?: string;
  model?: string;
  date?: string;
}

export interface FileFragment {
  offset: number;
  length: number;
}

export interface UnreadableRange {
  offset: number;
  length: number;
}

/** The run's figures: the addon's (bytes scanned, candidates, complete / reassembled / partial / rejected counts,
 * unreadable ranges, where `resume` continues: `nextOffset`) plus where the files went and the rate. */
export interface CarveSummary extends NativeCarveReport {
  outDir: string;
  bytesPerSecond: number;
}

export interface CarveReport extends CarveSummary {
  tool: 'blocksmith carve';
  version: 1;
  startedAt: string;
  finishedAt: string;
  options: Record<string, unknown>;
  files: CarvedFile[];
}

export interface CarveOptions extends JobOptions {
  outDir: string;
  /** Candidates only at multiples of this (foremost -s 512 / -q); default 1: every byte. */
  sectorSize?: number;
  offset?: number | string;
  length?: number | string;
  minSize?: number | string;
  minWidth?: number;
  minHeight?: number;
  /** Longest JPEG followed before it is cut (default 256 MiB). */
  maxSize?: number | string;
  dedupe?: boolean;
  thumbnails?: boolean;
  /** Write partial files to outDir/partial (default true). */
  partials?: boolean;
  /**
   * Search for the continuation of a JPEG whose data stops decoding (default
   * true): the next fragment starts on a block boundary after the break and
   * decodes on from the decoder's state there, to EOI.
   */
  reassemble?: boolean;
  /** Filesystem block (cluster) size fragments are aligned to; default: from a FAT/ext superblock, else from the files' offsets. */
  blockSize?: number | string;
  /** Farthest a continuation may start after a fragment's end (default 32 MiB). */
  maxGap?: number | string;
  /** Decodes tried per broken file before it is left partial (default 50000). */
  maxAttempts?: number;
  /** Allow an output directory on the same device/filesystem as the source. */
  force?: boolean;
  seekHole?: boolean;
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

function devParts(dev: bigint): [bigint, bigint] {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return [major, minor];
}

/** The whole-disk name of a block device number (sda for sda1), or "M:m" when sysfs does not know it. */
function wholeDisk(dev: bigint): string {
  const [ma, mi] = devParts(dev);
  const sys = `/sys/dev/block/${ma}:${mi}`;
  try {
    const real = realpathSync(sys);
    return existsSync(join(real, 'partition')) ? basename(dirname(real)) : basename(real);
  } catch {
    return `${ma}:${mi}`;
  }
}

/**
 * Why writing to outDir could overwrite the source's sectors, or null: the
 * same filesystem as a file source; the same disk (or a partition of it) as a
 * device source; for a loop device, the filesystem holding its backing file.
 */
export async function sameStorage(source: string, outDir: string): Promise<string | null> {
  const s = await stat(source, { bigint: true });
  const o = await stat(outDir, { bigint: true });
  if (!s.isBlockDevice()) {
    return s.dev === o.dev ? `${outDir} is on the filesystem that holds ${source}` : null;
  }
  const srcDisk = wholeDisk(s.rdev);
  if (srcDisk === wholeDisk(o.dev)) return `${outDir} is on ${source} (${srcDisk})`;
  try {
    const backing = (await readFile(`/sys/block/${srcDisk}/loop/backing_file`, 'utf8')).trim();
    if (backing) {
      const b = await stat(backing, { bigint: true });
      if (b.dev === o.dev) return `${outDir} is on the filesystem that holds ${backing}, the backing file of ${source}`;
    }
  } catch {
    // not a loop device
  }
  return null;
}

async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, JSON.stringify(value, null, 2) + '\n');
  await rename(tmp, path);
}

function optSize(v: number | string | undefined, what: string): number | undefined {
  return v === undefined ? undefined : parseSize(v, what);
}

/** Carves JPEGs from `source` (image file or block device) into `options.outDir`. */
export async function carve(source: string, options: CarveOptions): Promise<CarveReport> {
  if (!options || typeof options.outDir !== 'string' || options.outDir === '') throw new InvalidArgumentError('outDir is required');
  const outDir = resolve(options.outDir);
  const sectorSize = options.sectorSize ?? 1;
  if (!Number.isSafeInteger(sectorSize) || sectorSize < 1 || sectorSize > 1 << 20)
    throw new InvalidArgumentError(`sector size must be an integer from 1 to 1M, got ${options.sectorSize}`);
  for (const [k, v] of [['minWidth', options.minWidth], ['minHeight', options.minHeight]] as const) {
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) throw new InvalidArgumentError(`${k} must be a non-negative integer`);
  }
  let offset = optSize(options.offset, 'offset') ?? 0;
  let length = optSize(options.length, 'length') ?? 0;
  const minSize = optSize(options.minSize, 'min size') ?? 0;
  const maxSize = optSize(options.maxSize, 'max size');
  const blockSize = optSize(options.blockSize, 'block size');
  const maxGap = optSize(options.maxGap, 'max gap');
  if (blockSize !== undefined && (blockSize < 1 || blockSize > 1 << 24))
    throw new InvalidArgumentError(`block size must be from 1 to 16M, got ${options.blockSize}`);
  if (options.maxAttempts !== undefined && (!Number.isSafeInteger(options.maxAttempts) || options.maxAttempts < 0))
    throw new InvalidArgumentError('maxAttempts must be a non-negative integer');
  try {
    const st = await stat(source);
    if (st.isDirectory()) throw new BlocksmithError(`'${source}' is a directory; expected an image file or a block device`, { code: 'EISDIR', path: source, syscall: 'open' });
  } catch (err) {
    if (err instanceof BlocksmithError) throw err;
    const e = err as NodeJS.ErrnoException;
    throw new BlocksmithError(`cannot open '${source}': ${e.message}`, { code: e.code ?? 'EIO', errno: e.errno, syscall: 'stat', path: source });
  }
  if (options.length !== undefined && length === 0) throw new InvalidArgumentError('length must be at least 1 byte (omit it to scan to the end)');
  if (options.offset !== undefined && offset > 0) {
    // Past the end nothing would be scanned: say so rather than "carved 0 files".
    const size = await sourceSize(source).catch(() => undefined);
    if (size !== undefined && offset >= size)
      throw new BlocksmithError(`offset ${offset} is at or past the end of '${source}' (${size} bytes)`, { code: 'EINVAL', path: source });
  }
  let previous: CarveReport | undefined;
  if (options.resume !== undefined) {
    try {
      previous = JSON.parse(await readFile(options.resume, 'utf8')) as CarveReport;
    } catch (err) {
      throw new InvalidArgumentError(`cannot read the report to resume from (${options.resume}): ${(err as Error).message}`);
    }
    if (previous.tool !== 'blocksmith carve' || resolve(previous.source) !== resolve(source))
      throw new InvalidArgumentError(`${options.resume} is not a carve report of ${source}`);
    if (options.offset === undefined) offset = previous.nextOffset;
    if (options.length === undefined && previous.end > offset) length = previous.end - offset;
  }
  await mkdir(outDir, { recursive: true });
  if (!options.force) {
    const why = await sameStorage(source, outDir);
    if (why)
      throw new BlocksmithError(`refusing to write recovered files where they could overwrite the source: ${why} (use --force to override)`, {
        code: 'ESAMEDEV',
        path: outDir,
      });
  }
  const files: CarvedFile[] = previous ? [...previous.files] : [];
  const startedAt = new Date().toISOString();
  const nativeOpts = {
    outDir,
    offset,
    length,
    sectorSize,
    minSize,
    minWidth: options.minWidth ?? 0,
    minHeight: options.minHeight ?? 0,
    ...(maxSize !== undefined ? { maxSize } : {}),
    dedupe: !!options.dedupe,
    thumbnails: !!options.thumbnails,
    partials: options.partials ?? true,
    seekHole: options.seekHole ?? true,
    reassemble: options.reassemble ?? true,
    ...(blockSize !== undefined ? { blockSize } : {}),
    ...(maxGap !== undefined ? { maxGap } : {}),
    ...(options.maxAttempts !== undefined ? { maxAttempts: options.maxAttempts } : {}),
  };
  // A resumed run rescans from the first unfinished part: a file it finds
  // again replaces its earlier entry instead of being listed twice.
  const index = new Map(files.map((f, i) => [`${f.status}:${f.offset}`, i]));
  const onFile = (f: CarvedFile) => {
    const at = index.get(`${f.status}:${f.offset}`);
    if (at !== undefined) files[at] = f;
    else files.push(f);
    options.onFile?.(f);
  };
  // The job resolves (with cancelled: true) when stopped, so that the
  // report is written; abort is then reported as AbortError.
  const r = await runJob((onProgress) => native.carve(source, nativeOpts, onProgress, onFile), { signal: options.signal, onProgress: options.onProgress });
  type Counter = 'bytesScanned' | 'candidates' | 'complete' | 'reassembled' | 'partial' | 'rejected' | 'filtered' | 'duplicates' | 'thumbnails' | 'bytesWritten' | 'seconds';
  const add = (k: Counter) => r[k] + (previous?.[k] ?? 0);
  const report: CarveReport = {
    tool: 'blocksmith carve',
    version: 1,
    source: r.source,
    outDir,
    startedAt: previous?.startedAt ?? startedAt,
    finishedAt: new Date().toISOString(),
    options: { ...nativeOpts, outDir: undefined, ...(options.resume ? { resumedFrom: offset } : {}) },
    size: r.size,
    start: previous ? previous.start : r.start,
    end: r.end,
    nextOffset: r.nextOffset,
    bytesScanned: add('bytesScanned'),
    candidates: add('candidates'),
    complete: add('complete'),
    reassembled: add('reassembled'),
    partial: add('partial'),
    rejected: add('rejected'),
    filtered: add('filtered'),
    duplicates: add('duplicates'),
    thumbnails: add('thumbnails'),
    bytesWritten: add('bytesWritten'),
    unreadable: [...(previous?.unreadable ?? []), ...r.unreadable],
    seconds: add('seconds'),
    bytesPerSecond: r.seconds > 0 ? Math.round((r.nextOffset - r.start) / r.seconds) : 0,
    cancelled: r.cancelled,
    files,
  };
  await writeJsonAtomic(join(outDir, 'report.json'), report);
  if (options.gallery ?? true) await writeGallery(outDir, report);
  if (r.cancelled) {
    const err = new AbortError(undefined, { cause: options.signal?.reason }) as CarveAbortError;
    err.report = report;
    throw err;
  }
  return report;
}
