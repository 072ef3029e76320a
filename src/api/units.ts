// Sizes as people type and read them: 4K, 1M, 512, 4KiB; 1.5 GiB.
import { InvalidArgumentError } from './errors.js';
import { defaults } from './defaults.js';

const UNITS: Record<string, number> = { '': 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };

/** Parses "4096", "4K", "4k", "4KiB", "1M", "2G" (binary units). */
export function parseSize(input: string | number, what = 'size'): number {
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input < 0) throw new InvalidArgumentError(`${what} must be a non-negative integer, got ${input}`);
    return input;
  }
  const m = /^\s*(\d+)\s*([kmgtp]?)(?:i?b)?\s*$/i.exec(input);
  if (!m) throw new InvalidArgumentError(`${what} '${input}' is not a size (examples: 4096, 4K, 1M)`);
  const value = Number(m[1]) * UNITS[m[2]!.toLowerCase()]!;
  if (!Number.isSafeInteger(value)) throw new InvalidArgumentError(`${what} '${input}' is too large`);
  return value;
}

/** Bounds of a size option; every CLI size option goes through parseSizeIn (one parser, one wording). */
export interface SizeBounds {
  /** Smallest accepted value (default 0). */
  min?: number;
  /** Largest accepted value (default: any safe integer). */
  max?: number;
  /** Only powers of two (block, object and write sizes). */
  powerOfTwo?: boolean;
}

/**
 * parseSize with bounds: "4K" for `--sector-size`, `--offset 1M`, ...
 * Throws InvalidArgumentError (a usage error in the CLIs) naming the option
 * and the accepted range.
 */
export function parseSizeIn(input: string | number, what: string, bounds: SizeBounds = {}): number {
  const v = parseSize(input, what);
  const min = bounds.min ?? 0;
  const max = bounds.max ?? Number.MAX_SAFE_INTEGER;
  const pow2 = !!bounds.powerOfTwo;
  const isPow2 = v > 0 && Number.isInteger(Math.log2(v));
  const range = max === Number.MAX_SAFE_INTEGER ? `at least ${exactBytes(min)}` : `${exactBytes(min)} to ${exactBytes(max)}`;
  if (pow2 && (!isPow2 || v < min || v > max)) throw new InvalidArgumentError(`${what} ${input} is not a power of two from ${exactBytes(min)} to ${exactBytes(max)}`);
  if (v < min || v > max) throw new InvalidArgumentError(`${what} ${input} is out of range (${range})`);
  return v;
}

/** A whole number option that is not a size (a count, pixels): digits only, at least `min`. */
export function parseCount(input: string | number, what: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const v = typeof input === 'number' ? input : /^\s*\d+\s*$/.test(input) ? Number(input) : NaN;
  const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `${min} to ${max}`;
  if (!Number.isSafeInteger(v)) throw new InvalidArgumentError(`${what} '${input}' is not a whole number (${range})`);
  if (v < min || v > max) throw new InvalidArgumentError(`${what} ${input} is out of range (${range})`);
  return v;
}

export const MIN_BLOCK_SIZE = 512;
export const MAX_BLOCK_SIZE = 1 << 20;

/** A zero-detection block size as given: a power of two from 512 B to 1 MiB, or undefined (the core's default). */
export function blockSizeOption(input: string | number | undefined): number | undefined {
  if (input === undefined) return undefined;
  return parseSizeIn(input, 'block size', { min: MIN_BLOCK_SIZE, max: MAX_BLOCK_SIZE, powerOfTwo: true });
}

/** A power of two from 512 B to 1 MiB; undefined: the default (`defaults.scan.blockSize`). */
export function parseBlockSize(input: string | number | undefined): number {
  return blockSizeOption(input) ?? defaults.scan.blockSize;
}

/** A size as a flag takes it: 4K, 2M, 256M, 512 (the largest binary unit that divides it exactly). */
export function formatSizeFlag(n: number): string {
  const units = ['', 'K', 'M', 'G', 'T', 'P'];
  let i = 0;
  while (i < units.length - 1 && n >= 1024 && n % 1024 === 0) {
    n /= 1024;
    i++;
  }
  return `${n}${units[i]}`;
}

/** A bound as typed: 512 B, 1 MiB, 16 MiB (the largest unit that divides it exactly). */
function exactBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (i < units.length - 1 && n >= 1024 && n % 1024 === 0) {
    n /= 1024;
    i++;
  }
  return `${n} ${units[i]}`;
}

/** 0 B, 512 B, 4 KiB, 1.5 GiB. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  let v = n;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  if (i === 0) return `${n} B`;
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${units[i]}`;
}

/** An options type whose size options (K) may also be given as text ("4K", "2M"); their docs stay those of T. */
export type SizesAsText<T, K extends keyof T> = Omit<T, K> & { [P in keyof Pick<T, K>]?: number | string };
