// Ctrl-C (SIGINT) in the middle of a copy to RBD: the writes in flight are
// waited for, exit 130, and the half-written image is removed unless
// --keep-partial asked to keep it.
import { closeSync, openSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageExists, imageName, rbdInfoJson, rbdObjects, removeImage, useCephCluster } from './helpers/ceph.js';
import { MiB, blocksmithCli, bytesRead, makeTempDir, removeDir, startCli, waitFor } from './helpers/sparsify.js';

let conf: string;
let dir: string;
let src: string;
const SIZE = 512 * MiB;

const cluster = useCephCluster(); // sets CEPH_CONF for the CLI children and library calls
beforeAll(async () => {
  conf = cluster.conf();
  dir = makeTempDir('rbd-int', '/var/tmp');
  src = join(dir, 'src.raw');
  const block = randomBytes(4 * MiB);
  const fd = openSync(src, 'w');
  for (let i = 0; i < SIZE / block.length; i++) writeSync(fd, block, 0, block.length, i * block.length);
  closeSync(fd);
});
afterAll(() => removeDir(dir));

async function interruptedCopy(image: string, extra: string[] = []) {
  const child = startCli(['rbd', 'import', ...extra, src, `rbd/${image}`], { cli: blocksmithCli });
  await waitFor(() => bytesRead(child.pid) >= 64 * MiB || !child.running(), 'the copy to get going', 30_000);
  expect(child.running()).toBe(true);
  child.child.kill('SIGINT');
  return child.done;
}

describe('Ctrl-C (SIGINT) mid-copy', () => {
  it('exit 130, "stopped", the partial image removed', async () => {
    const image = imageName('sigint');
    const r = await interruptedCopy(image);

    expect(r.code).toBe(130);
    expect(r.stderr).toBe('\ninterrupted: stopping cleanly (Ctrl-C again to quit at once)\nblocksmith: stopped\n');
    expect(r.stdout).toBe('');
    expect(imageExists(conf, image)).toBe(false);
  });

  it('with --keep-partial: exit 130 and the image is kept, with its full size and only some of the objects', async () => {
    const image = imageName('keep');
    try {
      const r = await interruptedCopy(image, ['--keep-partial']);

      expect(r.code).toBe(130);
      // What was left behind is said on the same line as "stopped".
      expect(r.stderr).toMatch(new RegExp(`blocksmith: stopped; the partial image rbd:rbd/${image}\\S* was kept \\(--keep-partial\\)\n$`));
      expect(imageExists(conf, image)).toBe(true);
      expect(rbdInfoJson(conf, image).size).toBe(SIZE);
      const objects = rbdObjects(conf, image).length;
      expect(objects).toBeGreaterThan(0);
      expect(objects).toBeLessThan(SIZE / (4 * MiB));
    } finally {
      removeImage(conf, image);
    }
  });
});
