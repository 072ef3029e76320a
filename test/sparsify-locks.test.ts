// In-place sparsify refuses an image somebody else uses: QEMU's OFD image
// locks (a real qemu-io, or a process of ours locking one byte), another
// process with it open (a live writer), another sparsify run, a loop device
// over the file, a mounted, claimed or read-only block device. A run holds a
// kernel lease on the file and gives way to anyone who opens it later: it
// stops before its next punch, so a live writer never loses a write. With
// --force it proceeds and says what it overrode. Block devices in place.
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SparsifyReport } from '../src/index.js';
import {
  KiB,
  MiB,
  GiB,
  allocated,
  attachLoop,
  checkWrites,
  data,
  detachLoop,
  ensureTool,
  holdOfdLocks,
  isOneLine,
  leasesOn,
  listDir,
  makeTempDir,
  makeZeroFilledImage,
  mount,
  ofdLocksOn,
  removeDir,
  run,
  runCli,
  runJson,
  sha256,
  startCli,
  startQemuIo,
  startWriter,
  unmount,
  waitFor,
  writeImage,
  zeros,
  sleep,
  type Holder,
} from './helpers/sparsify.js';

/** Data blocks at 256K, 264K-272K, 2M and [3M, 3M+tail); allocated zero runs of 4K, 64K, 1M, 1020K; two holes. */
function writeMixed(path: string, size: number, tail: number): void {
  writeImage(path, size, [
    data(256 * KiB, 4 * KiB),
    zeros(260 * KiB, 4 * KiB),
    data(264 * KiB, 8 * KiB),
    zeros(272 * KiB, 64 * KiB),
    zeros(1 * MiB, 1 * MiB),
    data(2 * MiB, 4 * KiB),
    zeros(2 * MiB + 4 * KiB, 1 * MiB - 4 * KiB),
    data(3 * MiB, tail),
  ]);
}
const SIZE = 3 * MiB + 12 * KiB; // a multiple of 512, so a loop device shows all of it
const ALLOCATED_BEFORE = (20 + 515) * 4 * KiB;
const DATA_BLOCKS = 7 * 4 * KiB;

let dir: string;
beforeEach(() => {
  dir = makeTempDir('locks');
});
afterEach(() => removeDir(dir));

function makeImage(): string {
  const img = `${dir}/vm.raw`;
  writeMixed(img, SIZE, 12 * KiB);
  expect(allocated(img)).toBe(ALLOCATED_BEFORE);
  return img;
}

