import { chmodSync, closeSync, fsyncSync, ftruncateSync, openSync, truncateSync, writeSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlocksmithError, info, InvalidArgumentError, mapExtents, type ExtentMap } from '../src/index.js';
import { KiB, repoRoot, lines, makeTempDir, MiB, pattern, removeDir, runCli, sleep, spawnSyncOk, waitForOpen, writeLayout } from './helpers/foundation.js';

let dir: string;
beforeAll(() => {
  dir = makeTempDir('errors');
});
afterAll(() => removeDir(dir));

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    (v) => new Error(`expected a rejection, resolved with ${JSON.stringify(v)}`),
    (e: unknown) => e,
  );
}

/** Runs a command as user nobody (uid/gid 65534): the only way to get EACCES as root. */
const asNobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

describe('API errors are BlocksmithErrors shaped like fs errors', () => {
  it('a missing path rejects with ENOENT, syscall open, the path and a negative errno', async () => {
    const path = join(dir, 'does-not-exist.raw');
    for (const fn of [info, mapExtents]) {
      const err = await rejection(fn(path));
      expect(err).toBeInstanceOf(BlocksmithError);
      expect(err).toMatchObject({ name: 'BlocksmithError', code: 'ENOENT', errno: -constants.errno.ENOENT, syscall: 'open', path });
      expect((err as Error).message).toContain(path);
    }
  });

  it('a directory rejects with EISDIR', async () => {
    const err = await rejection(info(dir));
    expect(err).toBeInstanceOf(BlocksmithError);
    expect(err).toMatchObject({ code: 'EISDIR', errno: -constants.errno.EISDIR, syscall: 'open', path: dir });
  });

  it('a character device (/dev/null) rejects with ENOTBLK', async () => {
    const err = await rejection(mapExtents('/dev/null'));
    expect(err).toBeInstanceOf(BlocksmithError);
    expect(err).toMatchObject({ code: 'ENOTBLK', errno: -15 /* ENOTBLK on Linux; not in os.constants */, syscall: 'open', path: '/dev/null' });
  });

  it('a FIFO rejects with ENOTBLK at once (opening it does not hang)', async () => {
    const fifo = join(dir, 'fifo');
    spawnSyncOk('mkfifo', [fifo]);
    const err = await rejection(info(fifo));
    expect(err).toMatchObject({ code: 'ENOTBLK', path: fifo });
  });

  it('an unreadable file rejects with EACCES (API run as user nobody)', async () => {
    const sub = join(dir, 'perm-api');
    spawnSyncOk('mkdir', ['-m', '755', sub]);
    chmodSync(dir, 0o755);
    const path = join(sub, 'secret.raw');
    writeLayout(path, 4096, [{ offset: 0, bytes: pattern(4096) }]);
    chmodSync(path, 0o000);
    const script = `
      const { info, BlocksmithError } = await import(${JSON.stringify(pathToFileURL(join(repoRoot, 'dist', 'index.js')).href)});
      try { await info(${JSON.stringify(path)}); console.log('resolved'); }
      catch (e) { console.log(JSON.stringify({ isBlocksmith: e instanceof BlocksmithError, code: e.code, errno: e.errno, syscall: e.syscall, path: e.path })); }`;
    const out = spawnSyncOk(asNobody[0]!, [...asNobody.slice(1), process.execPath, '--input-type=module', '-e', script]);
    expect(JSON.parse(out)).toEqual({ isBlocksmith: true, code: 'EACCES', errno: -constants.errno.EACCES, syscall: 'open', path });
  });

  it.each([100, 3000, 2 * MiB, 1.5, -512, '2M', 'abc', '4X'])('blockSize %s rejects with InvalidArgumentError', async (bs) => {
    const path = join(dir, 'small.raw');
    writeLayout(path, 4096, []);
    const err = await rejection(info(path, { blockSize: bs }));
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(err).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
  });

  it('a path that is not a string rejects with InvalidArgumentError (not a bare TypeError)', async () => {
    for (const bad of [123, undefined, null, { path: 'x' }]) {
      const err = await rejection(info(bad as unknown as string));
      expect(err, `info(${JSON.stringify(bad)})`).toBeInstanceOf(InvalidArgumentError);
      expect(err).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    }
  });
});

