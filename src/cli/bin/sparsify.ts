#!/usr/bin/env node
// The direct `sparsify` CLI (same as `blocksmith sparsify`).
import { answerVersionFlag } from '../version.js';
import { exitOnLoadFailure } from '../load-failure.js';

// Before the command's modules (and the addon) load: see version.ts.
await answerVersionFlag('sparsify', process.argv);
const { packageVersion, runCli } = await import('../harness.js').catch(exitOnLoadFailure('sparsify'));
const { sparsifyCommand } = await import('../commands/sparsify.js').catch(exitOnLoadFailure('sparsify'));

const program = sparsifyCommand('sparsify').version(packageVersion(), '-V, --version');
await runCli(program, process.argv);
