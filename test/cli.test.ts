import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpuFeatures, defaults, info, mapExtents } from '../src/index.js';
import { cliPath, GiB, KiB, lines, makeTempDir, MiB, pattern, removeDir, repoRoot, runCli, spawnSyncOk, writeLayout, zerosWith } from './helpers/foundation.js';

let dir: string;
let image: string;
const size = 6 * MiB + 512;

beforeAll(() => {
  dir = makeTempDir('cli');
  image = join(dir, 'vm.raw');
  // data [0, 4K) | hole | zeros [1M, 1M+128K) | data [2M, 2M+8K) | hole to 6M+512 (not a multiple of 4K)
  writeLayout(image, size, [
    { offset: 0, bytes: pattern(4 * KiB) },
    { offset: 1 * MiB, bytes: Buffer.alloc(128 * KiB) },
    { offset: 2 * MiB, bytes: zerosWith(8 * KiB, [0, 8 * KiB - 1], 0x5a) },
  ]);
});
afterAll(() => removeDir(dir));

describe('blocksmith info', () => {
  it('--json prints the exact integers of info() and nothing on stderr', async () => {
    const r = await runCli(['info', '--json', image]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const printed = JSON.parse(r.stdout);
    expect(printed).toEqual(await info(image));
    expect(printed).toMatchObject({
      kind: 'file',
      virtualSize: size,
      dataBytes: 12 * KiB,
      zeroBytes: 128 * KiB,
      holeBytes: size - 140 * KiB,
      blockSize: 4096,
      extentCount: 6,
    });
    for (const k of ['virtualSize', 'allocatedSize', 'holeBytes', 'zeroBytes', 'dataBytes', 'blockSize', 'extentCount']) {
      expect(Number.isSafeInteger(printed[k]), k).toBe(true);
    }
  });

  it('--json passes --block-size and --no-seek-hole through', async () => {
    const r = await runCli(['info', '--json', '--block-size', '64K', '--no-seek-hole', image]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(await info(image, { blockSize: 65536, seekHole: false }));
    expect(JSON.parse(r.stdout)).toMatchObject({ blockSize: 65536, holeBytes: 0, dataBytes: 128 * KiB });
  });

  it('prints the human summary with exact byte counts', async () => {
    const r = await runCli(['info', image]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const out = lines(r.stdout);
    expect(out[0]).toBe(`image: ${image}`);
    expect(out).toContain('kind: regular file');
    expect(out).toContain(`virtual size: 6.00 MiB (${size} bytes)`);
    expect(out).toContain('block size: 4.00 KiB');
  });

  it('--verbose shows the extent count and the zero kernel in use', async () => {
    const r = await runCli(['info', '--verbose', image]);
    expect(r.code).toBe(0);
    const f = cpuFeatures();
    expect(r.stdout).toContain('extents: 6\n');
    expect(r.stdout).toContain(`zero kernel: ${f.zeroKernel} (available: ${f.availableZeroKernels.join(', ')}; arch ${f.arch})\n`);
  });

  it('--json --verbose adds zeroKernel', async () => {
    const r = await runCli(['info', '--json', '--verbose', image]);
    expect(JSON.parse(r.stdout)).toEqual({ ...(await info(image)), zeroKernel: cpuFeatures().zeroKernel });
  });
});

describe('blocksmith map', () => {
  it('--json prints a JSON array of {offset, length, kind}, equal to mapExtents()', async () => {
    const r = await runCli(['map', '--json', image]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const extents = JSON.parse(r.stdout);
    expect(extents).toEqual([
      { offset: 0, length: 4 * KiB, kind: 'data' },
      { offset: 4 * KiB, length: 1 * MiB - 4 * KiB, kind: 'hole' },
      { offset: 1 * MiB, length: 128 * KiB, kind: 'zero' },
      { offset: 1 * MiB + 128 * KiB, length: 1 * MiB - 128 * KiB, kind: 'hole' },
      { offset: 2 * MiB, length: 8 * KiB, kind: 'data' },
      { offset: 2 * MiB + 8 * KiB, length: size - 2 * MiB - 8 * KiB, kind: 'hole' },
    ]);
    for (const e of extents) expect(Object.keys(e)).toEqual(['offset', 'length', 'kind']);
    expect(extents).toEqual((await mapExtents(image)).extents);
  });

  it('--json of an empty file is []', async () => {
    const empty = join(dir, 'empty.raw');
    writeLayout(empty, 0, []);
    const r = await runCli(['map', '--json', empty]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([]);
  });

  it('prints a text table with one row per extent and a totals line', async () => {
    const r = await runCli(['map', image]);
    expect(r.code).toBe(0);
    const out = lines(r.stdout);
    expect(out[0]).toMatch(/^\s*offset\s+length\s+kind$/);
    expect(out.slice(1, -1).map((l) => l.trim().split(/\s+/))).toEqual(
      (await mapExtents(image)).extents.map((e) => [String(e.offset), String(e.length), e.kind]),
    );
    expect(out.at(-1)).toMatch(/^# 6 extents: /);
  });

  it('--svg FILE writes an SVG picture with the three legend classes', async () => {
    const svgPath = join(dir, 'vm.svg');
    const r = await runCli(['map', '--svg', svgPath, '--json', image]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toHaveLength(6);
    const svg = readFileSync(svgPath, 'utf8');
    expect(svg.startsWith('<svg ')).toBe(true);
    expect(svg).toContain('xmlns="http://www.w3.org/2000/svg"');
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    for (const cls of ['legend-data', 'legend-zero', 'legend-hole']) expect(svg).toContain(`class="${cls}"`);
    // XML-ish: every tag is closed or self-closing, attributes are quoted, no bare '&' or '<' in text.
    const open: string[] = [];
    for (const m of svg.matchAll(/<(\/?)([a-zA-Z]+)((?:\s+[a-zA-Z:-]+="[^"<]*")*)\s*(\/?)>/g)) {
      const [, closing, name, , self] = m;
      if (self) continue;
      if (closing) expect(open.pop()).toBe(name);
      else open.push(name!);
    }
    expect(open).toEqual([]);
    const stripped = svg.replace(/<(\/?)([a-zA-Z]+)((?:\s+[a-zA-Z:-]+="[^"<]*")*)\s*(\/?)>/g, '');
    expect(stripped).not.toMatch(/[<>]/);
    expect(stripped).not.toMatch(/&(?!(lt|gt|amp|apos|quot);)/);
  });
});

describe('help, version, progress', () => {
  it('--version prints the package.json version', async () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = await runCli([flag]);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`${pkg.version}\n`);
    }
  });

  it('--version answers without the addon (before it loads): a version check works where the addon cannot load', async () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    // node-gyp-build's own overrides: prebuilds only, from an empty directory: no addon to load.
    const env = { ...process.env, PREBUILDS_ONLY: '1', BLOCKSMITH_PREBUILD: dir };
    const noAddon = await runCli(['info', image], { env });
    expect(noAddon.code).toBe(1);
    expect(noAddon.stderr).toMatch(/^blocksmith: the native addon is not built \(no build\/Release\/blocksmith\.node and no prebuild for linux-x64 in .*\n$/);
    for (const bin of ['blocksmith', 'sparsify', 'carve']) {
      for (const flag of ['--version', '-V']) {
        const r = spawnSync(process.execPath, [join(repoRoot, 'dist', 'cli', 'bin', `${bin}.js`), flag, '--no-such-option'], { encoding: 'utf8', env });
        expect({ bin, flag, status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ bin, flag, status: 0, stdout: `${pkg.version}\n`, stderr: '' });
      }
    }
  });

  it.each(['info', 'map'])('%s --help exits 0 with usage and Examples:', async (cmd) => {
    const r = await runCli([cmd, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Usage: blocksmith ${cmd} [options] <path>`);
    expect(r.stdout).toContain('Examples:');
    expect(r.stdout).toContain(`$ blocksmith ${cmd} `);
    for (const opt of ['--block-size', '--no-seek-hole', '--json', '--quiet', '--debug']) expect(r.stdout).toContain(opt);
  });

  it("--help shows each option's default as the core defines it (the addon's defaults), and a library call without an option gets that default", async () => {
    // The core's option structs: 4 KiB blocks, 16 RBD writes in flight of at most 2 MiB, 30 s timeout; carve limits.
    expect(defaults.scan.blockSize).toBe(4 * KiB);
    expect(defaults.rbdImport).toMatchObject({ parallel: 16, writeSize: 2 * MiB, objectSize: 0, features: 0, blockSize: 4 * KiB });
    expect(defaults.rbdTarget.timeout).toBe(30);
    expect(defaults.carve).toMatchObject({ sectorSize: 1, maxSize: 256 * MiB, maxGap: 32 * MiB, maxAttempts: 50000, partials: true, reassemble: true });
    const help = async (...args: string[]) => (await runCli([...args, '--help'])).stdout.replace(/\s+/g, ' ');
    expect(await help('info')).toContain('power of two from 512 to 1M (default: "4K")');
    const rbdImport = await help('rbd', 'import');
    expect(rbdImport).toContain('RBD writes in flight (default: "16")');
    expect(rbdImport).toContain('at most the object size) (default: "2M")');
    expect(rbdImport).toContain('within this time (default: "30")');
    const carveHelp = await help('carve');
    expect(carveHelp).toContain('longest JPEG to follow (default 256M)');
    expect(carveHelp).toContain('previous one (default 32M)');
    expect(carveHelp).toContain('left partial (default 50000)');
    // No blockSize given: the addon gets undefined and the core's default is what the scan used.
    expect((await info(image)).blockSize).toBe(defaults.scan.blockSize);
  });

  it('draws no progress bar on stderr when stderr is not a terminal (a 1 GiB read)', async () => {
    const big = join(dir, 'big.raw');
    spawnSyncOk('truncate', ['-s', String(GiB), big]);
    for (const args of [['info', '--no-seek-hole', big], ['map', '--no-seek-hole', '--block-size', '1M', big]]) {
      const r = await runCli(args);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe('');
    }
  });

  it('draws the progress bar on a terminal, and not with --quiet or --json (run under script(1))', () => {
    const big = join(dir, 'big-tty.raw');
    spawnSyncOk('truncate', ['-s', String(GiB), big]);
    const onTty = (args: string) => {
      const r = spawnSync('script', ['-qec', `${process.execPath} ${cliPath} ${args} ${big}`, '/dev/null'], { encoding: 'utf8', cwd: repoRoot });
      if (r.error || r.status !== 0) throw new Error(`script(1) run failed: ${r.error?.message ?? r.stdout + r.stderr}`);
      return r.stdout; // the terminal's output: stdout and stderr together
    };
    expect(onTty('info --no-seek-hole')).toContain('scanning [');
    expect(onTty('info --quiet --no-seek-hole')).not.toContain('scanning [');
    const json = onTty('info --json --no-seek-hole');
    expect(json).not.toContain('scanning [');
    expect(JSON.parse(json.replace(/\r\n/g, '\n'))).toMatchObject({ virtualSize: GiB, zeroBytes: GiB });
  });
});
