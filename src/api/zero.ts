// Zero detection on memory: synchronous, SIMD, kernel chosen once at load.
import { InvalidArgumentError, toBlocksmithError } from './errors.js';
import { native } from '../seam/native.js';

export type ZeroKernel = 'portable' | 'sse2' | 'avx2' | 'avx512';

export interface CpuFeatures {
  /** The kernel isZero and every scan use. */
  zeroKernel: ZeroKernel;
  /** Every kernel this CPU can run, slowest first. */
  availableZeroKernels: ZeroKernel[];
  arch: string;
  sse2: boolean;
  avx2: boolean;
  avx512f: boolean;
  avx512bw: boolean;
}

type Bytes = ArrayBufferView | ArrayBuffer;

function checkBytes(buffer: Bytes): void {
  if (!ArrayBuffer.isView(buffer) && !(buffer instanceof ArrayBuffer)) {
    throw new InvalidArgumentError('buffer must be a Buffer, TypedArray, DataView or ArrayBuffer');
  }
}

/** True when every byte of `buffer` is zero. `kernel` forces one SIMD path (tests, benchmarks). */
export function isZero(buffer: Bytes, options: { kernel?: ZeroKernel } = {}): boolean {
  checkBytes(buffer);
  try {
    return native.isZero(buffer, options.kernel);
  } catch (err) {
    throw toBlocksmithError(err);
  }
}

/**
 * Splits `buffer` into blocks of `blockSize` bytes (a power of two from 512 B
 * to 1 MiB; the last block may be short) and returns one entry per block:
 * 0 = all zero, 1 = holds data.
 */
export function classifyBlocks(buffer: Bytes, blockSize: number): Uint8Array {
  checkBytes(buffer);
  try {
    return native.classifyBlocks(buffer, blockSize);
  } catch (err) {
    throw toBlocksmithError(err);
  }
}

export const BLOCK_ZERO = 0;
export const BLOCK_DATA = 1;

export function cpuFeatures(): CpuFeatures {
  return native.cpuFeatures() as CpuFeatures;
}
