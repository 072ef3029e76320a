#!/usr/bin/env node
// The direct `carve` CLI (same as `blocksmith carve`).
import { packageVersion, runCli } from '../harness.js';
import { carveCommand } from '../commands/carve.js';

const program = carveCommand('carve').version(packageVersion(), '-V, --version');
await runCli(program, process.argv);
