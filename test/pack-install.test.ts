// The npm package as a user gets it. In a copy of the tree, `npm run prebuilds`
// builds the addon once for Node-API (prebuilds/<platform>-<arch>/blocksmith.glibc.node)
// and `npm pack` packs it (its prepare step compiles the TypeScript). The tarball
// then installs into an empty directory on what looks like a machine without a
// C++ toolchain: PATH is a directory holding only node, npm, sh and a few
// coreutils, CC=false CXX=false, and npm takes its packages from the cache that
// `npm ci` filled (--prefer-offline). The package's install script (node-gyp-build)
// runs and must find the prebuild instead of compiling; then the installed
// `blocksmith info` and `import { isZero } from 'blocksmith'` must work.
//
// The copy keeps the build out of this tree's build/, which the other suites
// load while this one runs.
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allocatedBytes, KiB, makeTempDir, MiB, removeDir, repoRoot } from './helpers/foundation.js';

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to the end; `what` and the output's tail go into the error, so a failure says why. */
function run(what: string, cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; ok?: boolean }): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err) => reject(new Error(`${what}: cannot run ${cmd}: ${err.message}`)));
    child.on('close', (code) => {
      if (opts.ok !== false && code !== 0) {
        const tail = `${stdout}\n${stderr}`.trim().split('\n').slice(-40).join('\n');
        reject(new Error(`${what}: \`${cmd} ${args.join(' ')}\` in ${opts.cwd} exited ${code}\n${tail}`));
      } else {
        resolve({ code, stdout, stderr });
      }
    });
  });
}

/** The first `name` on this process's PATH, symlinks resolved. */
function which(name: string): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const file = join(dir, name);
    if (dir && existsSync(file)) return realpathSync(file);
  }
  throw new Error(`${name} is not on PATH`);
}

const tuple = `${process.platform}-${process.arch}`;
const prebuildRel = `prebuilds/${tuple}/blocksmith.glibc.node`;
const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  bin: Record<string, string>;
  main: string;
};

let root: string | undefined;
let tree: string; // the copy of the package sources that is built and packed
let app: string; // the empty project the tarball is installed into
let bin: string; // the only directory on PATH for the install and the runs
let bareEnv: NodeJS.ProcessEnv;
let packed: { filename: string; size: number; files: { path: string }[] };
let installLog: string;
const seconds: Record<string, number> = {};

async function timed<T>(name: string, f: () => Promise<T>): Promise<T> {
  const start = performance.now();
  try {
    return await f();
  } finally {
    seconds[name] = Math.round((performance.now() - start) / 100) / 10;
  }
}

beforeAll(async () => {
  root = makeTempDir('pack');
  tree = join(root, 'tree');
  app = join(root, 'app');
  bin = join(root, 'bin');
  mkdirSync(tree);
  for (const entry of ['package.json', 'README.md', 'binding.gyp', 'tsconfig.json', 'native', 'src']) {
    cpSync(join(repoRoot, entry), join(tree, entry), { recursive: true });
  }
  symlinkSync(join(repoRoot, 'node_modules'), join(tree, 'node_modules'));

  await timed('prebuilds', () => run('npm run prebuilds', 'npm', ['run', 'prebuilds'], { cwd: tree }));
  const pack = await timed('pack', () => run('npm pack', 'npm', ['pack', '--json', '--pack-destination', root!], { cwd: tree }));
  // --json prints the report after the prepare step's own output.
  packed = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('[')))[0];

  // The machine without a toolchain: PATH holds only these.
  mkdirSync(bin);
  for (const tool of ['node', 'npm', 'sh', 'env', 'cat', 'ls', 'mkdir', 'rm', 'cp', 'mv', 'ln', 'chmod', 'uname', 'dirname', 'basename']) {
    symlinkSync(which(tool), join(bin, tool));
  }
  const cache = (await run('npm config get cache', 'npm', ['config', 'get', 'cache'], { cwd: root })).stdout.trim();
  bareEnv = { HOME: process.env.HOME, PATH: bin, CC: 'false', CXX: 'false', LANG: 'C', npm_config_cache: cache };

  mkdirSync(app);
  // Recent npm (11.19 here) runs a dependency's install script only when the project
  // allows it; allowed here so that node-gyp-build's choice (prebuild or compile) is
  // exercised, as on older npm, which runs it unasked.
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, allowScripts: { [pkg.name]: true } }));
  const install = await timed('install', () =>
    run(
      'npm install of the tarball',
      'npm',
      ['install', '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts', join(root!, packed.filename)],
      { cwd: app, env: bareEnv },
    ),
  );
  installLog = `${install.stdout}\n${install.stderr}`;
}, 900_000);

afterAll(() => removeDir(root));

describe('npm run prebuilds', () => {
  it('builds one Node-API binary that needs only libc, libm and libgcc_s, no libstdc++ symbol, and exports only the N-API entry points', async () => {
    const file = join(tree, prebuildRel);
    expect(existsSync(file), `${file} missing`).toBe(true);
    const headers = (await run('objdump -p', 'objdump', ['-p', file], { cwd: root! })).stdout;
    const needed = [...headers.matchAll(/^\s*NEEDED\s+(\S+)/gm)].map((m) => m[1]!).sort();
    expect(needed.filter((n) => !n.startsWith('ld-linux'))).toEqual(['libc.so.6', 'libgcc_s.so.1', 'libm.so.6']);

    const symbols = (await run('objdump -T', 'objdump', ['-T', file], { cwd: root! })).stdout;
    const versions = new Set([...symbols.matchAll(/\((\w+)_[\d.]+\)/g)].map((m) => m[1]));
    expect([...versions].sort()).toEqual(['GCC', 'GLIBC']);
    // prebuild_glibc_compat.cc: libstdc++'s arc4random call stays inside the addon (glibc 2.34 floor, not 2.36).
    expect(symbols).not.toMatch(/\barc4random\b/);

    const exported = (await run('nm -D', 'nm', ['-D', '--defined-only', file], { cwd: root! })).stdout;
    expect(exported.trim().split('\n').map((l) => l.split(' ').pop()).sort()).toEqual([
      'napi_register_module_v1',
      'node_api_module_get_api_version_v1',
    ]);
  });
});

