// Runs every benchmark suite (or the ones named), each in its own process,
// one after the other; each writes bench/results/<name>.json.
//
//   node bench/run-all.js [zero-detect] [scan-throughput] [sparsify] [rbd] ... [startup]
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { BENCH_DIR, ROOT, ownCommandLine } from './lib.js';

const SUITES = ['zero-detect', 'scan-throughput', 'sparsify', 'rbd', 'qcow2', 'carve', 'carve-frag', 'fs-sparsify', 'startup'];
const wanted = process.argv.slice(2);
for (const w of wanted) {
  if (!SUITES.includes(w)) {
    console.error(`unknown suite '${w}'; suites: ${SUITES.join(', ')}`);
    process.exit(2);
  }
}

let failed = 0;
for (const suite of wanted.length ? wanted : SUITES) {
  console.log(`\n=== ${suite} ===`);
  const r = spawnSync(process.execPath, [join(BENCH_DIR, `${suite}.bench.js`)], {
    cwd: ROOT,
    stdio: 'inherit',
    env: { ...process.env, BLOCKSMITH_BENCH_INVOKED_VIA: ownCommandLine() },
  });
  if (r.status !== 0) {
    console.error(`${suite} failed (${r.status ?? r.signal})`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
