#!/usr/bin/env node
// The direct `sparsify` CLI (same as `blocksmith sparsify`).
import { packageVersion, runCli } from './common.js';
import { sparsifyCommand } from './sparsify-command.js';

const program = sparsifyCommand('sparsify').version(packageVersion(), '-V, --version');
await runCli(program, process.argv);
