// Decode-bound: carve an image made only of JPEGs (e.g. cat OUT/*.jpg of a carve of big.img) on one
// thread (dedupe forces one part), nothing written; prints the CPU seconds of 5 runs.
//   node bench/carve-decode-only.mjs PACKAGE_ROOT IMG
const root = process.argv[2];
const { native } = await import(root + '/dist/seam/native.js');
const src = process.argv[3];
const times = [];
for (let i = 0; i < 5; i++) {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const job = native.carve(src, { outDir: '/dev/shm', write: false, dedupe: true, scope: 'all', reassemble: true }, undefined, () => {});
  const r = await job.promise;
  const cpu = process.cpuUsage(cpu0);
  times.push(((cpu.user + cpu.system) / 1e6).toFixed(3));
  if (i === 0) console.error(r.complete, r.candidates);
}
console.log(root, 'cpu s', times.join(' '));
