// Sizes as people type and read them: 4K, 1M, 512, 4KiB; 1.5 GiB.
import { InvalidArgumentError } from './errors.js';

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

export const MIN_BLOCK_SIZE = 512;
export const MAX_BLOCK_SIZE = 1 << 20;
export const DEFAULT_BLOCK_SIZE = 4096;

/** A power of two from 512 B to 1 MiB. */
export function parseBlockSize(input: string | number | undefined): number {
  if (input === undefined) return DEFAULT_BLOCK_SIZE;
  const bs = parseSize(input, 'block size');
  if (bs < MIN_BLOCK_SIZE || bs > MAX_BLOCK_SIZE || (bs & (bs - 1)) !== 0) {
    throw new InvalidArgumentError(`block size ${input} is not a power of two from 512 B to 1 MiB`);
  }
  return bs;
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
