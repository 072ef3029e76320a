#!/usr/bin/env node
// The direct `carve` CLI (same as `blocksmith carve`).
import { packageVersion, runCli } from './common.js';
import { carveCommand } from './carve-command.js';

const program = carveCommand('carve').version(packageVersion(), '-V, --version');
await runCli(program, process.argv);
