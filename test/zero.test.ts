import { describe, expect, it } from 'vitest';
import { classifyBlocks, cpuFeatures, isZero } from '../src/index.js';

describe('isZero', () => {
  it('is true for an all-zero buffer and false when any one byte is set, with every kernel', () => {
    const buf = Buffer.alloc(8192 + 3);
    for (const kernel of cpuFeatures().availableZeroKernels) {
      expect(isZero(buf, { kernel })).toBe(true);
      for (const pos of [0, 1, 63, 64, 4095, 4096, 8192 + 2]) {
        buf[pos] = 1;
        expect(isZero(buf, { kernel })).toBe(false);
        buf[pos] = 0;
      }
    }
  });
});

describe('classifyBlocks', () => {
  it('marks only the blocks holding a non-zero byte, including a short last block', () => {
    const buf = Buffer.alloc(4096 * 3 + 10);
    buf[4096 + 5] = 0xff;
    buf[4096 * 3 + 9] = 1;
    expect(Array.from(classifyBlocks(buf, 4096))).toEqual([0, 1, 0, 1]);
  });
});
