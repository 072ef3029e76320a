// Standard output of every CLI goes through one path (src/cli/stdout.ts):
// a reader that goes away (EPIPE: `| head -1`) ends the run quietly with 141,
// as a coreutils tool killed by SIGPIPE shows in a shell; a full disk or an
// I/O error on stdout (/dev/full, a full filesystem) is exit 1 with one line,
// never exit 0 with an empty or cut file.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeJpeg, randomBytes } from './helpers/carve.js';
import { KiB, MiB, makeTempDir, pattern, removeDir, repoRoot, spawnSyncOk, writeLayout, type Piece } from './helpers/foundation.js';

const cli = (name: string) => join(repoRoot, 'dist', 'cli', 'bin', `${name}.js`);
const ENOSPC_LINE = (prog: string) => `${prog}: cannot write standard output: no space left on device (ENOSPC)\n`;

let dir: string;
let many: string; // 8192 data/hole extents: a map far larger than a pipe's 64 KiB
let card: string; // 400 small JPEGs: an NDJSON stream of 400 lines
let mnt: string | undefined;

beforeAll(() => {
  dir = makeTempDir('stdout');
  many = join(dir, 'many.raw');
  const pieces: Piece[] = [];
  for (let i = 0; i < 8192; i++) pieces.push({ offset: i * 8 * KiB, bytes: pattern(4 * KiB, i + 1) });
  writeLayout(many, 64 * MiB, pieces);
  card = join(dir, 'card.img');
  const jpeg = makeJpeg(dir, 'p', 64, 48, 5);
  const cardPieces: Piece[] = [{ offset: 0, bytes: randomBytes(400 * 4 * KiB, 3) }];
  for (let i = 0; i < 400; i++) cardPieces.push({ offset: i * 4 * KiB + 100, bytes: jpeg });
  writeLayout(card, 400 * 4 * KiB, cardPieces);
  expect(jpeg.length).toBeLessThan(4 * KiB - 100);
});

afterAll(() => {
  if (mnt) spawnSync('umount', [mnt]);
  removeDir(dir);
});

/** `CMD | head -1` in bash: the first line, the CLI's exit status and its stderr (a file). */
function pipedToHead(command: string): { first: string; status: number; stderr: string } {
  const errFile = join(dir, `stderr-${Math.random()}`);
  const r = spawnSync('bash', ['-c', `${command} 2>${errFile} | head -1; echo "status=\${PIPESTATUS[0]}"`], { encoding: 'utf8', cwd: dir });
  const [first, status] = r.stdout.split('\n');
  return { first: first!, status: Number(status!.replace('status=', '')), stderr: readFileSync(errFile, 'utf8') };
}

/** Runs a CLI with stdout on `path` (a file or /dev/full). */
function withStdoutOn(path: string, name: string, args: string[]) {
  const fd = openSync(path, 'w');
  try {
    return spawnSync(process.execPath, [cli(name), ...args], { stdio: ['ignore', fd, 'pipe'], encoding: 'utf8', cwd: dir, timeout: 60_000 });
  } finally {
    closeSync(fd);
  }
}

describe('a reader that goes away (EPIPE): quiet, exit 141', () => {
  it('`blocksmith map IMG | head -1`: the header line, nothing on stderr, exit 141', () => {
    const r = pipedToHead(`${process.execPath} ${cli('blocksmith')} map ${many}`);
    expect(r.first).toMatch(/^ +offset +length +kind$/);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(141);
  });

  it('`blocksmith map --json IMG | head -1`: the first extent, nothing on stderr, exit 141', () => {
    const r = pipedToHead(`${process.execPath} ${cli('blocksmith')} map --json ${many}`);
    expect(r.first).toBe('[{"offset":0,"length":4096,"kind":"data"},');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(141);
  });

  it('`carve --json | head -1`: the first file, nothing on stderr, exit 141, and the report is written', () => {
    const out = join(dir, 'carve-epipe');
    const r = pipedToHead(`${process.execPath} ${cli('carve')} ${card} -o ${out} --json --force`);
    expect(JSON.parse(r.first)).toMatchObject({ offset: 100, status: 'complete' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(141);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as { tool: string; files: unknown[] };
    expect(report.tool).toBe('blocksmith carve');
    expect(report.files.length).toBeGreaterThan(0);
  });
});

describe('stdout that cannot be written (ENOSPC, EIO): one line, exit 1', () => {
  it.each([
    ['blocksmith', ['map', 'many.raw']],
    ['blocksmith', ['map', '--json', 'many.raw']],
    ['blocksmith', ['info', '--json', 'many.raw']],
    ['blocksmith', ['info', 'many.raw']],
    ['sparsify', ['--dry-run', '--json', 'many.raw']],
    ['blocksmith', ['--version']],
  ])('%s %j > /dev/full', (name, args) => {
    const r = withStdoutOn('/dev/full', name, args);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(ENOSPC_LINE(name));
  });

  it('carve --json > /dev/full: exit 1 with one line, the carve stopped and its report written', () => {
    const out = join(dir, 'carve-full');
    const r = withStdoutOn('/dev/full', 'carve', [card, '-o', out, '--json', '--force']);
    expect(r.stderr).toBe(ENOSPC_LINE('carve'));
    expect(r.status).toBe(1);
    expect(existsSync(join(out, 'report.json'))).toBe(true);
  });

  it('`map --json IMG > FILE` on a full ext4 (loop-mounted): exit 1, one line; not exit 0 with an empty file', () => {
    const fsImage = join(dir, 'small-ext4.img');
    mnt = join(dir, 'mnt');
    spawnSyncOk('truncate', ['-s', '2M', fsImage]);
    spawnSyncOk('mkfs.ext4', ['-q', '-F', '-m', '0', '-O', '^has_journal', fsImage]);
    spawnSyncOk('mkdir', [mnt]);
    spawnSyncOk('mount', ['-o', 'loop', fsImage, mnt]);
    // Fill it: dd stops at ENOSPC (and says so), which is the point.
    spawnSync('dd', ['if=/dev/zero', `of=${join(mnt, 'filler')}`, 'bs=64k'], { encoding: 'utf8' });
    const target = join(mnt, 'map.json');
    const r = withStdoutOn(target, 'blocksmith', ['map', '--json', many]);
    expect(r.stderr).toBe(ENOSPC_LINE('blocksmith'));
    expect(r.status).toBe(1);
    expect(statSync(target).size).toBeLessThan(200 * KiB); // what fit, not the whole map
  });
});
