#!/usr/bin/env node
// The direct `carve` CLI (same as `blocksmith carve`).
import { answerVersionFlag } from '../version.js';

// Before the command's modules (and the addon) load: see version.ts.
await answerVersionFlag('carve', process.argv);
const { packageVersion, runCli } = await import('../harness.js');
const { carveCommand } = await import('../commands/carve.js');

const program = carveCommand('carve').version(packageVersion(), '-V, --version');
await runCli(program, process.argv);
