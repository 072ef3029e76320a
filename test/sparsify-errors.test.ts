// Bad input and hostile environments: each is exit 1 with one clear line on
// stderr naming the errno, and nothing changes (no punch, no target, no
// temporary file).
import { chmodSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  KiB,
  MiB,
  allocated,
  data,
  isOneLine,
  listDir,
  makeTempDir,
  mount,
  mountVfat,
  removeDir,
  run,
  runCli,
  sha256,
  unmount,
  writeImage,
  zeros,
} from './helpers/sparsify.js';

let dir: string;
beforeEach(() => {
  dir = makeTempDir('errors');
});
afterEach(() => removeDir(dir));

/** 1 MiB data, 1 MiB allocated zeros, 1 MiB data: something to punch. */
function makeImage(path = `${dir}/vm.raw`): string {
  writeImage(path, 3 * MiB, [data(0, 1 * MiB), zeros(1 * MiB, 1 * MiB), data(2 * MiB, 1 * MiB)]);
  expect(allocated(path)).toBe(3 * MiB);
  return path;
}

function expectFailure(r: { code: number | null; stderr: string; stdout: string }, code: string, ...mentions: string[]): void {
  expect(r.code).toBe(1);
  expect(isOneLine(r.stderr), `stderr: ${JSON.stringify(r.stderr)}`).toBe(true);
  expect(r.stderr).toMatch(/^sparsify: /);
  expect(r.stderr).toContain(`(${code})`);
  for (const m of mentions) expect(r.stderr).toContain(m);
  expect(r.stdout).toBe('');
}

describe('in place: bad paths', () => {
  it('a missing path: ENOENT, nothing created', async () => {
    const path = `${dir}/missing.raw`;

    const r = await runCli([path]);

    expectFailure(r, 'ENOENT', path);
    expect(existsSync(path)).toBe(false);
    expect(listDir(dir)).toEqual([]);
  });

  it('a directory: EISDIR, the directory unchanged', async () => {
    const sub = `${dir}/images`;
    mkdirSync(sub);
    const img = makeImage(`${sub}/vm.raw`);
    const before = await sha256(img);

    const r = await runCli([sub]);

    expectFailure(r, 'EISDIR', sub);
    expect(listDir(sub)).toEqual(['vm.raw']);
    expect(await sha256(img)).toBe(before);
  });

  it('/dev/null (a character device): ENOTBLK', async () => {
    const r = await runCli(['/dev/null']);

    expectFailure(r, 'ENOTBLK', '/dev/null');
    expect(statSync('/dev/null').isCharacterDevice()).toBe(true);
  });

  it('an immutable file (chattr +i): EPERM, content and allocation unchanged', async () => {
    const img = makeImage();
    const before = await sha256(img);
    run('chattr', ['+i', img]);
    try {
      const r = await runCli([img]);

      expectFailure(r, 'EPERM', img);
      expect(r.stderr).toContain('for writing');
      expect(allocated(img)).toBe(3 * MiB);
      expect(await sha256(img)).toBe(before);
    } finally {
      run('chattr', ['-i', img]);
    }
  });

  it('a root-owned 0644 file when run as nobody (setpriv): EACCES, content and allocation unchanged', async () => {
    const img = makeImage();
    chmodSync(img, 0o644);
    const before = await sha256(img);

    const r = await runCli([img], { prefix: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] });

    expectFailure(r, 'EACCES', img);
    expect(r.stderr).toContain('for writing');
    expect(allocated(img)).toBe(3 * MiB);
    expect(await sha256(img)).toBe(before);
  });

  it('a file on a filesystem that cannot punch holes (vfat): EOPNOTSUPP, content unchanged', async () => {
    const mnt = `${dir}/mnt`;
    mkdirSync(mnt);
    try {
      mountVfat(`${dir}/vfat.img`, mnt, 16);
      const img = `${mnt}/vm.raw`;
      writeImage(img, 3 * MiB, [data(0, 1 * MiB), zeros(1 * MiB, 1 * MiB), data(2 * MiB, 1 * MiB)]);
      const before = await sha256(img);
      const allocatedBefore = allocated(img);

      const r = await runCli([img]);

      expectFailure(r, 'EOPNOTSUPP', img);
      expect(r.stderr).toContain('does not support punching holes');
      expect(await sha256(img)).toBe(before);
      expect(allocated(img)).toBe(allocatedBefore);
    } finally {
      unmount(mnt);
    }
  });

  it('an invalid --block-size is a usage error (exit 2) and changes nothing', async () => {
    const img = makeImage();
    const before = await sha256(img);

    const r = await runCli(['--block-size', '3000', img]);

    expect(r.code).toBe(2);
    expect(r.stderr).toContain('block size');
    expect(allocated(img)).toBe(3 * MiB);
    expect(await sha256(img)).toBe(before);
  });

  it('--overwrite without a target is a usage error (exit 2) and changes nothing', async () => {
    const img = makeImage();
    const before = await sha256(img);

    const r = await runCli(['--overwrite', img]);

    expect(r.code).toBe(2);
    expect(allocated(img)).toBe(3 * MiB);
    expect(await sha256(img)).toBe(before);
  });
});

