// Image containers blocksmith does not read (VMDK, VHD, VHDX, VDI, Parallels,
// QED, LUKS; bochs, cloop and dmg, which qemu-img cannot create, are covered
// by native/tests/test_container_probe.cc) are recognised by their magic and
// refused with one line naming the format and the way out, by info, map, a
// copy (nothing created) and in place (the file unchanged). --format raw
// still reads their bytes as raw.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blocksmithCli, isOneLine, makeTempDir, removeDir, run, runCli, sha256, sizeOf } from './helpers/sparsify.js';

let dir: string;

/** qemu-img create for each format it can make, with some data written where qemu-io can. */
const FORMATS: { file: string; name: string; title: string; create: string[] }[] = [
  { file: 'disk.vmdk', name: 'vmdk', title: 'VMDK (VMware)', create: ['-f', 'vmdk'] },
  { file: 'flat.vmdk', name: 'vmdk', title: 'VMDK (VMware)', create: ['-f', 'vmdk', '-o', 'subformat=monolithicFlat'] },
  { file: 'stream.vmdk', name: 'vmdk', title: 'VMDK (VMware)', create: ['-f', 'vmdk', '-o', 'subformat=streamOptimized'] },
  { file: 'disk.vhd', name: 'vpc', title: 'VHD (Virtual PC / Hyper-V)', create: ['-f', 'vpc'] },
  { file: 'fixed.vhd', name: 'vpc', title: 'VHD (Virtual PC / Hyper-V)', create: ['-f', 'vpc', '-o', 'subformat=fixed'] },
  { file: 'disk.vhdx', name: 'vhdx', title: 'VHDX (Hyper-V)', create: ['-f', 'vhdx'] },
  { file: 'disk.vdi', name: 'vdi', title: 'VDI (VirtualBox)', create: ['-f', 'vdi'] },
  { file: 'disk.parallels', name: 'parallels', title: 'Parallels', create: ['-f', 'parallels'] },
  { file: 'disk.qed', name: 'qed', title: 'QED', create: ['-f', 'qed'] },
  {
    file: 'disk.luks',
    name: 'luks',
    title: 'LUKS (encrypted)',
    create: ['-f', 'luks', '--object', 'secret,id=sec0,data=x', '-o', 'key-secret=sec0,iter-time=10'],
  },
];

function createImage(f: (typeof FORMATS)[number]): string {
  const path = join(dir, f.file);
  const args = ['create', '-q', ...f.create, path, '4M'];
  // qemu-img times its PBKDF on the thread's CPU clock and fails now and
  // then on a loaded machine ("Unable to get accurate CPU usage"): retry.
  for (let attempt = 1; ; attempt++) {
    const r = run('qemu-img', args, { allowFail: true });
    if (r.code === 0) break;
    if (attempt === 5 || !/accurate CPU usage/.test(r.stderr)) throw new Error(`qemu-img ${args.join(' ')}: ${r.stderr}`);
  }
  if (f.name !== 'luks') run('qemu-io', ['-f', f.name, '-c', 'write -P 0xab 64k 64k', path]);
  return path;
}

beforeAll(() => {
  dir = makeTempDir('containers');
});
afterAll(() => removeDir(dir));

describe('containers we do not read are refused with one line', () => {
  it.each(FORMATS)('$file: info, map, copy and in place exit 1 naming $name; nothing written', async (f) => {
    const img = createImage(f);
    const before = await sha256(img);
    const mtime = statSync(img).mtimeMs;
    const message = `'${img}' is a ${f.title} image, which blocksmith does not read: convert it first (qemu-img convert -f ${f.name} -O raw '${img}' OUT.raw), or pass --format raw to treat its bytes as raw (ERR_UNSUPPORTED_FORMAT)\n`;
    const out = join(dir, `${f.file}.raw`);
    const runs = [
      [['info', img], 'blocksmith'],
      [['map', img], 'blocksmith'],
      [['sparsify', img, out], 'blocksmith'],
      [['sparsify', img], 'blocksmith'],
    ] as const;
    const results = await Promise.all(runs.map(([args]) => runCli([...args], { cli: blocksmithCli })));
    runs.forEach(([args, prog], k) => {
      const r = results[k]!;
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(1);
      expect(isOneLine(r.stderr), r.stderr).toBe(true);
      expect(r.stderr).toBe(`${prog}: ${message}`);
      expect(r.stdout).toBe('');
    });
    expect(existsSync(out)).toBe(false);
    expect(await sha256(img)).toBe(before);
    expect(statSync(img).mtimeMs).toBe(mtime);
  });
});

describe('--format raw still reads a container as raw bytes', () => {
  it('info, map and a copy of a VMDK and a fixed VHD with --format raw: the copy is the file, byte for byte', async () => {
    for (const file of ['disk.vmdk', 'fixed.vhd']) {
      const img = join(dir, file);
      if (!existsSync(img)) createImage(FORMATS.find((f) => f.file === file)!);
      const i = await runCli(['info', '--json', '--format', 'raw', img], { cli: blocksmithCli });
      expect(i.code, i.stderr).toBe(0);
      expect(JSON.parse(i.stdout)).toMatchObject({ format: 'raw', virtualSize: sizeOf(img) });
      const m = await runCli(['map', '--format', 'raw', img], { cli: blocksmithCli });
      expect(m.code, m.stderr).toBe(0);
      const out = join(dir, `${file}.as-raw`);
      const c = await runCli(['sparsify', '--json', '--format', 'raw', img, out], { cli: blocksmithCli });
      expect(c.code, c.stderr).toBe(0);
      expect(JSON.parse(c.stdout).format).toBe('raw');
      expect(await sha256(out)).toBe(await sha256(img));
    }
  });
});
