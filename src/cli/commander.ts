// commander, loaded with require() rather than import: it is CommonJS, and
// the first CommonJS module an ES module imports makes Node 20 set up its
// CommonJS export lexer, ~6 ms of CPU of every CLI start on this machine
// (`import('commander')` costs ~17 ms over an empty ES module, `require`
// ~11 ms; bench/README.md, start-up). The same module instance either way.
import { createRequire } from 'node:module';
import type * as Commander from 'commander';

const commander = createRequire(import.meta.url)('commander') as typeof Commander;

export const { Command, Option, CommanderError } = commander;
export type Command = Commander.Command;
export type Option = Commander.Option;
export type CommanderError = Commander.CommanderError;
