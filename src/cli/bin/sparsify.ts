#!/usr/bin/env node
// The direct `sparsify` CLI (same as `blocksmith sparsify`).
import { packageVersion, runCli } from '../harness.js';
import { sparsifyCommand } from '../commands/sparsify.js';

const program = sparsifyCommand('sparsify').version(packageVersion(), '-V, --version');
await runCli(program, process.argv);
