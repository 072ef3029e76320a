// Extent maps and summaries of files and block devices: what holds data,
// what is allocated but all zero, what is a hole.
import { runJob, type JobOptions } from '../seam/job.js';
import { byteTotals, native, type ByteTotals, type NativeScanOptions, type NativeScanResult } from '../seam/native.js';
import { blockSizeOption, type SizesAsText } from './units.js';
import { parseAllowBacking, parseImageFormat, type ImageDescription, type ImageFormat } from './image-format.js';

export type ExtentKind = 'hole' | 'zero' | 'data';

export interface Extent {
  offset: number;
  length: number;
  kind: ExtentKind;
}

/** The scan's options (NativeScanOptions) but the extent list, which `info` and `mapExtents` decide. */
export interface ScanOptions extends JobOptions, SizesAsText<Omit<NativeScanOptions, 'extents' | 'chunkSize'>, 'blockSize'> {}

export interface ImageInfo extends ByteTotals {
  path: string;
  kind: 'file' | 'block-device';
  /** The detected (or forced) format: 'raw' or 'qcow2' (same as image.format). */
  format: ImageFormat;
  /** The image file: format, file size; for qcow2 the header facts and backing chain. */
  image: ImageDescription;
  /** Logical size in bytes (what the guest sees). */
  virtualSize: number;
  /** Bytes allocated on disk (st_blocks * 512 for files; the size for devices). */
  allocatedSize: number;
  blockSize: number;
  extentCount: number;
  logicalSectorSize?: number;
  physicalSectorSize?: number;
}

export interface ExtentMap extends ImageInfo {
  extents: Extent[];
}

const KINDS: ExtentKind[] = ['hole', 'zero', 'data'];

function toInfo(path: string, r: NativeScanResult): ImageInfo {
  const info: ImageInfo = {
    path,
    kind: r.kind,
    format: r.image.format,
    image: r.image,
    virtualSize: r.size,
    allocatedSize: r.allocated,
    ...byteTotals(r),
    blockSize: r.blockSize,
    extentCount: r.extentCount,
  };
  if (r.logicalSectorSize !== undefined) info.logicalSectorSize = r.logicalSectorSize;
  if (r.physicalSectorSize !== undefined) info.physicalSectorSize = r.physicalSectorSize;
  return info;
}

function toExtents(flat: Float64Array): Extent[] {
  const extents: Extent[] = new Array(flat.length / 3);
  for (let i = 0; i < extents.length; i++) {
    extents[i] = { offset: flat[i * 3]!, length: flat[i * 3 + 1]!, kind: KINDS[flat[i * 3 + 2]!]! };
  }
  return extents;
}

function scan(
  path: string,
  options: ScanOptions,
  keepExtents: boolean,
  onExtents?: (flat: Float64Array, virtualSize: number) => Promise<unknown> | void,
): Promise<NativeScanResult> {
  const blockSize = blockSizeOption(options.blockSize);
  const format = parseImageFormat(options.format);
  const allowBacking = parseAllowBacking(options.allowBacking);
  return runJob(
    (onProgress) =>
      native.scanExtents(path, { blockSize, seekHole: options.seekHole, extents: keepExtents, format, allowBacking }, onProgress, onExtents),
    options,
  );
}

/** Summary of a file or block device, like `qemu-img info` plus zero detection by content. */
export async function info(path: string, options: ScanOptions = {}): Promise<ImageInfo> {
  return toInfo(path, await scan(path, options, false));
}

/** The extent list (hole / zero / data) of a file or block device, in offset order. */
export async function mapExtents(path: string, options: ScanOptions = {}): Promise<ExtentMap> {
  const r = await scan(path, options, true);
  return { ...toInfo(path, r), extents: toExtents(r.extents) };
}

/**
 * mapExtents without keeping the list: the extents go to `onExtents` in
 * batches, in offset order, as the scan finds them (each batch with the
 * image's virtual size), and memory stays flat however many there are. When
 * `onExtents` returns a promise (its output is full), the next batch waits
 * until it settles. Resolves with the summary once the
 * last batch was delivered; a failed or aborted scan rejects after the
 * batches found until then, and an error thrown by `onExtents` stops the
 * scan and rejects with that error.
 */
export async function forEachExtent(
  path: string,
  onExtents: (extents: Extent[], virtualSize: number) => Promise<unknown> | void,
  options: ScanOptions = {},
): Promise<ImageInfo> {
  // A throwing callback stops the scan, and its error is what rejects.
  // (AbortSignal.any is Node 20.3+; engines says 20.)
  const stop = new AbortController();
  const outer = options.signal;
  const forward = () => stop.abort(outer?.reason);
  if (outer?.aborted) forward();
  else outer?.addEventListener('abort', forward, { once: true });
  let failure: { error: unknown } | undefined;
  const fail = (error: unknown) => {
    if (failure) return;
    failure = { error };
    stop.abort();
  };
  const deliver = (flat: Float64Array, virtualSize: number): Promise<unknown> | void => {
    if (failure) return;
    try {
      const r = onExtents(toExtents(flat), virtualSize);
      if (r instanceof Promise) return r.catch(fail);
    } catch (error) {
      fail(error);
    }
  };
  try {
    return toInfo(path, await scan(path, { ...options, signal: stop.signal }, false, deliver));
  } catch (err) {
    if (failure) throw failure.error;
    throw err;
  } finally {
    outer?.removeEventListener('abort', forward);
  }
}
