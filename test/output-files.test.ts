// The rule for every file blocksmith writes (issue 14, case 1): never a block
// or character device, never the source (by st_dev/st_ino: also through a
// symlink or a hard link, also a qcow2's backing file), never an existing file
// without --overwrite, never through a symbolic link planted at the name, and
// a refusal creates nothing. For `map --svg` (src/output/output-file.ts) and for the
// sparse copies and RBD exports (native/core/sinks/sparse_file_sink.cc).
import { spawnSync } from 'node:child_process';
import { existsSync, linkSync, lstatSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createExclusive, writeNewFile } from '../src/output/output-file.js';
import { MiB, listDir, makeTempDir, removeDir, sha256 } from './helpers/sparsify.js';
import { pattern, repoRoot, spawnSyncOk, writeLayout } from './helpers/foundation.js';

const cli = (name: string) => join(repoRoot, 'dist', 'cli', 'bin', `${name}.js`);

/** Runs a CLI (blocksmith, sparsify) in `cwd`; never throws on a non-zero exit. */
function run(name: string, args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [cli(name), ...args], { encoding: 'utf8', cwd, timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let dir: string;
let image: string; // 8 MiB, 4 MiB of data
let loopBacking: string;
let loop = '';

beforeAll(() => {
  loopBacking = join(makeTempDir('outfiles-loop'), 'backing.raw');
  writeLayout(loopBacking, 4 * MiB, [{ offset: 0, bytes: pattern(4 * MiB, 3) }]);
  // Read-write on purpose: a write that got through would show in its hash.
  loop = spawnSyncOk('losetup', ['-f', '--show', loopBacking]).trim();
});

afterAll(() => {
  if (loop) spawnSync('losetup', ['-d', loop]);
  removeDir(join(loopBacking, '..'));
});

beforeEach(() => {
  dir = makeTempDir('outfiles');
  image = join(dir, 'vm.raw');
  writeLayout(image, 8 * MiB, [{ offset: 0, bytes: pattern(4 * MiB, 1) }]);
});

afterEach(() => removeDir(dir));

/** Expects a refusal: exit 1, exactly `line` on stderr, nothing on stdout, the directory and the protected files unchanged. */
async function expectRefused(r: { code: number | null; stdout: string; stderr: string }, line: string, unchanged: string[], before: string[]) {
  expect(r.stderr).toBe(line);
  expect(r.code).toBe(1);
  expect(r.stdout).toBe('');
  expect(listDir(dir)).toEqual(before);
  for (const f of unchanged) expect(await sha256(f), f).toBe(hashes.get(f));
}

const hashes = new Map<string, string>();
async function remember(...files: string[]) {
  for (const f of files) hashes.set(f, await sha256(f));
}

describe('map --svg OUT', () => {
  it.each([[[]], [['--overwrite']]])('never the image itself (%j): `map --svg vm.raw vm.raw` refuses, the image unchanged', async (flags) => {
    await remember(image);
    const before = listDir(dir);
    const r = run('blocksmith', ['map', ...flags, '--svg', 'vm.raw', 'vm.raw'], dir);
    await expectRefused(r, "blocksmith: refusing to write the SVG file 'vm.raw': it is the source 'vm.raw' (EINVAL)\n", [image], before);
  });

  it('never the image through a hard link or a symbolic link, even with --overwrite', async () => {
    linkSync(image, join(dir, 'hard.svg'));
    symlinkSync(image, join(dir, 'soft.svg'));
    await remember(image);
    const before = listDir(dir);
    const hard = run('blocksmith', ['map', '--overwrite', '--svg', 'hard.svg', 'vm.raw'], dir);
    await expectRefused(hard, "blocksmith: refusing to write the SVG file 'hard.svg': it is the source 'vm.raw' (EINVAL)\n", [image], before);
    const soft = run('blocksmith', ['map', '--overwrite', '--svg', 'soft.svg', 'vm.raw'], dir);
    await expectRefused(soft, "blocksmith: refusing to write the SVG file 'soft.svg': it is the source 'vm.raw' (through a symbolic link) (EINVAL)\n", [image], before);
    expect(lstatSync(join(dir, 'soft.svg')).isSymbolicLink()).toBe(true);
  });

  it('never a qcow2 image\'s backing file, even with --overwrite', async () => {
    spawnSyncOk('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', 'vm.raw', '-F', 'raw', join(dir, 'top.qcow2')]);
    await remember(image);
    const before = listDir(dir);
    const r = run('blocksmith', ['map', '--overwrite', '--svg', 'vm.raw', 'top.qcow2'], dir);
    await expectRefused(r, `blocksmith: refusing to write the SVG file 'vm.raw': it is a backing file of 'top.qcow2', opened as '${image}' (EINVAL)\n`, [image], before);
  });

  it.each([[[]], [['--overwrite']]])('never a block device (%j), also through a symbolic link: the device unchanged', async (flags) => {
    symlinkSync(loop, join(dir, 'dev.svg'));
    await remember(loop, image);
    const before = listDir(dir);
    const direct = run('blocksmith', ['map', ...flags, '--svg', loop, 'vm.raw'], dir);
    await expectRefused(direct, `blocksmith: refusing to write the SVG file '${loop}': it is a block device; blocksmith never writes an output file onto a device (EINVAL)\n`, [loop, image], before);
    const linked = run('blocksmith', ['map', ...flags, '--svg', 'dev.svg', 'vm.raw'], dir);
    await expectRefused(linked, "blocksmith: refusing to write the SVG file 'dev.svg': it is a block device (through a symbolic link); blocksmith never writes an output file onto a device (EINVAL)\n", [loop, image], before);
  });

  it('never a character device: /dev/null is not replaced', async () => {
    const r = run('blocksmith', ['map', '--overwrite', '--svg', '/dev/null', 'vm.raw'], dir);
    expect(r.stderr).toBe("blocksmith: refusing to write the SVG file '/dev/null': it is a character device; blocksmith never writes an output file onto a device (EINVAL)\n");
    expect(r.code).toBe(1);
    expect(statSync('/dev/null').isCharacterDevice()).toBe(true);
  });

  it('an existing file needs --overwrite; with it the file is replaced whole (a new inode, no temporary left)', async () => {
    const svg = join(dir, 'vm.svg');
    writeFileSync(svg, 'keep me');
    const before = listDir(dir);
    const refused = run('blocksmith', ['map', '--svg', 'vm.svg', 'vm.raw'], dir);
    expect(refused.stderr).toBe("blocksmith: SVG file 'vm.svg' exists (use --overwrite to replace it) (EEXIST)\n");
    expect(refused.code).toBe(1);
    expect(readFileSync(svg, 'utf8')).toBe('keep me');
    const oldIno = statSync(svg).ino;
    const replaced = run('blocksmith', ['map', '--overwrite', '--svg', 'vm.svg', 'vm.raw'], dir);
    expect(replaced.stderr).toBe('');
    expect(replaced.code).toBe(0);
    expect(readFileSync(svg, 'utf8')).toMatch(/^<svg [^]*<\/svg>\n?$/);
    expect(statSync(svg).ino).not.toBe(oldIno); // renamed into place, not written in place
    expect(listDir(dir)).toEqual(before);
  });

  it('a new file is created, nothing else', async () => {
    const before = listDir(dir);
    const r = run('blocksmith', ['map', '--svg', 'new.svg', 'vm.raw'], dir);
    expect(r.code).toBe(0);
    expect(listDir(dir)).toEqual([...before, 'new.svg'].sort());
  });

  it.each([[[]], [['--overwrite']]])('a symbolic link planted at the name (%j) is neither followed nor replaced; nothing is created', async (flags) => {
    const victim = join(dir, 'victim.txt');
    writeFileSync(victim, 'precious');
    symlinkSync(victim, join(dir, 'to-victim.svg'));
    symlinkSync(join(dir, 'created-through-link'), join(dir, 'dangling.svg'));
    await remember(victim, image);
    const before = listDir(dir);
    const code = flags.length ? 'ELOOP' : 'EEXIST';
    for (const name of ['to-victim.svg', 'dangling.svg']) {
      const r = run('blocksmith', ['map', ...flags, '--svg', name, 'vm.raw'], dir);
      await expectRefused(r, `blocksmith: refusing to write the SVG file '${name}': it is a symbolic link (not followed, not replaced) (${code})\n`, [victim, image], before);
    }
    expect(existsSync(join(dir, 'created-through-link'))).toBe(false);
  });

  it('--overwrite without --svg is a usage error', () => {
    const r = run('blocksmith', ['map', '--overwrite', 'vm.raw'], dir);
    expect(r.stderr).toBe('blocksmith: --overwrite applies to --svg FILE only\n');
    expect(r.code).toBe(2);
  });
});

describe('the primitives (src/output/output-file.ts)', () => {
  it('createExclusive (used for new files and temporary names) refuses a planted link, dangling or not, and a file', async () => {
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'precious');
    symlinkSync(victim, join(dir, 'link'));
    symlinkSync(join(dir, 'through'), join(dir, 'dangling'));
    for (const name of ['link', 'dangling', 'victim']) {
      await expect(createExclusive(join(dir, name)), name).rejects.toMatchObject({ code: 'EEXIST' });
    }
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    expect(existsSync(join(dir, 'through'))).toBe(false);
  });

  it('a failed write (ENOSPC) removes the file it created', async () => {
    const mnt = join(dir, 'mnt');
    spawnSyncOk('mkdir', [mnt]);
    spawnSyncOk('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt]);
    try {
      await expect(writeNewFile(join(mnt, 'big.svg'), Buffer.alloc(1 << 20, 0x41), { what: 'SVG' })).rejects.toMatchObject({ code: 'ENOSPC' });
      await expect(writeNewFile(join(mnt, 'big2.svg'), Buffer.alloc(1 << 20, 0x41), { what: 'SVG', overwrite: true })).rejects.toMatchObject({ code: 'ENOSPC' });
      expect(listDir(mnt)).toEqual([]);
    } finally {
      spawnSync('umount', [mnt]);
    }
  });
});

describe('sparse copies (sparsify SRC DST) and RBD exports: the same rule', () => {
  it.each([[[]], [['--overwrite']]])('never onto a block device (%j), also through a symbolic link: the device unchanged, nothing created', async (flags) => {
    symlinkSync(loop, join(dir, 'dev-link.raw'));
    await remember(loop, image);
    const before = listDir(dir);
    const direct = run('sparsify', [...flags, 'vm.raw', loop], dir);
    await expectRefused(direct, `sparsify: refusing to write the copy to '${loop}': it is a block device; a copy is never written onto a device (EINVAL)\n`, [loop, image], before);
    const linked = run('sparsify', [...flags, 'vm.raw', 'dev-link.raw'], dir);
    await expectRefused(linked, "sparsify: refusing to write the copy to 'dev-link.raw': it is a block device (through a symbolic link); a copy is never written onto a device (EINVAL)\n", [loop, image], before);
  });

  it('never onto the source through a hard link, even with --overwrite', async () => {
    linkSync(image, join(dir, 'hard.raw'));
    await remember(image);
    const before = listDir(dir);
    const r = run('sparsify', ['--overwrite', 'vm.raw', 'hard.raw'], dir);
    await expectRefused(r, "sparsify: refusing to write the copy to 'hard.raw': it is the source 'vm.raw' (EINVAL)\n", [image], before);
  });

  it('never onto a qcow2\'s backing file with --overwrite (it used to replace it: the qcow2\'s disk changed)', async () => {
    const top = join(dir, 'top.qcow2');
    spawnSyncOk('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', 'vm.raw', '-F', 'raw', top]);
    spawnSyncOk('qemu-io', ['-c', 'write -P 0x55 0 1M', top]);
    await remember(image, top);
    const before = listDir(dir);
    const r = run('sparsify', ['--overwrite', 'top.qcow2', 'vm.raw'], dir);
    await expectRefused(r, `sparsify: refusing to write the copy to 'vm.raw': it is a backing file of 'top.qcow2', opened as '${image}' (EINVAL)\n`, [image, top], before);
  });

  it.each([[[]], [['--overwrite']]])('a symbolic link planted at the target (%j) is refused before any work; nothing is created', async (flags) => {
    const victim = join(dir, 'victim.raw');
    writeFileSync(victim, 'precious');
    symlinkSync(victim, join(dir, 'to-victim.raw'));
    symlinkSync(join(dir, 'created-through-link'), join(dir, 'dangling.raw'));
    await remember(victim, image);
    const before = listDir(dir);
    const code = flags.length ? 'ELOOP' : 'EEXIST';
    for (const name of ['to-victim.raw', 'dangling.raw']) {
      const r = run('sparsify', [...flags, 'vm.raw', name], dir);
      await expectRefused(r, `sparsify: refusing to write the copy to '${name}': it is a symbolic link (not followed, not replaced) (${code})\n`, [victim, image], before);
    }
    expect(existsSync(join(dir, 'created-through-link'))).toBe(false);
  });

  it('a dry run refuses what the real run would refuse (an existing target without --overwrite)', async () => {
    writeFileSync(join(dir, 'old.raw'), 'old');
    const before = listDir(dir);
    await remember(join(dir, 'old.raw'));
    const r = run('sparsify', ['--dry-run', 'vm.raw', 'old.raw'], dir);
    await expectRefused(r, "sparsify: target 'old.raw' exists (use --overwrite to replace it) (EEXIST)\n", [join(dir, 'old.raw')], before);
  });

  it('RBD export to a file: a device, a planted link or an existing file is refused before the cluster is contacted', () => {
    symlinkSync(join(dir, 'elsewhere'), join(dir, 'planted.raw'));
    writeFileSync(join(dir, 'old.raw'), 'old');
    const before = listDir(dir);
    // No cluster behind this configuration: only the target check can answer.
    const conf = join(dir, 'none.conf');
    const spec = (t: string) => [`rbd:rbd/img:conf=${conf}`, t];
    const cases: [string, string][] = [
      [loop, `sparsify: refusing to write the copy to '${loop}': it is a block device; a copy is never written onto a device (EINVAL)\n`],
      ['planted.raw', "sparsify: refusing to write the copy to 'planted.raw': it is a symbolic link (not followed, not replaced) (EEXIST)\n"],
      ['old.raw', "sparsify: target 'old.raw' exists (use --overwrite to replace it) (EEXIST)\n"],
    ];
    for (const [target, line] of cases) {
      const r = run('sparsify', spec(target), dir);
      expect(r.stderr).toBe(line);
      expect(r.code).toBe(1);
    }
    expect(listDir(dir)).toEqual(before);
  });
});
