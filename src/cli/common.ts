// What every blocksmith CLI shares: exit codes, one-line errors, the
// progress bar, Ctrl-C handling, JSON output.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { CommanderError, type Command } from 'commander';
import type * as CliProgress from 'cli-progress';
import { AbortError, BlocksmithError, InvalidArgumentError } from '../errors.js';
import type { Progress } from '../job.js';
import { formatBytes } from '../units.js';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_PARTIAL = 3;
export const EXIT_INTERRUPTED = 130;
/** 128 + SIGTERM, as a shell reports a process killed by it. */
export const EXIT_TERMINATED = 143;

// The signal that stopped the run, for the exit code (130 Ctrl-C, 143 SIGTERM).
let stoppedBy: NodeJS.Signals | undefined;
function interruptedExitCode(): number {
  return stoppedBy === 'SIGTERM' ? EXIT_TERMINATED : EXIT_INTERRUPTED;
}

export function packageVersion(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const pkg = JSON.parse(readFileSync(join(here, '..', '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

export interface CommonFlags {
  json?: boolean;
  quiet?: boolean;
  debug?: boolean;
}

/**
 * An AbortController wired to SIGINT/SIGTERM: the first Ctrl-C asks the
 * running operation to stop cleanly; a second one exits at once.
 */
export function interruptSignal(): { signal: AbortSignal; interrupted: () => boolean; dispose: () => void } {
  const controller = new AbortController();
  let count = 0;
  const onSignal = (name: NodeJS.Signals) => {
    count++;
    stoppedBy ??= name;
    if (count > 1) process.exit(interruptedExitCode());
    process.stderr.write(`\n${name === 'SIGINT' ? 'interrupted' : 'terminated'}: stopping cleanly (Ctrl-C again to quit at once)\n`);
    controller.abort(new AbortError(`stopped by ${name}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    interrupted: () => count > 0,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** A progress bar with rate and ETA on stderr, only when stderr is a terminal. */
export function progressBar(label: string, flags: CommonFlags): { update: (p: Progress) => void; stop: () => void } {
  if (!process.stderr.isTTY || flags.json || flags.quiet) return { update: () => {}, stop: () => {} };
  // Loaded only when a bar is drawn: it costs ~15-30 ms of start-up, which a
  // scripted `info --json` of a warm image would otherwise pay (bench/README.md).
  const cliProgress = createRequire(import.meta.url)('cli-progress') as typeof CliProgress;
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} [{bar}] {percentage}% | {doneHuman} / {totalHuman} | {rate}/s | ETA {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 50,
      fps: 10,
    },
    cliProgress.Presets.shades_classic,
  );
  const start = Date.now();
  let started = false;
  return {
    update: ({ bytesDone, bytesTotal }) => {
      const secs = Math.max((Date.now() - start) / 1000, 0.001);
      const payload = { doneHuman: formatBytes(bytesDone), totalHuman: formatBytes(bytesTotal), rate: formatBytes(bytesDone / secs) };
      if (!started) {
        bar.start(Math.max(bytesTotal, 1), bytesDone, payload);
        started = true;
      } else {
        bar.update(bytesDone, payload);
      }
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** One line on stderr, the stack only with --debug; returns the exit code. */
export function reportError(prog: string, err: unknown, flags: CommonFlags): number {
  if (err instanceof AbortError) {
    process.stderr.write(`${prog}: stopped${err.note ? `; ${err.note}` : ''}\n`);
    return interruptedExitCode();
  }
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  const e = err as BlocksmithError;
  const code = e && typeof e.code === 'string' && !(err instanceof InvalidArgumentError) ? ` (${e.code})` : '';
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`${prog}: ${message}${code}\n`);
  if (flags.debug && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
  if (flags.json) process.stdout.write(JSON.stringify({ error: { message, code: e?.code, syscall: e?.syscall, path: e?.path } }) + '\n');
  return err instanceof InvalidArgumentError ? EXIT_USAGE : EXIT_FAILED;
}

/** Parses argv with usage errors mapped to exit 2, runs, and exits with the action's code. */
export async function runCli(program: Command, argv: string[]): Promise<never> {
  // Subcommands added with addCommand() do not inherit these: set them on all.
  const configure = (cmd: Command) => {
    cmd.exitOverride();
    cmd.configureOutput({ writeErr: (s) => process.stderr.write(s) });
    cmd.commands.forEach(configure);
  };
  configure(program);
  let code: number;
  try {
    await program.parseAsync(argv);
    code = (process.exitCode as number | undefined) ?? EXIT_OK;
  } catch (err) {
    const flags = (program.opts() ?? {}) as CommonFlags;
    code = reportError(program.name(), err, flags);
  }
  // Flush stdout before leaving (large --json outputs through a pipe).
  await new Promise<void>((resolve) => (process.stdout.writableLength === 0 ? resolve() : process.stdout.once('drain', () => resolve())));
  process.exit(code);
}
