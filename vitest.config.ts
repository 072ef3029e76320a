import { defineConfig } from 'vitest/config';

// Native crashes must fail one file, not the run: every test file runs in its
// own forked process. With BLOCKSMITH_VITEST_JSON=FILE (set by .ci/run) the
// results are also written as JSON so CI can count them. The global setup
// starts one throwaway Ceph cluster per run, in the background, for the RBD
// suites (test/ceph/global-setup.ts), and makes sure libvirtd answers at
// qemu:///system for the migrate suites (test/libvirt/global-setup.ts).
const jsonOut = process.env.BLOCKSMITH_VITEST_JSON;

export default defineConfig({
  test: {
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/ceph/global-setup.ts', 'test/libvirt/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    reporters: jsonOut ? ['default', ['json', { outputFile: jsonOut }]] : ['default'],
  },
});
