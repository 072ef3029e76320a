// Sparsify in place (punch holes over zero blocks) and sparse copies: both
// run the one pipeline (reader -> classifier -> sink) in the addon.
import { runJob, type JobOptions } from '../seam/job.js';
import { native, type NativeFsInspection, type NativeSparsifyReport, type NativeVolumeReport } from '../seam/native.js';
import { parseBlockSize } from './units.js';
import { parseAllowBacking, parseImageFormat, type AllowBacking, type BackingLink, type ImageFormat } from './image-format.js';

export interface SparsifyOptions extends JobOptions {
  /** Zero-detection block size: a power of two from 512 B to 1 MiB. Default 4 KiB. */
  blockSize?: number | string;
  /** Skip holes with SEEK_DATA/SEEK_HOLE (default true); false reads every byte. */
  seekHole?: boolean;
  /** Report what would be reclaimed; change nothing. */
  dryRun?: boolean;
  /**
   * Source format; detected by magic when absent. Copies read qcow2 images through their tables;
   * in place, a qcow2 image is refused (unless 'raw' is forced: then its file is treated as raw bytes).
   */
  format?: ImageFormat;
  /**
   * Also reclaim the free blocks of the ext2/3/4 filesystems inside the image (whole image or MBR/GPT
   * partitions), read from their allocation bitmaps: free blocks are not read and become holes (their
   * old content is dropped; files are unchanged). Refuses dirty, mounted or not understood filesystems, and
   * those whose bitmaps call free a block that an inode or the filesystem's metadata uses.
   */
  fs?: boolean;
}

/** sparsify `fs: true`: one partition (number 0: a filesystem on the whole image) and what was done there. */
export type VolumeReport = NativeVolumeReport;

export interface InPlaceOptions extends SparsifyOptions {
  /**
   * Proceed although the image is in use: QEMU image locks, another process with it open, a loop device, a mount or
   * holder of a device, or no lease possible (not the file's owner). The report's `warnings` say what was overridden.
   * Never overrides another in-place run on the same image.
   */
  force?: boolean;
}

export interface CopyOptions extends SparsifyOptions {
  /** Replace an existing target. */
  overwrite?: boolean;
  /** qcow2 sources: backing files to follow beyond the default (regular files inside the image's directory tree). */
  allowBacking?: AllowBacking;
  /**
   * Copy a source that is in use anyway (a VM holding QEMU's write lock, another process writing it, a read-write
   * loop device or mount); refused by default, as the copy would be inconsistent. Listed in the report's `warnings`.
   */
  force?: boolean;
}

export interface SparsifyReport {
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
  holeBytes: number;
  zeroBytes: number;
  dataBytes: number;
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
    holeBytes: r.holeBytes,
    zeroBytes: r.zeroBytes,
    dataBytes: r.dataBytes,
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
  const blockSize = parseBlockSize(options.blockSize);
  const r = await runJob(
    (onProgress) =>
      native.sparsify(
        path,
        { blockSize, seekHole: options.seekHole ?? true, dryRun: !!options.dryRun, force: !!options.force, format: parseImageFormat(options.format), fs: !!options.fs },
        onProgress,
      ),
    options,
  );
  return toReport(r);
}

/** Writes `target` as a sparse file with the same content as `source` (a file or block device). */
export async function sparseCopy(source: string, target: string, options: CopyOptions = {}): Promise<SparsifyReport> {
  const blockSize = parseBlockSize(options.blockSize);
  const allowBacking = parseAllowBacking(options.allowBacking);
  const r = await runJob(
    (onProgress) =>
      native.sparseCopy(
        source,
        target,
        { blockSize, seekHole: options.seekHole ?? true, dryRun: !!options.dryRun, overwrite: !!options.overwrite, force: !!options.force, format: parseImageFormat(options.format), fs: !!options.fs, allowBacking },
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