describe('a file truncated while it is being scanned', () => {
  const M = MiB;

  /** Writes `mib` MiB of non-zero data from offset 0 (real writes), plus `tail` pieces. */
  function writeData(path: string, mib: number, size: number, tail: { offset: number; bytes: Buffer }[] = []): void {
    const fd = openSync(path, 'w');
    const chunk = Buffer.alloc(4 * M, 0xab);
    for (let off = 0; off < mib * M; off += chunk.length) writeSync(fd, chunk, 0, chunk.length, off);
    for (const t of tail) writeSync(fd, t.bytes, 0, t.bytes.length, t.offset);
    ftruncateSync(fd, size);
    fsyncSync(fd);
    closeSync(fd);
  }

  /** Maps `path`, truncating it to `newSize` from the first progress report (the scan is then under way). */
  async function mapWhileTruncating(path: string, newSize: number, seekHole: boolean) {
    let truncatedAt = -1;
    const outcome = await mapExtents(path, {
      seekHole,
      onProgress: ({ bytesDone }) => {
        if (truncatedAt < 0) {
          truncatedAt = bytesDone;
          truncateSync(path, newSize);
        }
      },
    }).then(
      (map) => ({ map, error: undefined }),
      (error: unknown) => ({ map: undefined, error }),
    );
    return { ...outcome, truncatedAt };
  }

  /** Either a rejection with ERR_SOURCE_CHANGED, or the exact map of the file before or after the truncation. */
  function expectCorrectOrSourceChanged(
    r: { map?: ExtentMap; error?: unknown; truncatedAt: number },
    path: string,
    before: ExtentMap['extents'],
    after: ExtentMap['extents'],
  ): void {
    if (r.error !== undefined) {
      expect(r.error).toBeInstanceOf(BlocksmithError);
      expect(r.error).toMatchObject({ code: 'ERR_SOURCE_CHANGED', path });
      return;
    }
    const m = r.map!;
    const state = JSON.stringify(m.extents) === JSON.stringify(before) ? before : after;
    expect(
      { virtualSize: m.virtualSize, extents: m.extents },
      `the scan resolved (truncation at bytesDone ${r.truncatedAt}) with a map of neither the old nor the new file`,
    ).toEqual({ virtualSize: state.reduce((n, e) => n + e.length, 0), extents: state });
  }

  it('a dense 256 MiB file read with seekHole: false and cut to 1 MiB: ERR_SOURCE_CHANGED or a correct map', async () => {
    const path = join(dir, 'shrink-dense.raw');
    writeData(path, 256, 256 * M);
    const r = await mapWhileTruncating(path, 1 * M, false);
    expectCorrectOrSourceChanged(r, path, [{ offset: 0, length: 256 * M, kind: 'data' }], [{ offset: 0, length: 1 * M, kind: 'data' }]);
  });

  it('a sparse file cut inside a hole after the range being read: ERR_SOURCE_CHANGED or a correct map, never data reported as hole', async () => {
    // [0, 256M) data | hole | [512M, 512M+4K) data.  Cut to 300 MiB while the first range is being read:
    // the old file has data at 512 MiB, the new one ends at 300 MiB.
    const path = join(dir, 'shrink-sparse.raw');
    writeData(path, 256, 512 * M + 4 * KiB, [{ offset: 512 * M, bytes: pattern(4 * KiB) }]);
    const before = [
      { offset: 0, length: 256 * M, kind: 'data' as const },
      { offset: 256 * M, length: 256 * M, kind: 'hole' as const },
      { offset: 512 * M, length: 4 * KiB, kind: 'data' as const },
    ];
    const after = [
      { offset: 0, length: 256 * M, kind: 'data' as const },
      { offset: 256 * M, length: 44 * M, kind: 'hole' as const },
    ];
    expect((await mapExtents(path)).extents).toEqual(before);
    const r = await mapWhileTruncating(path, 300 * M, true);
    expect(r.truncatedAt).toBeLessThan(256 * M); // the cut landed while the first range was read
    expectCorrectOrSourceChanged(r, path, before, after);
  });

  it('the CLI exits 0 with a map or 1 with one line naming ERR_SOURCE_CHANGED, never crashes', async () => {
    // 8 GiB sparse, read in full with --no-seek-hole (seconds); cut to 0 once the CLI has it open.
    const path = join(dir, 'shrink-cli.raw');
    writeLayout(path, 8 * 1024 * M, []);
    let cut: Promise<void> | undefined;
    const r = await runCli(['map', '--json', '--no-seek-hole', path], {
      onSpawn: (pid) => {
        cut = waitForOpen(pid, path).then(() => sleep(100)).then(() => truncateSync(path, 0));
      },
    });
    await cut;
    expect(r.signal).toBeNull();
    if (r.code === 0) {
      expect(JSON.parse(r.stdout)).toEqual([{ offset: 0, length: 8 * 1024 * M, kind: 'zero' }]);
    } else {
      expect(r.code).toBe(1);
      expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'ERR_SOURCE_CHANGED', syscall: 'read', path } });
      expect(lines(r.stderr)).toHaveLength(1);
      expect(r.stderr).toMatch(/^blocksmith: .*shrank.*\(ERR_SOURCE_CHANGED\)\n$/);
    }
  });
});