describe('copy: the target side fails', () => {
  it('a full filesystem (32 MiB of data into an 8 MiB tmpfs): ENOSPC, no target, no temporary file, source unchanged', async () => {
    const src = `${dir}/src.raw`;
    writeImage(src, 32 * MiB, [data(0, 32 * MiB)]);
    const before = await sha256(src);
    const mnt = `${dir}/small`;
    mkdirSync(mnt);
    try {
      mount('tmpfs', mnt, ['-t', 'tmpfs', '-o', 'size=8M']);

      const r = await runCli([src, `${mnt}/copy.raw`]);

      expectFailure(r, 'ENOSPC', `${mnt}/copy.raw`);
      expect(listDir(mnt)).toEqual([]);
      // the space is given back: nothing hidden holds it
      expect(Number(run('df', ['--output=used', '-B1', mnt]).stdout.split('\n')[1]!.trim())).toBe(0);
    } finally {
      unmount(mnt);
    }
    expect(await sha256(src)).toBe(before);
  });

  it('RLIMIT_FSIZE of 1 MiB with data beyond it: EFBIG (not killed by SIGXFSZ), no target', async () => {
    const src = `${dir}/src.raw`;
    writeImage(src, 4 * MiB, [data(0, 4 * MiB)]);
    const before = await sha256(src);
    const out = `${dir}/out`;
    mkdirSync(out);

    const r = await runCli([src, `${out}/copy.raw`], { prefix: ['prlimit', '--fsize=1048576'] });

    expect(r.signal).toBeNull();
    expectFailure(r, 'EFBIG', `${out}/copy.raw`);
    expect(listDir(out)).toEqual([]);
    expect(await sha256(src)).toBe(before);
  });

  it('RLIMIT_FSIZE of 1 MiB with all data below it but a 4 MiB size: EFBIG when sizing the copy, no target', async () => {
    const src = `${dir}/src.raw`;
    writeImage(src, 4 * MiB, [data(0, 64 * KiB)]);
    const before = await sha256(src);
    const out = `${dir}/out`;
    mkdirSync(out);

    const r = await runCli([src, `${out}/copy.raw`], { prefix: ['prlimit', '--fsize=1048576'] });

    expect(r.signal).toBeNull();
    expectFailure(r, 'EFBIG', `${out}/copy.raw`);
    expect(listDir(out)).toEqual([]);
    expect(await sha256(src)).toBe(before);
  });

  it('a target directory that does not exist: ENOENT, source unchanged', async () => {
    const src = makeImage(`${dir}/src.raw`);
    const before = await sha256(src);

    const r = await runCli([src, `${dir}/nope/copy.raw`]);

    expectFailure(r, 'ENOENT');
    expect(listDir(dir)).toEqual(['src.raw']);
    expect(await sha256(src)).toBe(before);
  });

  it('a target directory not writable for the user (nobody): EACCES, nothing created', async () => {
    const src = makeImage(`${dir}/src.raw`);
    chmodSync(src, 0o644);
    const before = await sha256(src);
    const out = `${dir}/out`;
    mkdirSync(out);
    chmodSync(out, 0o755);

    const r = await runCli([src, `${out}/copy.raw`], { prefix: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] });

    expectFailure(r, 'EACCES', out);
    expect(listDir(out)).toEqual([]);
    expect(await sha256(src)).toBe(before);
  });
});
