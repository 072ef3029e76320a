import { describe, expect, it } from 'vitest';
import { classifyBlocks, cpuFeatures, InvalidArgumentError, isZero, type ZeroKernel } from '../src/index.js';

const kernels = cpuFeatures().availableZeroKernels;

/** A small deterministic PRNG (xorshift32) so failures reproduce. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** The reference answer, computed in JS. */
function refIsZero(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

function refClassify(bytes: Uint8Array, bs: number): number[] {
  const out: number[] = [];
  for (let off = 0; off < bytes.length; off += bs) out.push(refIsZero(bytes.subarray(off, Math.min(off + bs, bytes.length))) ? 0 : 1);
  return out;
}

describe('cpuFeatures', () => {
  it('lists portable first and uses the widest kernel short of avx512 as zeroKernel', () => {
    const f = cpuFeatures();
    expect(f.availableZeroKernels[0]).toBe('portable');
    const below512 = f.availableZeroKernels.filter((k) => k !== 'avx512');
    if (!process.env.BLOCKSMITH_ZERO_KERNEL) expect(f.zeroKernel).toBe(below512[below512.length - 1]);
    for (const k of f.availableZeroKernels) expect(['portable', 'sse2', 'avx2', 'avx512']).toContain(k);
    if (f.arch === 'x86_64') {
      expect(f.availableZeroKernels.includes('sse2')).toBe(f.sse2);
      expect(f.availableZeroKernels.includes('avx2')).toBe(f.avx2);
      expect(f.availableZeroKernels.includes('avx512')).toBe(f.avx512f);
    }
  });
});

describe('isZero', () => {
  it('is true for an all-zero buffer and false when any one byte is set, with every kernel', () => {
    const buf = Buffer.alloc(8192 + 3);
    for (const kernel of kernels) {
      expect(isZero(buf, { kernel })).toBe(true);
      for (const pos of [0, 1, 63, 64, 4095, 4096, 8192 + 2]) {
        buf[pos] = 1;
        expect(isZero(buf, { kernel })).toBe(false);
        buf[pos] = 0;
      }
    }
  });

  it.each(kernels)('kernel %s finds a single non-zero byte at every position of a 4 KiB block, for every bit', (kernel) => {
    const block = new Uint8Array(4096);
    for (let pos = 0; pos < block.length; pos++) {
      block[pos] = 1 << (pos % 8);
      if (isZero(block, { kernel }) !== false) throw new Error(`${kernel}: byte 0x${block[pos]!.toString(16)} at ${pos} not seen`);
      block[pos] = 0;
    }
    expect(isZero(block, { kernel })).toBe(true);
    // The default (dispatching) path too, with its first/middle/last sampling.
    for (let pos = 0; pos < block.length; pos++) {
      block[pos] = 0x80;
      if (isZero(block) !== false) throw new Error(`default kernel: byte at ${pos} not seen`);
      block[pos] = 0;
    }
  });

  it.each(kernels)('kernel %s agrees with portable on every length 0..300 and every offset 0..70 of an unaligned view', (kernel) => {
    const backing = new Uint8Array(512);
    for (let offset = 0; offset <= 70; offset++) {
      for (let len = 0; len <= 300; len++) {
        const view = backing.subarray(offset, offset + len);
        expect(isZero(view, { kernel })).toBe(true);
        if (len === 0) continue;
        // The last byte (the overlapping-tail load) and the first byte.
        for (const pos of [0, len - 1, len >> 1]) {
          view[pos] = 0x40;
          const got = isZero(view, { kernel });
          const want = isZero(view, { kernel: 'portable' });
          if (got !== false || want !== false) throw new Error(`${kernel}: offset ${offset} len ${len} pos ${pos}: ${got} / portable ${want}`);
          view[pos] = 0;
        }
        // A non-zero byte just outside the view must not count.
        if (offset > 0) backing[offset - 1] = 0xff;
        if (offset + len < backing.length) backing[offset + len] = 0xff;
        if (isZero(view, { kernel }) !== true) throw new Error(`${kernel}: offset ${offset} len ${len} read outside its view`);
        backing.fill(0);
      }
    }
  });

  it.each(kernels)('kernel %s agrees with portable and with a JS reference on random sparse buffers', (kernel) => {
    const next = rng(0x5eed + kernel.length);
    for (let round = 0; round < 400; round++) {
      const len = next() % 70_000;
      const start = next() % 64;
      const backing = new Uint8Array(start + len + 64);
      const view = backing.subarray(start, start + len);
      // Mostly zero buffers (so the kernels must scan far), 0 to 2 set bytes.
      const setBytes = next() % 3;
      for (let i = 0; i < setBytes && len > 0; i++) view[next() % len] = (next() % 255) + 1;
      const want = refIsZero(view);
      expect(isZero(view, { kernel: 'portable' })).toBe(want);
      if (isZero(view, { kernel }) !== want) throw new Error(`${kernel}: round ${round} len ${len} start ${start}: expected ${want}`);
      expect(isZero(view)).toBe(want);
    }
  });

  it('accepts Buffer, Uint8Array, other TypedArrays, DataView and ArrayBuffer and reads only the viewed bytes', () => {
    const ab = new ArrayBuffer(4096 + 16);
    const u8 = new Uint8Array(ab);
    u8[0] = 1; // outside every view below except the whole buffer
    u8[4096 + 15] = 1;
    for (const kernel of kernels) {
      expect(isZero(ab, { kernel })).toBe(false);
      expect(isZero(new Uint8Array(ab, 1, 4096), { kernel })).toBe(true);
      expect(isZero(new DataView(ab, 1, 4096), { kernel })).toBe(true);
      expect(isZero(Buffer.from(ab, 1, 4096 + 14), { kernel })).toBe(true);
      expect(isZero(new Uint32Array(ab, 4, 1024), { kernel })).toBe(true);
      expect(isZero(new Float64Array(ab, 8, 511), { kernel })).toBe(true);
      expect(isZero(new DataView(ab), { kernel })).toBe(false);
      expect(isZero(u8.subarray(1), { kernel })).toBe(false); // includes the last byte
      expect(isZero(Buffer.from(ab).subarray(1, 4096 + 15), { kernel })).toBe(true);
      expect(isZero(new ArrayBuffer(0), { kernel })).toBe(true);
      expect(isZero(new DataView(ab, 4096 + 15, 1), { kernel })).toBe(false);
    }
  });

  it('rejects values that are not bytes with InvalidArgumentError (code ERR_INVALID_ARG_VALUE)', () => {
    for (const bad of [null, undefined, 'abc', 42, [0, 0, 0], {}, { length: 0 }]) {
      let err: unknown;
      try {
        isZero(bad as unknown as Uint8Array);
      } catch (e) {
        err = e;
      }
      expect(err, String(bad)).toBeInstanceOf(InvalidArgumentError);
      expect((err as InvalidArgumentError).code).toBe('ERR_INVALID_ARG_VALUE');
    }
  });

  it('rejects an unknown kernel name with InvalidArgumentError', () => {
    expect(() => isZero(Buffer.alloc(16), { kernel: 'mmx' as ZeroKernel })).toThrow(InvalidArgumentError);
  });
});

describe('classifyBlocks', () => {
  it('marks only the blocks holding a non-zero byte, including a short last block', () => {
    const buf = Buffer.alloc(4096 * 3 + 10);
    buf[4096 + 5] = 0xff;
    buf[4096 * 3 + 9] = 1;
    expect(Array.from(classifyBlocks(buf, 4096))).toEqual([0, 1, 0, 1]);
  });

  it('returns a Uint8Array of ceil(length / blockSize) entries, empty for an empty buffer', () => {
    expect(classifyBlocks(Buffer.alloc(0), 512)).toEqual(new Uint8Array(0));
    expect(classifyBlocks(Buffer.alloc(1), 512)).toEqual(new Uint8Array([0]));
    expect(classifyBlocks(Buffer.alloc(512), 512)).toEqual(new Uint8Array([0]));
    expect(classifyBlocks(Buffer.alloc(513), 512)).toEqual(new Uint8Array([0, 0]));
    expect(classifyBlocks(Buffer.alloc(1 << 20), 1 << 20)).toEqual(new Uint8Array([0]));
  });

  it('puts a single non-zero byte at every position of a 4 KiB block into the right 512 B block', () => {
    const block = new Uint8Array(4096);
    for (let pos = 0; pos < block.length; pos++) {
      block[pos] = 0x01;
      const got = classifyBlocks(block, 512);
      const want = [0, 0, 0, 0, 0, 0, 0, 0];
      want[pos >> 9] = 1;
      if (Array.from(got).join() !== want.join()) throw new Error(`byte at ${pos}: got ${Array.from(got).join()}`);
      block[pos] = 0;
    }
  });

  it('classifies unaligned views, DataViews and ArrayBuffers by their own bytes', () => {
    const ab = new ArrayBuffer(1 + 2048);
    const u8 = new Uint8Array(ab);
    u8[0] = 9; // before the views
    u8[1 + 1024 + 3] = 7; // third 512 B block of the views
    expect(Array.from(classifyBlocks(u8.subarray(1), 512))).toEqual([0, 0, 1, 0]);
    expect(Array.from(classifyBlocks(new DataView(ab, 1), 512))).toEqual([0, 0, 1, 0]);
    expect(Array.from(classifyBlocks(Buffer.from(ab, 1), 1024))).toEqual([0, 1]);
    expect(Array.from(classifyBlocks(ab, 512))).toEqual([1, 0, 1, 0, 0]);
  });

  it('agrees with a JS reference on random buffers for every block size from 512 B to 1 MiB', () => {
    const next = rng(42);
    const len = 3 * (1 << 20) + 777;
    const buf = Buffer.alloc(len + 1).subarray(1); // unaligned
    for (let i = 0; i < 40; i++) buf[next() % len] = (next() % 255) + 1;
    for (let bs = 512; bs <= 1 << 20; bs *= 2) {
      expect(Array.from(classifyBlocks(buf, bs)), `block size ${bs}`).toEqual(refClassify(buf, bs));
    }
  });

  it.each([0, 1, 256, 511, 513, 1000, 3000, 4095, 4097, 6144, 2 ** 21, 2 ** 30, 2 ** 31, -4096, 4096.5, NaN, Infinity])(
    'rejects block size %s with InvalidArgumentError',
    (bs) => {
      let err: unknown;
      try {
        classifyBlocks(Buffer.alloc(8192), bs);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as InvalidArgumentError).code).toBe('ERR_INVALID_ARG_VALUE');
    },
  );

  it('rejects a non-number block size and a non-buffer with InvalidArgumentError', () => {
    expect(() => classifyBlocks(Buffer.alloc(8192), '4096' as unknown as number)).toThrow(InvalidArgumentError);
    expect(() => classifyBlocks(undefined as unknown as Uint8Array, 4096)).toThrow(InvalidArgumentError);
    expect(() => classifyBlocks('abc' as unknown as Uint8Array, 4096)).toThrow(InvalidArgumentError);
  });
});
