// How RBD commands fail: one line on stderr naming the cause and its code,
// exit 1, nothing left behind. Missing pool, wrong key, unreachable
// monitors, missing librbd/librados, missing source or image.
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageExists, imageName, listImages, removeImage, useCephCluster } from './helpers/ceph.js';
import { KiB, MiB, blocksmithCli, data, isOneLine, makeTempDir, removeDir, run, runCli, writeImage } from './helpers/sparsify.js';

let conf: string;
let dir: string;
let src: string;

const cluster = useCephCluster(); // sets CEPH_CONF for the CLI children and library calls
beforeAll(async () => {
  conf = cluster.conf();
  dir = makeTempDir('rbd-errors', '/var/tmp');
  src = join(dir, 'src.raw');
  writeImage(src, 8 * MiB, [data(0, 64 * KiB)]);
});
afterAll(() => removeDir(dir));

const bs = (args: string[], env?: NodeJS.ProcessEnv) => {
  const saved = { ...process.env };
  if (env) Object.assign(process.env, env);
  try {
    return runCli(args, { cli: blocksmithCli, timeoutMs: 60_000 });
  } finally {
    process.env = saved;
  }
};

describe('cluster-side errors', () => {
  it('a missing pool: ENOENT naming the pool, no image anywhere', async () => {
    const before = listImages(conf);
    const r = await bs(['rbd', 'import', src, 'nosuchpool/img']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("blocksmith: pool 'nosuchpool' does not exist: no such file or directory (ENOENT)\n");
    expect(r.stdout).toBe('');
    expect(listImages(conf)).toEqual(before);
  });

  it('a wrong key for client.admin: EACCES with a hint, no image created', async () => {
    const keyring = join(dir, 'bad.keyring');
    run('ceph-authtool', ['--create-keyring', keyring, '--gen-key', '-n', 'client.admin']);
    const image = imageName('badkey');

    const r = await bs(['rbd', 'import', '--keyring', keyring, src, `rbd/${image}`]);

    expect(r.code).toBe(1);
    expect(isOneLine(r.stderr)).toBe(true);
    expect(r.stderr).toBe(
      'blocksmith: cannot connect to the Ceph cluster: permission denied (check the client id and keyring: the cluster refused the key) (EACCES)\n',
    );
    expect(imageExists(conf, image)).toBe(false);
  });

  it('an unknown client id (rbd:...:id=nobody): EACCES', async () => {
    const r = await bs(['rbd', 'info', `rbd:rbd/whatever:id=nobody`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^blocksmith: cannot connect to the Ceph cluster: permission denied .*\(EACCES\)\n$/);
  });

  it('monitors that do not answer: ETIMEDOUT after --timeout seconds, not a hang', async () => {
    const dead = join(dir, 'dead.conf');
    const text = readFileSync(conf, 'utf8').replace(/^mon host = .*$/m, 'mon host = [v2:127.0.0.1:1,v1:127.0.0.1:2]');
    writeFileSync(dead, text);
    const t0 = Date.now();

    const r = await bs(['rbd', 'import', '--timeout', '2', '--conf', dead, src, `rbd/${imageName('dead')}`]);

    const seconds = (Date.now() - t0) / 1000;
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('blocksmith: cannot connect to the Ceph cluster: connection timed out (the cluster did not answer within 2 s) (ETIMEDOUT)\n');
    expect(seconds).toBeGreaterThanOrEqual(2);
    expect(seconds).toBeLessThan(10);
  });

  it('exporting or describing a missing image: ENOENT naming it', async () => {
    const out = join(dir, 'never.raw');
    const exp = await runCli(['rbd:rbd/no-such-image', out]);
    expect(exp.code).toBe(1);
    expect(exp.stderr).toBe("sparsify: image 'rbd:rbd/no-such-image' does not exist: no such file or directory (ENOENT)\n");
    const info = await bs(['info', 'rbd:rbd/no-such-image']);
    expect(info.code).toBe(1);
    expect(info.stderr).toBe("blocksmith: image 'rbd:rbd/no-such-image' does not exist: no such file or directory (ENOENT)\n");
  });

  it('a missing source: ENOENT before anything is created on the cluster', async () => {
    const image = imageName('nosrc');
    const r = await bs(['rbd', 'import', join(dir, 'missing.raw'), `rbd/${image}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^blocksmith: .*missing\.raw.*\(ENOENT\)\n$/);
    expect(imageExists(conf, image)).toBe(false);
    removeImage(conf, image);
  });

  it('a bad spec or option is a usage error (exit 2)', async () => {
    expect((await bs(['rbd', 'import', src, 'justaname'])).code).toBe(2);
    expect((await bs(['rbd', 'import', src, 'rbd:rbd/x:colour=blue'])).code).toBe(2);
    expect((await bs(['rbd', 'import', '--parallel', '0', src, 'rbd/x'])).code).toBe(2);
    expect((await bs(['rbd', 'import', '--object-size', '3M', src, 'rbd/x'])).code).toBe(2);
  });
});

describe('a machine without Ceph libraries (dlopen made to fail through the test hooks)', () => {
  it('without librbd.so.1: one line naming the library and its Debian package', async () => {
    const r = await bs(['rbd', 'import', src, `rbd/${imageName('nolib')}`], { BLOCKSMITH_LIBRBD_PATH: '/nonexistent/librbd.so.1' });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'blocksmith: RBD support needs librbd.so.1 (Debian package librbd1): /nonexistent/librbd.so.1: cannot open shared object file: No such file or directory (ERR_LIBRBD_MISSING)\n',
    );
  });

  it('without librados.so.2: the same for librados2; sparsify and info of files still work', async () => {
    const env = { BLOCKSMITH_LIBRADOS_PATH: '/nonexistent/librados.so.2' };
    const r = await bs(['info', 'rbd:rbd/x'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'blocksmith: RBD support needs librados.so.2 (Debian package librados2): /nonexistent/librados.so.2: cannot open shared object file: No such file or directory (ERR_LIBRBD_MISSING)\n',
    );
    const info = await bs(['info', '--json', src], env);
    expect(info.code).toBe(0);
    expect(JSON.parse(info.stdout)).toMatchObject({ virtualSize: 8 * MiB });
    const copy = join(dir, 'copy.raw');
    copyFileSync(src, copy);
    const sp = await bs(['sparsify', '--quiet', copy], env);
    expect(sp.code).toBe(0);
  });
});
