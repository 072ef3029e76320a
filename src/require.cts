// The "require" entry of package.json "exports", reached only on a Node that
// cannot require() an ES module (before 20.19 / 22.12, or run with
// --no-experimental-require-module). Newer Nodes take the "module-sync"
// condition instead and load dist/index.js itself, so require('blocksmith')
// and import('blocksmith') give the same module there (no dual-package copy).
// Here: one line saying what to do, instead of Node's "No exports main defined".
const err = new Error(
  "blocksmith is an ES module package and this Node cannot require() it: use `const blocksmith = await import('blocksmith')` (or Node >= 20.19 / 22.12, where require('blocksmith') works)",
) as Error & { code: string };
err.code = 'ERR_REQUIRE_ESM';
// The message is the whole story: no stack into this file.
err.stack = `Error [ERR_REQUIRE_ESM]: ${err.message}`;
throw err;
