// Image formats: raw and qcow2. The format is detected by magic in the addon
// (native/core/readers/image_open.cc), where containers we do not read (VMDK, VHD,
// ...) are refused; `format` forces it. qcow2 backing files are followed
// under a policy (allowBacking).
import { InvalidArgumentError } from './errors.js';

export type ImageFormat = 'raw' | 'qcow2';

/** What the image file is, as opened: the detected (or forced) format and, for qcow2, its header facts. */
export interface ImageDescription {
  format: ImageFormat;
  /** Bytes of the image file itself (for qcow2 not the virtual size). */
  fileSize: number;
  /** qcow2 only. */
  version?: number;
  clusterSize?: number;
  compression?: 'zlib' | 'zstd';
  extendedL2?: boolean;
  /** Backing files, nearest first. */
  backingChain?: BackingLink[];
}

/** One backing file of a qcow2 image. */
export interface BackingLink {
  /** The name as written in the image that names it (relative to that image's directory, or absolute). */
  name: string;
  /** The file that was opened: absolute, with symlinks and '..' resolved. */
  path: string;
  format: ImageFormat;
}

/**
 * Which qcow2 backing files may be followed. By default (undefined/false) only regular files inside the top
 * image's directory tree (after symlinks and '..'); anything else is refused with code ERR_BACKING_REFUSED.
 * An array of directories also allows regular files under them; true follows every backing file, devices too.
 */
export type AllowBacking = boolean | string[];

/** Validates an allowBacking option. */
export function parseAllowBacking(value: AllowBacking | undefined): AllowBacking | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'boolean') return value;
  if (Array.isArray(value) && value.every((d) => typeof d === 'string' && d !== '')) return [...value];
  throw new InvalidArgumentError('allowBacking must be true, false or an array of directory paths');
}

/** Validates a --format value; undefined means "detect". */
export function parseImageFormat(value: string | undefined): ImageFormat | undefined {
  if (value === undefined || value === 'auto') return undefined;
  if (value === 'raw' || value === 'qcow2') return value;
  throw new InvalidArgumentError(`format '${value}' is not supported (raw, qcow2)`);
}
