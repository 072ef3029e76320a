#!/usr/bin/env node
// The umbrella CLI: blocksmith <command>.
import { Command } from 'commander';
import { infoCommand, mapCommand } from './commands.js';
import { packageVersion, runCli } from './common.js';
import { carveCommand } from './carve-command.js';
import { rbdCommand } from './rbd-command.js';
import { sparsifyCommand } from './sparsify-command.js';

const program = new Command('blocksmith')
  .description('Low-level disk work: zero detection, extent maps and sparse images for raw files and block devices')
  .version(packageVersion(), '-V, --version')
  .addCommand(infoCommand())
  .addCommand(mapCommand())
  .addCommand(sparsifyCommand('sparsify', 'blocksmith '))
  .addCommand(rbdCommand())
  .addCommand(carveCommand('carve', 'blocksmith '))
  .addHelpText(
    'after',
    `
Examples:
  $ blocksmith info vm.raw
  $ blocksmith map --svg vm.svg vm.raw
  $ blocksmith sparsify vm.raw
  $ blocksmith info --json /dev/loop0`,
  );

await runCli(program, process.argv);