describe('CLI errors: one line on stderr, exit 1', () => {
  it('a missing path: exit 1, one line naming the path and ENOENT, nothing on stdout', async () => {
    const path = join(dir, 'nope.raw');
    for (const cmd of ['info', 'map']) {
      const r = await runCli([cmd, path]);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(lines(r.stderr)).toHaveLength(1);
      expect(r.stderr).toBe(`blocksmith: open '${path}': no such file or directory (ENOENT)\n`);
    }
  });

  it('a missing path with --json: exit 1, the error as JSON on stdout, one line on stderr', async () => {
    const path = join(dir, 'nope.raw');
    const r = await runCli(['info', '--json', path]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual({ error: { message: `open '${path}': no such file or directory`, code: 'ENOENT', syscall: 'open', path } });
    expect(lines(r.stderr)).toHaveLength(1);
  });

  it('a directory: exit 1, one line ending (EISDIR)', async () => {
    const r = await runCli(['info', dir]);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(/^blocksmith: .*is a directory.*\(EISDIR\)\n$/);
    expect(r.stderr).toContain(dir);
  });

  it('/dev/null: exit 1, one line ending (ENOTBLK)', async () => {
    const r = await runCli(['map', '/dev/null']);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(/^blocksmith: '\/dev\/null' is a character device.*\(ENOTBLK\)\n$/);
  });

  it('an unreadable file (chmod 000, run as nobody): exit 1, one line ending (EACCES)', async () => {
    const sub = join(dir, 'perm-cli');
    spawnSyncOk('mkdir', ['-m', '755', sub]);
    chmodSync(dir, 0o755);
    const path = join(sub, 'secret.raw');
    writeLayout(path, 4096, [{ offset: 0, bytes: pattern(4096) }]);
    chmodSync(path, 0o000);
    const r = await runCli(['info', path], { prefix: asNobody });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toBe(`blocksmith: open '${path}': permission denied (EACCES)\n`);
  });

  it('--debug adds the stack trace after the one-line message', async () => {
    const path = join(dir, 'nope.raw');
    const r = await runCli(['info', '--debug', path]);
    expect(r.code).toBe(1);
    const l = lines(r.stderr);
    expect(l[0]).toBe(`blocksmith: open '${path}': no such file or directory (ENOENT)`);
    expect(l.length).toBeGreaterThan(2);
    expect(l[1]).toMatch(/^BlocksmithError: /);
    expect(l.slice(2).every((s) => /^\s+at /.test(s))).toBe(true);
  });
});

describe('CLI usage errors: exit 2, one line on stderr, nothing on stdout', () => {
  let file: string;
  beforeAll(() => {
    file = join(dir, 'usage.raw');
    writeLayout(file, 8192, [{ offset: 0, bytes: pattern(4096) }]);
  });

  it.each(['3K', '0', '256', '2M', 'abc', '4096.5', '-4096'])('--block-size %s', async (bs) => {
    for (const cmd of ['info', 'map']) {
      const r = await runCli([cmd, '--block-size', bs, file]);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(lines(r.stderr)).toHaveLength(1);
      expect(r.stderr).toMatch(/^blocksmith: block size .* (is not a power of two from 512 B to 1 MiB|is not a size.*)\n$/);
    }
  });

  it('a missing PATH argument', async () => {
    for (const cmd of ['info', 'map']) {
      const r = await runCli([cmd]);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe("blocksmith: missing required argument 'path'\n");
    }
  });

  it('too many arguments', async () => {
    const r = await runCli(['info', file, file]);
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(/^blocksmith: too many arguments/);
  });

  it('an unknown option of a command', async () => {
    const r = await runCli(['map', '--frobnicate', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("blocksmith: unknown option '--frobnicate'\n");
  });

  it('an unknown command', async () => {
    const r = await runCli(['frobnicate', file]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(lines(r.stderr)[0]).toBe("blocksmith: unknown command 'frobnicate'");
    expect(lines(r.stderr), 'a usage error is exactly one line on stderr').toHaveLength(1);
  });

  it('an unknown option of the program', async () => {
    const r = await runCli(['--frobnicate']);
    expect(r.code).toBe(2);
    expect(lines(r.stderr)[0]).toBe("blocksmith: unknown option '--frobnicate'");
    expect(lines(r.stderr), 'a usage error is exactly one line on stderr').toHaveLength(1);
  });
});
