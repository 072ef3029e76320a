import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GiB, lines, makeTempDir, removeDir, runCli, sleep, waitForOpen, writeLayout } from './helpers/foundation.js';

let dir: string;
let big: string;
const size = 32 * GiB; // sparse, read in full with --no-seek-hole: many seconds of work

beforeAll(() => {
  dir = makeTempDir('sigint');
  big = join(dir, 'big.raw');
  writeLayout(big, size, []);
});
afterAll(() => removeDir(dir));

/** Starts the CLI, sends `signal` ~300 ms after it opened the source, returns the result and when it was sent. */
async function interrupt(args: string[], signal: NodeJS.Signals = 'SIGINT') {
  let sentAt = 0;
  let sending: Promise<void> | undefined;
  const started = Date.now();
  const r = await runCli(args, {
    timeoutMs: 30_000,
    onSpawn: (pid) => {
      sending = waitForOpen(pid, big).then(async () => {
        await sleep(300);
        sentAt = Date.now();
        process.kill(pid, signal);
      });
    },
  });
  await sending;
  return { ...r, sentAt, endedAt: Date.now(), started };
}

describe('Ctrl-C', () => {
  it('SIGINT during `blocksmith map` stops the scan cleanly with exit code 130', async () => {
    const r = await interrupt(['map', '--no-seek-hole', big]);
    expect(r.signal).toBeNull(); // exited by itself, not killed by the signal
    expect(r.code).toBe(130);
    expect(r.stdout).toBe(''); // no partial map
    expect(lines(r.stderr.trim())).toEqual(['interrupted: stopping cleanly (Ctrl-C again to quit at once)', 'blocksmith: stopped']);
    expect(r.endedAt - r.sentAt).toBeLessThan(5_000);
  });

  it('SIGINT during `blocksmith info --json` exits 130 without printing a result', async () => {
    const r = await interrupt(['info', '--json', '--no-seek-hole', big]);
    expect(r.code).toBe(130);
    expect(r.stdout).toBe('');
  });

  it('SIGTERM during `blocksmith map` also stops cleanly, with exit code 143 (128 + SIGTERM)', async () => {
    const r = await interrupt(['map', '--no-seek-hole', big], 'SIGTERM');
    expect(r.signal).toBeNull();
    expect(r.code).toBe(143);
    expect(r.stdout).toBe('');
    expect(lines(r.stderr.trim())).toEqual(['terminated: stopping cleanly (Ctrl-C again to quit at once)', 'blocksmith: stopped']);
  });
});
