// qcow2 backing files are data from the image, which may be untrusted (a
// tenant's upload). By default only regular files inside the top image's
// directory tree are followed, judged on the file actually opened (symlinks
// and '..' resolved); a device, or a file elsewhere on the host, is refused
// with one line naming the image and the backing file, and nothing is
// written. --allow-backing-dir DIR / --allow-backing (allowBacking in the
// library) follow them. Every report and `info` name the chain: the name as
// written, the file opened, its format. (RBD import: test/qcow2-rbd.test.ts.)
import { existsSync, mkdirSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { info, sparseCopy } from '../src/index.js';
import {
  MiB,
  attachLoop,
  blocksmithCli,
  dataBytes,
  detachLoop,
  isOneLine,
  makeTempDir,
  removeDir,
  run,
  runCli,
  sha256,
  sizeOf,
} from './helpers/sparsify.js';

let dir: string; // the images' directory
let elsewhere: string; // another directory on the host
let loop: string | undefined;

function qemuImg(...args: string[]): string {
  return run('qemu-img', args).stdout;
}
function qemuIo(image: string, cmds: string[], format = 'qcow2'): void {
  run('qemu-io', ['-f', format, ...cmds.flatMap((c) => ['-c', c]), image]);
}
/** An overlay naming `backing` exactly as given (-u: qemu-img does not open it). */
function overlay(path: string, backing: string, backingFormat: string, size = '4M'): string {
  qemuImg('create', '-q', '-u', '-f', 'qcow2', '-b', backing, '-F', backingFormat, path, size);
  return path;
}
/** 1 MiB of recognisable data in a raw file. */
function secretFile(path: string, seed: number): string {
  writeFileSync(path, dataBytes(MiB, seed));
  return path;
}

/** Errors are named after the program the user ran: `blocksmith sparsify ...` -> "blocksmith:". */
function prog(_args: string[]): string {
  return 'blocksmith';
}

async function expectRefused(args: string[], message: string): Promise<void> {
  const r = await runCli(args, { cli: blocksmithCli });
  expect(r.code, r.stderr).toBe(1);
  expect(isOneLine(r.stderr), r.stderr).toBe(true);
  expect(r.stderr).toBe(`${prog(args)}: ${message} (ERR_BACKING_REFUSED)\n`);
  expect(r.stdout).toBe('');
}

/** blocksmith sparsify --json [extra] IMAGE OUT: exit 0, and the copy equals qemu-img convert's. */
async function copyMatchesQemu(image: string, extra: string[]): Promise<{ backingChain: unknown }> {
  const out = join(dir, 'copy.raw');
  const ref = join(dir, 'ref.raw');
  const r = await runCli(['sparsify', '--json', '--overwrite', ...extra, image, out], { cli: blocksmithCli });
  expect(r.code, r.stderr).toBe(0);
  qemuImg('convert', '-O', 'raw', image, ref);
  expect(sizeOf(out)).toBe(sizeOf(ref));
  expect(await sha256(out)).toBe(await sha256(ref));
  return JSON.parse(r.stdout) as { backingChain: unknown };
}

beforeAll(() => {
  dir = realpathSync(makeTempDir('qcow2-backing'));
  elsewhere = realpathSync(makeTempDir('qcow2-elsewhere'));
});
afterAll(() => {
  detachLoop(loop);
  removeDir(dir);
  removeDir(elsewhere);
});

describe('backing files that lead out of the image are refused by default', () => {
  it('a block device (a loop device of a host file): info, map and copy refuse, nothing is written; --allow-backing follows it, byte-equal to qemu-img convert', async () => {
    const secret = secretFile(join(elsewhere, 'host-secret.raw'), 11);
    loop = attachLoop(secret, { readOnly: true });
    const evil = overlay(join(dir, 'evil.qcow2'), loop, 'raw', '8M');
    const out = join(dir, 'evil.raw');
    const message = `'${evil}' has backing file '${loop}', a block device: refused (a backing file must be a regular file; --allow-backing follows it anyway)`;
    await expectRefused(['info', evil], message);
    await expectRefused(['map', evil], message);
    await expectRefused(['sparsify', evil, out], message);
    await expectRefused(['sparsify', '--allow-backing-dir', '/dev', evil, out], message); // a directory allows files, never devices
    expect(existsSync(out)).toBe(false);
    await expect(info(evil)).rejects.toMatchObject({ code: 'ERR_BACKING_REFUSED', errno: -1, path: evil });

    const report = await copyMatchesQemu(evil, ['--allow-backing']);
    expect(report.backingChain).toEqual([{ name: loop, path: loop, format: 'raw' }]);
    expect(await sha256(join(dir, 'copy.raw'), { end: MiB })).toBe(await sha256(secret));
    expect((await info(evil, { allowBacking: true })).image.backingChain).toEqual([{ name: loop, path: loop, format: 'raw' }]);
  });

  it('a file elsewhere on the host: an absolute path, a ../ path, a symlink in the directory pointing out; --allow-backing-dir DIR follows them', async () => {
    const host = secretFile(join(elsewhere, 'host.raw'), 12);
    mkdirSync(join(dir, 'sub'));
    const sibling = secretFile(join(dir, 'sibling.raw'), 13);
    const abs = overlay(join(dir, 'abs.qcow2'), host, 'raw');
    const up = overlay(join(dir, 'sub', 'up.qcow2'), '../sibling.raw', 'raw');
    symlinkSync(host, join(dir, 'link.raw'));
    const sym = overlay(join(dir, 'sym.qcow2'), 'link.raw', 'raw');
    const how = 'refused (--allow-backing-dir DIR allows another directory; --allow-backing follows it anyway)';
    await expectRefused(['info', abs], `'${abs}' has backing file '${host}', which resolves to ${host}, outside ${dir} (the directory of '${abs}'): ${how}`);
    await expectRefused(
      ['info', up],
      `'${up}' has backing file '../sibling.raw', which resolves to ${sibling}, outside ${dir}/sub (the directory of '${up}'): ${how}`,
    );
    const symMessage = `'${sym}' has backing file 'link.raw', which resolves to ${host}, outside ${dir} (the directory of '${sym}'): ${how}`;
    await expectRefused(['info', sym], symMessage);
    await expectRefused(['sparsify', sym, join(dir, 'sym.raw')], symMessage);
    expect(existsSync(join(dir, 'sym.raw'))).toBe(false);

    expect((await copyMatchesQemu(abs, ['--allow-backing-dir', elsewhere])).backingChain).toEqual([{ name: host, path: host, format: 'raw' }]);
    expect((await copyMatchesQemu(sym, ['--allow-backing-dir', elsewhere])).backingChain).toEqual([{ name: 'link.raw', path: host, format: 'raw' }]);
    expect((await copyMatchesQemu(up, ['--allow-backing-dir', dir])).backingChain).toEqual([{ name: '../sibling.raw', path: sibling, format: 'raw' }]);
    const lib = await sparseCopy(sym, join(dir, 'lib.raw'), { allowBacking: [elsewhere] });
    expect(lib.backingChain).toEqual([{ name: 'link.raw', path: host, format: 'raw' }]);
    await expect(sparseCopy(sym, join(dir, 'lib2.raw'), { allowBacking: [join(dir, 'sub')] })).rejects.toMatchObject({ code: 'ERR_BACKING_REFUSED' });
    expect(existsSync(join(dir, 'lib2.raw'))).toBe(false);
  });
});

describe('a chain inside the image\'s directory is followed and named everywhere', () => {
  it('top -> images/mid.qcow2 -> base.qcow2 (and a symlink that stays inside): info, info --json, map, the copy report and --json name each link', async () => {
    const chain = join(dir, 'chain');
    mkdirSync(join(chain, 'images'), { recursive: true });
    const base = join(chain, 'images', 'base.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', base, '16M');
    qemuIo(base, ['write -P 0xab 0 1M', 'write -P 0x11 8M 64k']);
    symlinkSync('base.qcow2', join(chain, 'images', 'base-alias.qcow2'));
    const mid = overlay(join(chain, 'images', 'mid.qcow2'), 'base-alias.qcow2', 'qcow2', '16M');
    qemuIo(mid, ['write -P 0xcd 512k 64k', 'write -z 8M 64k']);
    const top = overlay(join(chain, 'top.qcow2'), 'images/mid.qcow2', 'qcow2', '16M');
    qemuIo(top, ['write -P 0xee 2M 4k']);
    const links = [
      { name: 'images/mid.qcow2', path: mid, format: 'qcow2' },
      { name: 'base-alias.qcow2', path: base, format: 'qcow2' },
    ];
    const lines = [`backing file: images/mid.qcow2 (${mid}, qcow2)`, `backing file: base-alias.qcow2 (${base}, qcow2)`];

    const text = await runCli(['info', top], { cli: blocksmithCli });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout.split('\n').filter((l) => l.startsWith('backing file:'))).toEqual(lines);
    const json = await runCli(['info', '--json', top], { cli: blocksmithCli });
    expect(JSON.parse(json.stdout).image.backingChain).toEqual(links);
    const map = await runCli(['map', top], { cli: blocksmithCli });
    expect(map.stdout.split('\n').filter((l) => l.startsWith('# backing file:'))).toEqual(lines.map((l) => `# ${l}`));

    expect((await copyMatchesQemu(top, [])).backingChain).toEqual(links);
    const copyText = await runCli(['sparsify', '--overwrite', top, join(dir, 'chain.raw')], { cli: blocksmithCli });
    expect(copyText.code, copyText.stderr).toBe(0);
    expect(copyText.stdout.split('\n').slice(1, 3)).toEqual(lines.map((l) => `  ${l}`));
    const dry = await runCli(['sparsify', '--json', '--dry-run', top, join(dir, 'never.raw')], { cli: blocksmithCli });
    expect(JSON.parse(dry.stdout).backingChain).toEqual(links);
    // A raw source has no chain; its report says so.
    const raw = await runCli(['sparsify', '--json', '--overwrite', join(dir, 'chain.raw'), join(dir, 'chain2.raw')], { cli: blocksmithCli });
    expect(JSON.parse(raw.stdout).backingChain).toEqual([]);
  });
});

