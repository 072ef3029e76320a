// One harness for every CLI (src/cli/harness.ts): usage errors of any kind
// exit 2 with one line "PROG: ..." and nothing on stdout; every size option
// takes the same suffixes (carve's included: issue 14, case 9); --debug adds
// the stack; signals; and what `require('blocksmith')` does from CommonJS.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeJpeg, randomBytes } from './helpers/carve.js';
import { GiB, KiB, makeTempDir, removeDir, repoRoot, sleep, waitForOpen, writeLayout, type Piece } from './helpers/foundation.js';

const cli = (name: string) => join(repoRoot, 'dist', 'cli', 'bin', `${name}.js`);

function run(name: string, args: string[], cwd = dir) {
  const r = spawnSync(process.execPath, [cli(name), ...args], { encoding: 'utf8', cwd, timeout: 60_000 });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

let dir: string;
let card: string; // JPEGs at 4 KiB boundaries and, between them, at odd offsets
let cardSize = 0;
const aligned = [0, 8 * KiB, 16 * KiB];
const unaligned = [4 * KiB + 1000, 12 * KiB + 7];

beforeAll(() => {
  dir = makeTempDir('harness');
  card = join(dir, 'card.img');
  const jpeg = makeJpeg(dir, 'p', 48, 32, 9);
  expect(jpeg.length).toBeLessThan(3 * KiB);
  cardSize = 24 * KiB;
  const pieces: Piece[] = [{ offset: 0, bytes: randomBytes(cardSize, 11) }];
  for (const o of [...aligned, ...unaligned]) pieces.push({ offset: o, bytes: jpeg });
  writeLayout(card, cardSize, pieces);
});
afterAll(() => removeDir(dir));

describe('usage errors: exit 2, one line naming the program, nothing on stdout, nothing created', () => {
  const out = () => join(dir, 'never-created');
  it.each([
    ['blocksmith', ['map', '--frobnicate', 'card.img'], "blocksmith: unknown option '--frobnicate'"],
    ['blocksmith', ['map', '--jsn', 'card.img'], "blocksmith: unknown option '--jsn' (did you mean --json?)"],
    ['blocksmith', ['map'], "blocksmith: missing required argument 'path'"],
    ['blocksmith', ['map', '--block-size'], "blocksmith: option '-b, --block-size <size>' argument missing"],
    ['blocksmith', ['info', '--block-size', '3', 'card.img'], 'blocksmith: block size 3 is not a power of two from 512 B to 1 MiB'],
    ['blocksmith', ['map', '--format', 'vmdk', 'card.img'], "blocksmith: format 'vmdk' is not supported (raw, qcow2)"],
    ['blocksmith', ['rbd', 'import', '--object-size', '5M', 'card.img', 'rbd/x'], 'blocksmith: object size 5M is not a power of two from 4 KiB to 1 GiB'],
    ['blocksmith', ['rbd', 'import', '--parallel', '0', 'card.img', 'rbd/x'], 'blocksmith: --parallel 0 is out of range (1 to 1024)'],
    ['sparsify', ['--bogus', 'card.img'], "sparsify: unknown option '--bogus'"],
    ['sparsify', [], "sparsify: missing required argument 'image'"],
    ['sparsify', ['--block-size', '1K5', 'card.img'], "sparsify: block size '1K5' is not a size (examples: 4096, 4K, 1M)"],
    ['sparsify', ['--overwrite', 'card.img'], 'sparsify: --overwrite applies to copies (SRC DST) only'],
    ['sparsify', ['card.img', 'rbd:rbd/x', '--write-size', '3K'], 'sparsify: write size 3K is not a power of two from 4 KiB to 32 MiB'],
    ['sparsify', ['card.img', 'rbd:rbd/x', '--parallel', 'many'], "sparsify: --parallel 'many' is not a whole number (1 to 1024)"],
    ['sparsify', ['card.img', 'rbd:rbd/x', '--timeout', '-1'], "sparsify: --timeout '-1' is not a whole number (at least 0)"],
    ['carve', ['card.img'], "carve: required option '-o, --output <dir>' not specified"],
    ['carve', ['card.img', '-o', 'OUT', '--offset', 'abc'], "carve: offset 'abc' is not a size (examples: 4096, 4K, 1M)"],
    ['carve', ['card.img', '-o', 'OUT', '--length', '0'], 'carve: length 0 is out of range (at least 1 B)'],
    ['carve', ['card.img', '-o', 'OUT', '--block-size', '3'], 'carve: block size 3 is not a power of two from 512 B to 16 MiB'],
    ['carve', ['card.img', '-o', 'OUT', '--block-size', '3K'], 'carve: block size 3K is not a power of two from 512 B to 16 MiB'],
    ['carve', ['card.img', '-o', 'OUT', '--sector-size', '2M'], 'carve: sector size 2M is out of range (1 B to 1 MiB)'],
    ['carve', ['card.img', '-o', 'OUT', '--min-width', 'wide'], "carve: min width 'wide' is not a whole number (at least 0)"],
    ['carve', ['card.img', '-o', 'OUT', '--json', '--max-gap', '1Q'], "carve: max gap '1Q' is not a size (examples: 4096, 4K, 1M)"],
    ['blocksmith', ['carve', 'card.img', '-o', 'OUT', '--max-attempts', '1.5'], "blocksmith: max attempts '1.5' is not a whole number (at least 0)"],
  ])('%s %j', (name, args, line) => {
    const r = run(name, (args as string[]).map((a) => (a === 'OUT' ? out() : a)));
    expect(r.stderr).toBe(`${line}\n`);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(existsSync(out())).toBe(false);
  });
});

describe('carve options parse like the other commands (case 9)', () => {
  it('--sector-size 4K is accepted: only the JPEGs at 4 KiB boundaries are found', () => {
    const out = join(dir, 'sector-4k');
    const r = run('carve', [card, '-o', out, '--sector-size', '4K', '--force', '--json', '--no-gallery']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const files = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { offset?: number; summary?: unknown }).filter((f) => f.summary === undefined);
    expect(files.map((f) => f.offset)).toEqual(aligned);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as { options: { sectorSize: number } };
    expect(report.options.sectorSize).toBe(4096);
  });

  it('--offset and --length take suffixes: --offset 8K --length 8K scans [8 KiB, 16 KiB)', () => {
    const out = join(dir, 'offset-8k');
    const r = run('carve', [card, '-o', out, '--offset', '8K', '--length', '8K', '--force', '--json', '--no-gallery']);
    expect(r.code).toBe(0);
    const summary = (JSON.parse(r.stdout.trim().split('\n').pop()!) as { summary: { start: number; end: number } }).summary;
    expect([summary.start, summary.end]).toEqual([8 * KiB, 16 * KiB]);
  });

  it.each([['1G', GiB], ['24K', 24 * KiB]])('--offset %s at or past the end of the source: exit 1, one line with the offset and the size, nothing created', (offset, bytes) => {
    const out = join(dir, `past-end-${offset}`);
    const r = run('carve', [card, '-o', out, '--offset', offset, '--force']);
    expect(r.stderr).toBe(`carve: offset ${bytes} is at or past the end of '${card}' (${cardSize} bytes) (EINVAL)\n`);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(existsSync(out)).toBe(false);
  });

  it('--offset past the end of a block device: the size comes from the device', () => {
    const loop = spawnSync('losetup', ['-r', '-f', '--show', card], { encoding: 'utf8' }).stdout.trim();
    expect(loop).toMatch(/^\/dev\/loop\d+$/);
    try {
      const out = join(dir, 'past-end-dev');
      const r = run('carve', [loop, '-o', out, '--offset', '1M', '--force']);
      expect(r.stderr).toBe(`carve: offset ${1 << 20} is at or past the end of '${loop}' (${cardSize} bytes) (EINVAL)\n`);
      expect(r.code).toBe(1);
      expect(existsSync(out)).toBe(false);
    } finally {
      spawnSync('losetup', ['-d', loop]);
    }
  });
});

describe('errors: one line; --debug adds the stack', () => {
  it.each([
    ['sparsify', ['missing.raw', 'copy.raw']],
    ['carve', ['missing.raw', '-o', 'out']],
    ['blocksmith', ['map', 'missing.raw']],
  ])('%s %j', (name, args) => {
    const plain = run(name, args as string[]);
    expect(plain.code).toBe(1);
    expect(plain.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(plain.stderr).toMatch(new RegExp(`^${name}: .*missing\\.raw.*\\(ENOENT\\)\\n$`));
    const debug = run(name, [...(args as string[]), '--debug']);
    expect(debug.code).toBe(1);
    const lines = debug.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe(plain.stderr.trimEnd());
    expect(lines.slice(1).some((l) => /^\s+at /.test(l))).toBe(true);
  });
});

describe('signals', () => {
  it('a second Ctrl-C while the first is being honoured exits at once with 130, through process.exit (not killed by the signal)', async () => {
    const big = join(dir, 'big.raw');
    writeLayout(big, 32 * GiB, []);
    const child = spawn(process.execPath, [cli('blocksmith'), 'map', '--no-seek-hole', big], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
    await waitForOpen(child.pid!, big);
    await sleep(200);
    child.kill('SIGINT');
    child.kill('SIGINT');
    const r = await done;
    expect(r.signal).toBeNull();
    expect(r.code).toBe(130);
    expect(stderr.startsWith('\ninterrupted: stopping cleanly (Ctrl-C again to quit at once)\n')).toBe(true);
  });
});

describe("CommonJS: require('blocksmith')", () => {
  // A project that depends on blocksmith: node_modules/blocksmith -> this package.
  let project: string;
  beforeAll(() => {
    project = join(dir, 'cjs-project');
    mkdirSync(join(project, 'node_modules'), { recursive: true });
    symlinkSync(repoRoot, join(project, 'node_modules', 'blocksmith'));
  });

  it('gives the ES module itself where Node can require() ES modules (>= 20.19 / 22.12): the same object as import()', () => {
    const r = spawnSync(
      process.execPath,
      ['-e', "const b = require('blocksmith'); import('blocksmith').then((m) => console.log(typeof b.sparsify, typeof b.carve, b.parseSize('4K'), m === b))"],
      { encoding: 'utf8', cwd: project },
    );
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('function function 4096 true\n');
  });

  it('fails with one line saying the package is an ES module and how to import it where Node cannot', () => {
    const r = spawnSync(process.execPath, ['--no-experimental-require-module', '-e', "try { require('blocksmith') } catch (e) { console.log(e.code); console.log(e.message) }"], {
      encoding: 'utf8',
      cwd: project,
    });
    expect(r.stdout).toBe(
      "ERR_REQUIRE_ESM\nblocksmith is an ES module package and this Node cannot require() it: use `const blocksmith = await import('blocksmith')` (or Node >= 20.19 / 22.12, where require('blocksmith') works)\n",
    );
    expect(r.stdout).not.toContain('No "exports" main defined');
  });
});
