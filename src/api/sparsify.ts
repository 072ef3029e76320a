// Sparsify in place (punch holes over zero blocks) and sparse copies: both
// run the one pipeline (reader -> classifier -> sink) in the addon.
import { runJob, type JobOptions } from '../seam/job.js';
import {
  byteTotals,
  native,
  type ByteTotals,
  type NativeFsInspection,
  type NativeSparsifyOptions,
  type NativeSparsifyReport,
  type NativeVolumeReport,
} from '../seam/native.js';
import { blockSizeOption, type SizesAsText } from './units.js';
import { parseAllowBacking, parseImageFormat, type BackingLink, type ImageFormat } from './image-format.js';

/** Options of both sparsify (in place) and sparse copies: NativeSparsifyOptions but those of one kind only. */
export interface SparsifyOptions
  extends JobOptions,
    SizesAsText<Omit<NativeSparsifyOptions, 'force' | 'overwrite' | 'allowBacking' | 'chunkSize'>, 'blockSize'> {}

/** sparsify `fs: true`: one partition (number 0: a filesystem on the whole image) and what was done there. */
export type VolumeReport = NativeVolumeReport;

export interface InPlaceOptions extends SparsifyOptions, Pick<NativeSparsifyOptions, 'force'> {}

export interface CopyOptions extends SparsifyOptions, Pick<NativeSparsifyOptions, 'force' | 'overwrite' | 'allowBacking'> {}

export interface SparsifyReport extends ByteTotals {
  source: string;
  /** The copy's path (copies only). */
  target?: string;
  kind: 'file' | 'block-device';
  /** Logical size in bytes; equal for source and copy. */
  size: number;
  /** Allocated bytes of the source before the run. */
  allocatedBefore: number;
  /** In place: allocated bytes of the image after; copy: of the copy. */
  allocatedAfter: number;
  /**
   * allocatedBefore - allocatedAfter (never negative). A dry run in place: the allocated bytes its punches would
   * cover (zero blocks and, with `fs`, free blocks, each run aligned to the file's block size as the real run does).
   */
  reclaimedBytes: number;
  /** In place: fallocate(PUNCH_HOLE) calls made, and bytes they covered. */
  holesPunched: number;
  punchedBytes: number;
  seconds: number;
  /** Bytes of the source processed per second. */
  bytesPerSecond: number;
  dryRun: boolean;
  /** Copies: the source's format. */
  format?: ImageFormat;
  /** Copies: the source's backing files (qcow2), nearest first; empty when it has none. */
  backingChain?: BackingLink[];
  /** `fs: true` only: bytes free in a filesystem (not read; punched in place, holes in a copy). */
  freeBytes?: number;
  /** `fs: true` only: the partition table found. */
  partitionScheme?: 'none' | 'mbr' | 'gpt';
  /** `fs: true` only: the GPT's primary header or entries were corrupt and the backup was used. */
  gptBackupUsed?: boolean;
  /** `fs: true` only: per partition, the filesystem found and what was done. */
  volumes?: VolumeReport[];
  /**
   * One line each: what `force` overrode, or (dry runs) that the image is in use and the figures can change.
   * Empty when there was nothing to say.
   */
  warnings: string[];
}

function toReport(r: NativeSparsifyReport): SparsifyReport {
  const report: SparsifyReport = {
    source: r.source,
    kind: r.kind,
    size: r.size,
    allocatedBefore: r.allocatedBefore,
    allocatedAfter: r.allocatedAfter,
    reclaimedBytes: Math.max(0, r.allocatedBefore - r.allocatedAfter),
    ...byteTotals(r),
    holesPunched: r.punchCalls,
    punchedBytes: r.punchedBytes,
    seconds: r.seconds,
    bytesPerSecond: r.seconds > 0 ? Math.round(r.size / r.seconds) : 0,
    dryRun: r.dryRun,
    warnings: r.warnings ?? [],
  };
  if (r.target !== undefined) report.target = r.target;
  if (r.format !== undefined) report.format = r.format;
  if (r.backingChain !== undefined) report.backingChain = r.backingChain;
  if (r.volumes !== undefined) {
    report.freeBytes = r.freeBytes ?? 0;
    report.partitionScheme = r.partitionScheme ?? 'none';
    report.gptBackupUsed = !!r.gptBackupUsed;
    report.volumes = r.volumes;
  }
  // A dry run changes nothing: what its punches would free is what the real run frees.
  if (r.dryRun && r.target === undefined) {
    report.reclaimedBytes = Math.min(r.reclaimableBytes ?? 0, r.allocatedBefore);
  }
  return report;
}

/** Punches holes over every run of zero blocks of a file or block device, in place. Content is unchanged. */
export async function sparsify(path: string, options: InPlaceOptions = {}): Promise<SparsifyReport> {
  const blockSize = blockSizeOption(options.blockSize);
  const r = await runJob(
    (onProgress) =>
      native.sparsify(
        path,
        { blockSize, seekHole: options.seekHole, dryRun: options.dryRun, force: options.force, format: parseImageFormat(options.format), fs: options.fs },
        onProgress,
      ),
    options,
  );
  return toReport(r);
}

/** Writes `target` as a sparse file with the same content as `source` (a file or block device). */
export async function sparseCopy(source: string, target: string, options: CopyOptions = {}): Promise<SparsifyReport> {
  const blockSize = blockSizeOption(options.blockSize);
  const allowBacking = parseAllowBacking(options.allowBacking);
  const r = await runJob(
    (onProgress) =>
      native.sparseCopy(
        source,
        target,
        { blockSize, seekHole: options.seekHole, dryRun: options.dryRun, overwrite: options.overwrite, force: options.force, format: parseImageFormat(options.format), fs: options.fs, allowBacking },
        onProgress,
      ),
    options,
  );
  return toReport(r);
}

/** What `sparsify(path, { fs: true })` would use: the partition table, and per partition the ext filesystem and its free bytes. */
export type FsInspection = NativeFsInspection;

/**
 * Reads the partition table (MBR with logical partitions, or GPT) and the ext2/3/4 filesystems of an image or
 * device, read only. What `sparsify --fs` would refuse is listed, not thrown: a volume with action 'refused' and
 * its `error` (code ERR_FS_CORRUPT / ERR_FS_UNSUPPORTED / ERR_FS_DIRTY, or EBUSY when it is mounted or held), or,
 * for a partition table that cannot be trusted, `error` on the result and no volumes.
 */
export async function inspectFilesystems(path: string, options: JobOptions = {}): Promise<FsInspection> {
  return runJob((onProgress) => native.inspectFilesystems(path, onProgress), options);
}