describe('npm pack', () => {
  it('packs the prebuild, the compiled JS, the bins and the sources a fallback build needs, and nothing else', () => {
    const paths = packed.files.map((f) => f.path);
    expect(paths.filter((p) => p.endsWith('.node'))).toEqual([prebuildRel]);
    for (const file of ['package.json', 'README.md', 'binding.gyp', pkg.main, ...Object.values(pkg.bin)]) {
      expect(paths, file).toContain(file.replace(/^\.\//, ''));
    }
    expect(paths.some((p) => p.startsWith('native/core/') && p.endsWith('.cc'))).toBe(true);
    const stray = paths.filter(
      (p) => !['package.json', 'README.md', 'binding.gyp'].includes(p) && !/^(dist|native|prebuilds)\//.test(p),
    );
    expect(stray).toEqual([]);
    // The core's unit tests and fuzz harnesses are for developers (a fallback build skips core_tests).
    expect(paths.filter((p) => p.startsWith('native/tests/') || p.startsWith('native/fuzz/'))).toEqual([]);
    expect(packed.size).toBeLessThan(4 * MiB);
  });
});

describe('installing the tarball where there is no compiler', () => {
  it('has no compiler, make or python on PATH', async () => {
    const probe = await run('g++ probe', 'sh', ['-c', 'g++ --version'], { cwd: app, env: bareEnv, ok: false });
    expect(probe.code).toBe(127);
    expect(probe.stderr).toMatch(/g\+\+: not found/);
    const any = await run('tool probe', 'sh', ['-c', 'for t in c++ cc gcc clang make python3; do command -v $t; done; true'], {
      cwd: app,
      env: bareEnv,
    });
    expect(any.stdout).toBe('');
  });

  it('runs the install script, which takes the prebuild and compiles nothing', () => {
    expect(installLog).toContain(`> ${pkg.name}@${pkg.version} install`);
    expect(installLog).not.toMatch(/gyp (info|ERR)/);
    const installed = join(app, 'node_modules', pkg.name);
    expect(existsSync(join(installed, prebuildRel))).toBe(true);
    expect(existsSync(join(installed, 'build')), 'a build/ directory: the install compiled (or tried to)').toBe(false);
    for (const dep of ['commander', 'cli-progress', 'node-gyp-build']) expect(existsSync(join(app, 'node_modules', dep)), dep).toBe(true);
  });

  it('gives a working `blocksmith info`', async () => {
    const img = join(root!, 'small.img');
    // 4 MiB: 1 MiB of written zeros, one data block at 3 MiB, the rest holes.
    await run('truncate', 'truncate', ['-s', '4M', img], { cwd: root! });
    await run('dd zeros', 'dd', ['if=/dev/zero', `of=${img}`, 'bs=1M', 'count=1', 'conv=notrunc,fsync', 'status=none'], { cwd: root! });
    await run('dd data', 'sh', ['-c', `printf blocksmith | dd of=${img} bs=1M seek=3 conv=notrunc,fsync status=none`], { cwd: root! });
    expect(allocatedBytes(img), 'the filesystem under /tmp allocates in 4 KiB blocks').toBe(MiB + 4 * KiB);

    const info = await timed('info', () => run('blocksmith info', join(app, 'node_modules', '.bin', 'blocksmith'), ['info', img], { cwd: app, env: bareEnv }));
    expect(info.stderr).toBe('');
    expect(info.stdout).toBe(
      [
        `image: ${img}`,
        'kind: regular file',
        'format: raw',
        'virtual size: 4.00 MiB (4194304 bytes)',
        'disk size: 1.00 MiB (1052672 bytes allocated)',
        'data: 4.00 KiB (0.1%)',
        'zero (allocated, reclaimable): 1.00 MiB (25.0%)',
        'holes: 3.00 MiB (74.9%)',
        'block size: 4.00 KiB',
        '',
      ].join('\n'),
    );
  });

  it("lets `import { isZero } from 'blocksmith'` load the prebuilt addon", async () => {
    const script = [
      "import { isZero } from 'blocksmith';",
      "import { readFileSync } from 'node:fs';",
      'const one = Buffer.alloc(1 << 20); one[12345] = 1;',
      "const addons = readFileSync('/proc/self/maps', 'utf8').split('\\n').map((l) => l.split(/\\s+/)[5]).filter((f) => f && f.endsWith('.node'));",
      'console.log(JSON.stringify({ zeros: isZero(Buffer.alloc(1 << 20)), oneByte: isZero(one), addons: [...new Set(addons)] }));',
    ].join('\n');
    const out = await run('node --input-type=module', 'node', ['--input-type=module', '-e', script], { cwd: app, env: bareEnv });
    expect(JSON.parse(out.stdout)).toEqual({
      zeros: true,
      oneByte: false,
      addons: [realpathSync(join(app, 'node_modules', pkg.name, prebuildRel))],
    });
    // How long each step took, for the record (the build dominates).
    console.log(`pack-install: ${JSON.stringify(seconds)} s`);
  });
});