describe('limits that hold whatever the policy', () => {
  it('32 backing files are followed, a 33rd is refused (ELOOP); a loop is refused even with --allow-backing', async () => {
    const deep = join(dir, 'deep');
    mkdirSync(deep);
    secretFile(join(deep, 'l0.img'), 14);
    for (let i = 1; i <= 33; i++) overlay(join(deep, `l${i}.qcow2`), i === 1 ? 'l0.img' : `l${i - 1}.qcow2`, i === 1 ? 'raw' : 'qcow2', '1M');
    const ok = await runCli(['info', join(deep, 'l32.qcow2')], { cli: blocksmithCli });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout.split('\n').filter((l) => l.startsWith('backing file:'))).toHaveLength(32);
    const tooDeep = await runCli(['info', '--allow-backing', join(deep, 'l33.qcow2')], { cli: blocksmithCli });
    expect(tooDeep.code).toBe(1);
    expect(tooDeep.stderr).toBe(`blocksmith: '${join(deep, 'l1.qcow2')}': the backing chain is deeper than 32 images (ELOOP)\n`);

    const a = join(deep, 'loop-a.qcow2');
    const b = overlay(join(deep, 'loop-b.qcow2'), 'loop-a.qcow2', 'qcow2', '1M');
    overlay(a, 'loop-b.qcow2', 'qcow2', '1M');
    const loopRun = await runCli(['info', '--allow-backing', b], { cli: blocksmithCli });
    expect(loopRun.code).toBe(1);
    expect(loopRun.stderr).toMatch(/^blocksmith: backing file loop: '.*loop-b\.qcow2' is already in the chain of this image \(ELOOP\)\n$/);
  });

  it('an external data file is refused, wherever it is', async () => {
    const img = join(dir, 'datafile.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-o', `data_file=${join(dir, 'datafile.raw')}`, img, '4M');
    const out = join(dir, 'datafile-copy.raw');
    const r = await runCli(['sparsify', '--allow-backing', img, out], { cli: blocksmithCli });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`blocksmith: '${img}': the image keeps its data in an external data file, which is not supported (ERR_QCOW2_UNSUPPORTED)\n`);
    expect(existsSync(out)).toBe(false);
  });
});
