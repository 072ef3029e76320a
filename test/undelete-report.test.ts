// blocksmith undelete's report.json survives the ways a run can end early:
// the output filesystem full (ENOSPC: one line, exit 1, report.json says
// failed with ENOSPC and lists the files written so far, each on disk with
// its sha256) and a stop (AbortSignal: state stopped, the files so far
// kept). onFile sees each file as it is done, before the run ends.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { undelete, type UndeletedFile, type UndeleteReport } from '../src/index.js';
import { randomBytes, sha256 } from './helpers/carve.js';
import { makeTempDir, removeDir, runCli, spawnSyncOk } from './helpers/foundation.js';

process.env.MTOOLS_SKIP_CHECK = '1';

let dir: string;
const mounts: string[] = [];
beforeAll(() => {
  dir = makeTempDir('undelete-report');
});
afterAll(() => {
  for (const m of mounts) spawnSync('umount', [m]);
  removeDir(dir);
});

/** A FAT32 image with `sizes.length` deleted files F0.BIN, F1.BIN, ... of those sizes (seeded random content). */
function card(name: string, sizes: number[], mib: number): string {
  const img = join(dir, name);
  spawnSyncOk('mkfs.fat', ['-F', '32', '-C', img, String(mib * 1024)]);
  sizes.forEach((n, i) => {
    const f = join(dir, `${name}-${i}`);
    writeFileSync(f, randomBytes(n, 100 + i));
    spawnSyncOk('mcopy', ['-i', img, f, `::/F${i}.BIN`]);
  });
  spawnSyncOk('mdel', ['-i', img, ...sizes.map((_, i) => `::/F${i}.BIN`)]);
  return img;
}

const readReport = (out: string) => JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as UndeleteReport;

/** Every file the report says was written is there with its bytes; nothing else is under recovered/. */
function expectListedOnDisk(out: string, files: UndeletedFile[]): void {
  const written = files.filter((f) => f.writtenAs && !f.directory);
  for (const f of written) expect(sha256(readFileSync(join(out, f.writtenAs!))), f.path).toBe(f.sha256);
  expect(readdirSync(join(out, 'recovered')).sort()).toEqual(written.map((f) => f.writtenAs!.slice('recovered/'.length)).sort());
}

describe('undelete report.json on the way out', () => {
  it('output filesystem full: one line naming ENOSPC, exit 1; report.json says failed and lists what was written', async () => {
    const img = card('full.img', [400_000, 400_000, 400_000, 400_000], 64);
    const mnt = join(dir, 'tiny');
    mkdirSync(mnt);
    spawnSyncOk('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]);
    mounts.push(mnt);
    const out = join(mnt, 'out');
    const r = await runCli(['undelete', img, '-o', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(`^blocksmith: write '[^']*_\\d\\.BIN': no space left on device; the files written so far are listed in ${out}/report\\.json \\(ENOSPC\\)\\n$`),
    );
    const rep = readReport(out);
    expect(rep.state).toBe('failed');
    expect(rep.finished).toBe(false);
    expect(rep.error?.code).toBe('ENOSPC');
    // Two files of 400 kB fit in 1 MiB beside the report; the third does not (and is not left half-written).
    expect(rep.files.map((f) => [f.path, f.status])).toEqual([
      ['_0.BIN', 'recovered'],
      ['_1.BIN', 'recovered'],
    ]);
    expect(rep.files[0]!.sha256).toBe(sha256(randomBytes(400_000, 100)));
    expectListedOnDisk(out, rep.files);
    expect(readdirSync(out).sort()).toEqual(['recovered', 'report.json']); // no reserve, no temporary file left
  });

  it('stopped by the signal: state stopped, the files so far kept and listed; onFile saw each as it was done', async () => {
    // A small file first, then a large one: the signal fires on the first file's event, while the second is written.
    const img = card('stop.img', [5000, 96 << 20, 5000], 160);
    const out = join(dir, 'stopped');
    const ac = new AbortController();
    const seen: string[] = [];
    const err = (await undelete(img, {
      outDir: out,
      force: true,
      signal: ac.signal,
      onFile: (f) => {
        seen.push(f.path);
        if (seen.length === 1) ac.abort();
      },
    }).catch((e: unknown) => e)) as Error & { report?: UndeleteReport };
    expect(err.name).toBe('AbortError');
    expect(seen).toEqual(['_0.BIN']);
    const rep = readReport(out);
    expect(rep.state).toBe('stopped');
    expect(rep.cancelled).toBe(true);
    expect(rep.files.map((f) => f.path)).toEqual(['_0.BIN']);
    expectListedOnDisk(out, rep.files);
    expect(existsSync(join(out, '.report-reserve'))).toBe(false);
    expect(err.report?.state).toBe('stopped');
  });
});