describe('in-place sparsify and QEMU image locks', () => {
  it('refuses an image a running qemu-io holds (exit 1, names qemu and its pid, nothing punched); --force proceeds', async () => {
    ensureTool('qemu-io', 'qemu-utils');
    const img = makeImage();
    const before = await sha256(img);
    let qemu: Holder | undefined;
    try {
      qemu = await startQemuIo(img);
      expect(ofdLocksOn(img).length).toBeGreaterThan(0); // QEMU really holds OFD locks on it

      const r = await runCli([img]);

      expect(r.code).toBe(1);
      expect(isOneLine(r.stderr)).toBe(true);
      expect(r.stderr).toMatch(/qemu/i);
      expect(r.stderr).toContain(`pid ${qemu.pid}`);
      expect(r.stderr).toContain('EBUSY');
      expect(r.stderr).toContain('--force');
      expect(r.stdout).toBe('');
      expect(allocated(img)).toBe(ALLOCATED_BEFORE);
      expect(await sha256(img)).toBe(before);

      const forced = await runCli(['--force', '--json', img]);

      expect(forced.code).toBe(0);
      // One warning line saying what --force overrode: the QEMU holder, by pid.
      expect(isOneLine(forced.stderr)).toBe(true);
      expect(forced.stderr).toMatch(/^sparsify: warning: --force: punching '.*vm\.raw' although it is in use \(.*qemu.*\)/i);
      expect(forced.stderr).toContain(`pid ${qemu.pid}`);
      const report = JSON.parse(forced.stdout) as SparsifyReport;
      expect(report).toMatchObject({ zeroBytes: 2162688, allocatedAfter: DATA_BLOCKS });
      expect(report.warnings).toEqual([forced.stderr.slice('sparsify: warning: '.length, -1)]);
      expect(allocated(img)).toBe(DATA_BLOCKS);
      expect(await sha256(img)).toBe(before);
    } finally {
      await qemu?.release();
    }
  });

  it.each(['read', 'write'] as const)(
    'refuses an image when another process holds a %s OFD lock on byte 101 only (QEMU write permission)',
    async (type) => {
      const img = makeImage();
      const before = await sha256(img);
      let holder: Holder | undefined;
      try {
        holder = await holdOfdLocks(img, [101], type);
        expect(ofdLocksOn(img)).toHaveLength(1);

        const r = await runCli([img]);

        expect(r.code).toBe(1);
        expect(isOneLine(r.stderr)).toBe(true);
        expect(r.stderr).toContain(`pid ${holder.pid}`);
        expect(r.stderr).toContain('EBUSY');
        expect(allocated(img)).toBe(ALLOCATED_BEFORE);
        expect(await sha256(img)).toBe(before);
      } finally {
        await holder?.release();
      }
    },
  );

  it('an OFD lock outside QEMU bytes 100..299 (byte 0 and byte 300) is not taken for QEMU: its holder is refused as an open writer', async () => {
    const img = makeImage();
    const before = await sha256(img);
    let holder: Holder | undefined;
    try {
      holder = await holdOfdLocks(img, [0, 300], 'write'); // holds the image open read-write

      const r = await runCli([img]);

      expect(r.code).toBe(1);
      expect(isOneLine(r.stderr)).toBe(true);
      expect(r.stderr).toContain(`python3 (pid ${holder.pid}) has it open for writing`);
      expect(r.stderr).not.toMatch(/QEMU/);
      expect(allocated(img)).toBe(ALLOCATED_BEFORE);
      expect(await sha256(img)).toBe(before);
    } finally {
      await holder?.release();
    }
  });

  it('refuses a second in-place run on the same 1 GiB image with EBUSY while the first runs; the first completes', async () => {
    const img = `${dir}/big.raw`;
    makeZeroFilledImage(img, 1 * GiB, 256);
    const before = await sha256(img);

    const first = startCli(['--json', img]);
    // The first run holds its locks from before its scan starts until it ends.
    await waitFor(() => ofdLocksOn(img).length > 0 || !first.running(), 'the first run to take its locks');
    expect(first.running()).toBe(true);
    // Freeze the first run so the second surely meets it however slow the
    // machine (or a sanitizer build) is; it resumes afterwards.
    first.child.kill('SIGSTOP');
    let second;
    try {
      second = await runCli([img]);
    } finally {
      first.child.kill('SIGCONT');
    }
    const firstStillRunning = first.running();
    const firstResult = await first.done;

    expect(firstStillRunning).toBe(true); // the refusal happened while the first was running
    expect(second.code).toBe(1);
    expect(isOneLine(second.stderr)).toBe(true);
    expect(second.stderr).toContain('EBUSY');
    expect(second.stderr).toContain(`pid ${first.pid}`);
    expect(firstResult.code).toBe(0);
    const report = JSON.parse(firstResult.stdout) as SparsifyReport;
    expect(report.zeroBytes).toBe(1 * GiB - 256 * 4 * KiB);
    expect(report.allocatedAfter).toBe(allocated(img));
    expect(await sha256(img)).toBe(before);
    expect(ofdLocksOn(img)).toEqual([]); // released at exit
  });

  it('QEMU opening the image during a run: its open waits until the run gives way (stops before its next punch, drops its locks); QEMU then starts', async () => {
    ensureTool('qemu-io', 'qemu-utils');
    const img = `${dir}/big.raw`;
    makeZeroFilledImage(img, 1 * GiB, 256);
    const before = await sha256(img);
    const full = allocated(img);

    const sparsifyRun = startCli([img]);
    await waitFor(() => allocated(img) < full * 0.98 || !sparsifyRun.running(), 'the first punches');
    expect(sparsifyRun.running()).toBe(true);
    expect(leasesOn(img)).toHaveLength(1);
    // Frozen, the run cannot give way: qemu-io's open() must wait in the kernel.
    sparsifyRun.child.kill('SIGSTOP');
    const qemu = spawn('qemu-io', ['-f', 'raw', '-c', 'quit', img], { stdio: ['ignore', 'pipe', 'pipe'] });
    let qemuErr = '';
    qemu.stderr!.setEncoding('utf8').on('data', (d: string) => (qemuErr += d));
    const qemuDone = new Promise<number | null>((resolve) => qemu.on('close', (code) => resolve(code)));
    await sleep(300);
    const qemuWaited = qemu.exitCode === null;
    sparsifyRun.child.kill('SIGCONT');
    const r = await sparsifyRun.done;
    const qemuCode = await qemuDone;

    expect(qemuWaited).toBe(true);
    expect(r.code).toBe(1);
    expect(isOneLine(r.stderr)).toBe(true);
    expect(r.stderr).toMatch(/^sparsify: another process opened '.*big\.raw' during the run: stopped before punching more; \d+ holes? punched, content unchanged \(EBUSY\)\n$/);
    expect(qemuErr).toBe('');
    expect(qemuCode).toBe(0); // our QEMU-style locks were gone when its open returned
    expect(allocated(img)).toBeLessThan(full);
    expect(allocated(img)).toBeGreaterThan(256 * 4 * KiB);
    expect(await sha256(img)).toBe(before);
    expect(leasesOn(img)).toEqual([]);
  });

  it('refuses a file that backs a loop device (names the device); --force proceeds', async () => {
    const img = makeImage();
    const before = await sha256(img);
    let dev: string | undefined;
    try {
      dev = attachLoop(img);

      const r = await runCli([img]);

      expect(r.code).toBe(1);
      expect(isOneLine(r.stderr)).toBe(true);
      expect(r.stderr).toContain(dev);
      expect(r.stderr).toContain('EBUSY');
      expect(allocated(img)).toBe(ALLOCATED_BEFORE);
      expect(await sha256(img)).toBe(before);

      const forced = await runCli(['--force', img]);

      expect(forced.code).toBe(0);
      expect(forced.stderr).toBe(`sparsify: warning: --force: punching '${img}' although it is in use (it backs loop device ${dev}); writes made to it during the run can be lost\n`);
      expect(allocated(img)).toBe(DATA_BLOCKS);
      expect(await sha256(img)).toBe(before);
      expect(await sha256(dev)).toBe(before);
    } finally {
      detachLoop(dev);
    }
  });
});

