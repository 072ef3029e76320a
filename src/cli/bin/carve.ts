#!/usr/bin/env node
// The direct `carve` CLI (same as `blocksmith carve`).
import { answerVersionFlag } from '../version.js';
import { exitOnLoadFailure } from '../load-failure.js';

// Before the command's modules (and the addon) load: see version.ts.
await answerVersionFlag('carve', process.argv);
const { packageVersion, runCli } = await import('../harness.js').catch(exitOnLoadFailure('carve'));
const { carveCommand } = await import('../commands/carve.js').catch(exitOnLoadFailure('carve'));

const program = carveCommand('carve').version(packageVersion(), '-V, --version');
await runCli(program, process.argv);
