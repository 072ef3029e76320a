// Image formats: raw and qcow2. The format is detected by magic in the addon
// (native/core/image_open.cc); `format` forces it.
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
  /** Backing files, nearest first, resolved relative to the image's directory. */
  backingChain?: { path: string; format: ImageFormat }[];
}

/** Validates a --format value; undefined means "detect". */
export function parseImageFormat(value: string | undefined): ImageFormat | undefined {
  if (value === undefined || value === 'auto') return undefined;
  if (value === 'raw' || value === 'qcow2') return value;
  throw new InvalidArgumentError(`format '${value}' is not supported (raw, qcow2)`);
}