describe('in-place sparsify of a block device', () => {
  it('punches a loop device: its content is unchanged and the backing file keeps only the data blocks', async () => {
    const img = makeImage();
    const before = await sha256(img);
    let dev: string | undefined;
    try {
      dev = attachLoop(img);
      expect(await sha256(dev)).toBe(before);

      const report = await runJson<SparsifyReport>([dev]);

      expect(await sha256(dev)).toBe(before);
      expect(report).toMatchObject({
        source: dev,
        kind: 'block-device',
        size: SIZE,
        holeBytes: 0, // a device has no holes to seek; all of it is read
        zeroBytes: SIZE - 28 * KiB,
        dataBytes: 28 * KiB,
        // [0,260K) (the backing file's hole read as zeros), [260K,264K), [272K,2M), [2M+4K,3M)
        holesPunched: 4,
        punchedBytes: SIZE - 28 * KiB,
        allocatedBefore: SIZE,
        allocatedAfter: SIZE,
      });
      // The loop driver turns the punches into holes in the backing file.
      expect(allocated(img)).toBe(DATA_BLOCKS);
    } finally {
      detachLoop(dev);
    }
    expect(await sha256(img)).toBe(before);
  });

  it('refuses a mounted loop device with EBUSY (the filesystem untouched)', async () => {
    const img = `${dir}/fs.img`;
    const mnt = `${dir}/mnt`;
    mkdirSync(mnt);
    run('truncate', ['-s', '32M', img]);
    run('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', img]);
    let dev: string | undefined;
    try {
      dev = attachLoop(img);
      // read-only, so the filesystem itself writes nothing while we hash the device
      mount(dev, mnt, ['-o', 'ro']);
      const before = await sha256(dev);
      const allocatedBefore = allocated(img);

      const r = await runCli([dev]);

      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`sparsify: '${dev}' is in use: ${dev} is mounted on ${mnt}; unmount or release it first or use --force (EBUSY)\n`);
      expect(await sha256(dev)).toBe(before);
      expect(allocated(img)).toBe(allocatedBefore);

      // --force: opened without O_EXCL, and says so; the zero blocks are
      // discarded (content unchanged: the mount is read-only).
      const forced = await runCli([dev, '--force']);

      expect(forced.code).toBe(0);
      expect(forced.stderr).toBe(
        `sparsify: warning: --force: punching '${dev}' although it is in use (${dev} is mounted on ${mnt}; it was opened without O_EXCL); writes made to it during the run can be lost\n`,
      );
      expect(await sha256(dev)).toBe(before);
      expect(allocated(img)).toBeLessThan(allocatedBefore);
    } finally {
      unmount(mnt);
      detachLoop(dev);
    }
  });

  it('refuses a device another program claimed with O_EXCL, naming the programs that have it open', async () => {
    const img = makeImage();
    const before = await sha256(img);
    let dev: string | undefined;
    let holder: Holder | undefined;
    try {
      dev = attachLoop(img);
      holder = await holdOpen(dev, ['O_RDONLY', 'O_EXCL']);

      const r = await runCli([dev]);

      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `sparsify: '${dev}' is in use: claimed by another program (O_EXCL): python3 (pid ${holder.pid}) has it open; unmount or release it first or use --force (EBUSY)\n`,
      );
      expect(allocated(img)).toBe(ALLOCATED_BEFORE);
    } finally {
      await holder?.release();
      detachLoop(dev);
    }
    expect(await sha256(img)).toBe(before);
  });

  it('refuses a device another process has open for writing (no O_EXCL of its own); --force proceeds and names it', async () => {
    const img = makeImage();
    const before = await sha256(img);
    let dev: string | undefined;
    let holder: Holder | undefined;
    try {
      dev = attachLoop(img);
      holder = await holdOpen(dev, ['O_RDWR']);

      const r = await runCli([dev]);

      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `sparsify: '${dev}' is in use: python3 (pid ${holder.pid}) has it open for writing; in-place sparsify needs it to itself (a write made during the run could be lost): stop it first or use --force (EBUSY)\n`,
      );
      expect(allocated(img)).toBe(ALLOCATED_BEFORE);

      const forced = await runCli([dev, '--force']);

      expect(forced.code).toBe(0);
      expect(forced.stderr).toBe(
        `sparsify: warning: --force: punching '${dev}' although it is in use (python3 (pid ${holder.pid}) has it open for writing); writes made to it during the run can be lost\n`,
      );
      expect(allocated(img)).toBe(DATA_BLOCKS);
      expect(await sha256(dev)).toBe(before);
    } finally {
      await holder?.release();
      detachLoop(dev);
    }
    expect(await sha256(img)).toBe(before);
  });

  it('a read-only loop device (losetup -r): EROFS naming it read-only, nothing changed; --dry-run still reports', async () => {
    const img = makeImage();
    const before = await sha256(img);
    let dev: string | undefined;
    try {
      dev = attachLoop(img, { readOnly: true });

      const r = await runCli([dev]);
      const forced = await runCli([dev, '--force']);
      const dry = await runJson<SparsifyReport>(['--dry-run', dev]);

      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `sparsify: '${dev}' is a read-only block device (e.g. losetup -r, or a write-protected disk); in-place sparsify discards on it, so nothing was changed (EROFS)\n`,
      );
      expect(forced.code).toBe(1); // --force cannot make a read-only device writable
      expect(forced.stderr).toBe(r.stderr);
      expect(dry).toMatchObject({ dryRun: true, kind: 'block-device', zeroBytes: SIZE - 28 * KiB, warnings: [] });
      expect(allocated(img)).toBe(ALLOCATED_BEFORE);
    } finally {
      detachLoop(dev);
    }
    expect(await sha256(img)).toBe(before);
  });
});

/**
 * A python3 process holding `path` open with the given os.O_* flags until
 * released (stdin closed).
 */
async function holdOpen(path: string, flags: string[]): Promise<Holder> {
  const script = `
import os, sys
fd = os.open(sys.argv[1], ${flags.map((f) => `os.${f}`).join(' | ')})
print('open', flush=True)
sys.stdin.read()
`;
  const child = spawn('python3', ['-c', script, path], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  await waitFor(() => out.includes('open') || child.exitCode !== null, 'the python3 opener');
  if (!out.includes('open')) throw new Error(`opener failed: ${err}`);
  return {
    pid: child.pid!,
    release: async () => {
      child.stdin!.end();
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

describe('a live writer (another process pwriting random 4 KiB blocks) never loses a write', () => {
  // 64 MiB of written zeros with 64 data blocks: almost every block is in a
  // zero run sparsify would punch, so a punch over a block the writer wrote
  // after the scan read it would lose that write (main lost thousands).
  const LIVE_SIZE = 64 * MiB;
  const BLOCKS = LIVE_SIZE / (4 * KiB);
  const SEED = 11;
  function liveImage(name = 'live.raw'): { img: string; dataAt: number[] } {
    const img = `${dir}/${name}`;
    const dataAt = makeZeroFilledImage(img, LIVE_SIZE, 64, SEED);
    return { img, dataAt };
  }
  /** The figures of a run of the image no writer touches. */
  const ALL_ALLOCATED = LIVE_SIZE;

  it('writer already open: refused (names it, nothing punched); every write kept', async () => {
    const { img, dataAt } = liveImage();
    const writer = startWriter(img, BLOCKS, 1, 2000);
    await waitFor(() => writer.opened(), 'the writer to open the image');

    const r = await runCli([img]);
    const written = await writer.stop();

    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `sparsify: '${img}' is in use: node (pid ${writer.pid}) has it open for writing; in-place sparsify needs it to itself (a write made during the run could be lost): stop it first or use --force (EBUSY)\n`,
    );
    expect(allocated(img)).toBe(ALL_ALLOCATED);
    expect(await checkWrites(img, written, { dataAt, seed: SEED })).toEqual({ lostWrites: 0, otherChanged: 0 });
  });

  it('writer opening mid-run: its open waits, the run stops before its next punch and gives way; every write kept', async () => {
    const img = `${dir}/big.raw`;
    const size = 256 * MiB;
    const dataAt = makeZeroFilledImage(img, size, 256, SEED);
    const full = allocated(img);

    const run1 = startCli([img]);
    await waitFor(() => allocated(img) < full * 0.97 || !run1.running(), 'the first punches');
    expect(run1.running()).toBe(true);
    // Frozen, the run cannot give way: the writer's open() waits in the kernel.
    run1.child.kill('SIGSTOP');
    const writer = startWriter(img, size / (4 * KiB), 2, 3000);
    await sleep(300);
    const openedWhileFrozen = writer.opened();
    run1.child.kill('SIGCONT');
    const r = await run1.done;
    await waitFor(() => writer.opened(), 'the writer to open the image');
    const allocatedAtStop = allocated(img);
    const written = await writer.stop();

    expect(openedWhileFrozen).toBe(false);
    expect(r.code).toBe(1);
    const m = /^sparsify: another process opened '(.*)' during the run: stopped before punching more; (\d+) holes? punched, content unchanged \(EBUSY\)\n$/.exec(r.stderr);
    expect(m?.[1]).toBe(img);
    const punched = Number(m![2]);
    expect(punched).toBeGreaterThan(0);
    expect(punched).toBeLessThan(256); // the zero runs between 256 data blocks: it stopped part way
    expect(allocatedAtStop).toBeLessThan(full);
    expect(written.writes).toBeGreaterThanOrEqual(3000);
    expect(await checkWrites(img, written, { dataAt, seed: SEED })).toEqual({ lostWrites: 0, otherChanged: 0 });
  });

  it('12 runs with the writer starting at a different moment each time: zero writes lost in every run', async () => {
    const outcomes = new Set<string>();
    for (let i = 0; i < 12; i++) {
      const { img, dataAt } = liveImage(); // rewritten each time: every block allocated again
      const run1 = startCli([img]);
      await sleep((i * 23) % 140); // before the run opens the image, during it, or after it
      const writer = startWriter(img, BLOCKS, 100 + i, 1500);
      const r = await run1.done;
      await waitFor(() => writer.opened(), 'the writer to open the image');
      const written = await writer.stop();

      const result = await checkWrites(img, written, { dataAt, seed: SEED });
      expect({ run: i, ...result }).toEqual({ run: i, lostWrites: 0, otherChanged: 0 });
      // Refused (the writer was first), stopped (it opened mid-run) or done (it came after).
      if (r.code === 0) outcomes.add('completed');
      else if (r.stderr.includes('has it open for writing')) outcomes.add('refused');
      else if (/another process opened .* stopped before punching more/.test(r.stderr)) outcomes.add('stopped');
      else throw new Error(`run ${i}: unexpected outcome ${r.code}: ${r.stderr}`);
      expect(r.code === 0 || isOneLine(r.stderr)).toBe(true);
    }
    expect(outcomes.size).toBeGreaterThan(0);
  });

  it('--force with a writer open: proceeds, with one warning line naming the writer', async () => {
    const { img, dataAt } = liveImage();
    // A writer that has the image open but writes only after the run (min 0;
    // stopped at once afterwards), so the outcome is exact.
    const writer = startWriter(img, BLOCKS, 3, 0);
    await waitFor(() => writer.opened(), 'the writer to open the image');
    // It writes as soon as it runs: freeze it for the length of the run.
    process.kill(writer.pid, 'SIGSTOP');
    let r;
    try {
      r = await runCli(['--force', '--json', img]);
    } finally {
      process.kill(writer.pid, 'SIGCONT');
    }
    const written = await writer.stop();

    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      `sparsify: warning: --force: punching '${img}' although it is in use (node (pid ${writer.pid}) has it open for writing); writes made to it during the run can be lost\n`,
    );
    expect((JSON.parse(r.stdout) as SparsifyReport).warnings).toHaveLength(1);
    expect(await checkWrites(img, written, { dataAt, seed: SEED })).toEqual({ lostWrites: 0, otherChanged: 0 });
  });

  it('a user who may write the file but not lease it (not its owner): refused with the reason; --force proceeds and says so', async () => {
    const img = makeImage();
    chmodSync(img, 0o666); // root's file, writable by nobody
    const before = await sha256(img);
    const asNobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

    const r = await runCli([img], { prefix: asNobody });
    const forced = await runCli(['--force', img], { prefix: asNobody });

    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `sparsify: '${img}': no lease can be taken on it (EACCES: leases need the file's owner or CAP_LEASE), so a process opening it during the run would not be detected: run as its owner or root, or use --force (EACCES)\n`,
    );
    expect(forced.code).toBe(0);
    expect(forced.stderr).toBe(
      `sparsify: warning: --force: punching '${img}' without a lease: no lease can be taken on it (EACCES: leases need the file's owner or CAP_LEASE), so a process opening it during the run would not be detected\n`,
    );
    expect(allocated(img)).toBe(DATA_BLOCKS);
    expect(await sha256(img)).toBe(before);
  });
});

describe('in use, by mode: a dry run only reads; a copy must be consistent', () => {
  it('--dry-run of an image a VM holds (QEMU write lock): runs, with the exact figures and one line saying they can change', async () => {
    const img = makeImage();
    const before = await sha256(img);
    const expected = await runJson<SparsifyReport>(['--dry-run', img]);
    let holder: Holder | undefined;
    try {
      holder = await holdOfdLocks(img, [100, 101], 'read'); // what a running VM holds

      const r = await runCli(['--dry-run', '--json', img]);

      expect(r.code).toBe(0);
      expect(r.stderr).toBe(
        `sparsify: warning: '${img}' is in use (python3 (pid ${holder.pid}) holds QEMU's write lock on it (a running VM or qemu-img)): the figures can change\n`,
      );
      const report = JSON.parse(r.stdout) as SparsifyReport;
      expect({ ...report, seconds: 0, bytesPerSecond: 0 }).toEqual({
        ...expected,
        seconds: 0,
        bytesPerSecond: 0,
        warnings: [r.stderr.slice('sparsify: warning: '.length, -1)],
      });
    } finally {
      await holder?.release();
    }
    expect(allocated(img)).toBe(ALLOCATED_BEFORE);
    expect(await sha256(img)).toBe(before);
  });

  it('--dry-run of a file backing a loop device: runs and says the figures can change; read-only loop: no warning', async () => {
    const img = makeImage();
    let dev: string | undefined;
    try {
      dev = attachLoop(img);
      const rw = await runCli(['--dry-run', img]);
      detachLoop(dev);
      dev = attachLoop(img, { readOnly: true });
      const ro = await runJson<SparsifyReport>(['--dry-run', img]);

      expect(rw.code).toBe(0);
      expect(rw.stderr).toBe(`sparsify: warning: '${img}' is in use (it backs loop device ${rw.stderr.match(/loop device (\/dev\/loop\d+)/)![1]}): the figures can change\n`);
      expect(rw.stdout).toContain('would reclaim about');
      expect(ro).toMatchObject({ dryRun: true, zeroBytes: 2162688, warnings: [] });
    } finally {
      detachLoop(dev);
    }
    expect(allocated(img)).toBe(ALLOCATED_BEFORE);
  });

  it('a copy of an image a VM holds with its write lock: refused naming the holder, no target; --force copies with a warning; a read-only QEMU user is no obstacle', async () => {
    const img = makeImage();
    const dst = `${dir}/copy.raw`;
    let holder: Holder | undefined;
    try {
      holder = await holdOfdLocks(img, [100, 101], 'read');

      const r = await runCli([img, dst]);
      const listing = listDir(dir);
      const forced = await runCli(['--force', img, dst]);

      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `sparsify: '${img}' is in use: python3 (pid ${holder.pid}) holds QEMU's write lock on it (a running VM or qemu-img); a copy made now could be inconsistent: stop it first or use --force (EBUSY)\n`,
      );
      expect(listing).toEqual(['vm.raw']); // nothing created
      expect(forced.code).toBe(0);
      expect(forced.stderr).toBe(
        `sparsify: warning: --force: copying '${img}' although it is in use (python3 (pid ${holder.pid}) holds QEMU's write lock on it (a running VM or qemu-img)); the copy can be inconsistent\n`,
      );
      expect(await sha256(dst)).toBe(await sha256(img));
    } finally {
      await holder?.release();
    }
    rmSync(dst);
    // qemu-img convert or a read-only VM disk: byte 100 only (consistent read, no write).
    const reader = await holdOfdLocks(img, [100], 'read');
    try {
      const r = await runCli([img, dst]);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe('');
    } finally {
      await reader.release();
    }
  });

  it('a copy of an image another process has open for writing: refused naming it; --force copies with a warning', async () => {
    const img = makeImage();
    const dst = `${dir}/copy.raw`;
    const before = await sha256(img);
    const writer = await holdOfdLocks(img, [], 'write'); // python3 with the image open read-write, no locks
    try {
      const r = await runCli([img, dst]);
      const listing = listDir(dir);
      const forced = await runCli(['--force', '--json', img, dst]);

      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `sparsify: '${img}' is in use: python3 (pid ${writer.pid}) has it open for writing; a copy made now could be inconsistent: stop it first or use --force (EBUSY)\n`,
      );
      expect(listing).toEqual(['vm.raw']);
      expect(forced.code).toBe(0);
      expect(forced.stderr).toBe(
        `sparsify: warning: --force: copying '${img}' although it is in use (python3 (pid ${writer.pid}) has it open for writing); the copy can be inconsistent\n`,
      );
      expect((JSON.parse(forced.stdout) as SparsifyReport).warnings).toHaveLength(1);
      expect(await sha256(dst)).toBe(before);
    } finally {
      await writer.release();
    }
  });

  it('a copy whose source a writer opens mid-copy: the writer waits, the copy stops, no target and no temporary file', async () => {
    const img = `${dir}/big.raw`;
    const dst = `${dir}/copy.raw`;
    const size = 512 * MiB;
    writeImage(img, size, [data(0, 64 * MiB, 5), data(256 * MiB, 128 * MiB, 6)]);

    const copy = startCli([img, dst]);
    await waitFor(() => leasesOn(img).length > 0 || !copy.running(), 'the copy to lease its source');
    expect(copy.running()).toBe(true);
    expect(leasesOn(img)[0]).toMatch(/LEASE\s+ACTIVE\s+READ/);
    copy.child.kill('SIGSTOP');
    const writer = startWriter(img, size / (4 * KiB), 4, 100);
    await sleep(300);
    const openedWhileFrozen = writer.opened();
    copy.child.kill('SIGCONT');
    const r = await copy.done;
    await writer.stop();

    expect(openedWhileFrozen).toBe(false);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `sparsify: another process opened '${img}' for writing during the copy: stopped (the copy would be inconsistent) (EBUSY)\n`,
    );
    expect(listDir(dir)).toEqual(['big.raw']);
  });

  it('a copy while an in-place run leases the image: refused before opening it (that would stop the run); the run completes', async () => {
    const img = `${dir}/big.raw`;
    makeZeroFilledImage(img, 1 * GiB, 256);
    const inPlace = startCli(['--json', img]);
    await waitFor(() => leasesOn(img).length > 0 || !inPlace.running(), 'the run to lease the image');
    inPlace.child.kill('SIGSTOP');
    let copy;
    let dry;
    try {
      copy = await runCli([img, `${dir}/copy.raw`]);
      dry = await runCli(['--dry-run', img]);
    } finally {
      inPlace.child.kill('SIGCONT');
    }
    const done = await inPlace.done;

    const refusal = `'${img}' is being changed by node (pid ${inPlace.pid}), which holds a write lease on it (an in-place sparsify); opening it now would stop that run: wait for it to end or use --force (EBUSY)\n`;
    expect(copy.code).toBe(1);
    expect(copy.stderr).toBe(`sparsify: ${refusal}`);
    expect(dry.code).toBe(1);
    expect(dry.stderr).toBe(`sparsify: ${refusal}`);
    expect(done.code).toBe(0);
    expect(listDir(dir)).toEqual(['big.raw']);
  });
});
