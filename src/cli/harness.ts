// The one harness every blocksmith CLI runs under (blocksmith, sparsify,
// carve and all their subcommands): exit codes, one-line errors, usage
// errors, the progress bar, Ctrl-C / SIGTERM, and standard output (stdout.ts).
// A command's action only parses its options (throwing usageError) and runs
// its work through runOperation(); runCli() reports whatever it throws and
// picks the exit code, in one place.
import { createRequire } from 'node:module';
import { CommanderError, type Command } from './commander.js';
import type * as CliProgress from 'cli-progress';
import { AbortError, BlocksmithError, InvalidArgumentError } from '../api/errors.js';
import type { Progress } from '../seam/job.js';
import { formatBytes } from '../api/units.js';
import { flushStdout, out, stdoutExitCode, stdoutFailure, watchStdout } from './stdout.js';

export { out, printJson, stdoutBackpressure, EXIT_BROKEN_PIPE } from './stdout.js';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_PARTIAL = 3;
export const EXIT_INTERRUPTED = 130;
/** 128 + SIGTERM, as a shell reports a process killed by it. */
export const EXIT_TERMINATED = 143;

export { packageVersion } from './version.js';

export interface CommonFlags {
  json?: boolean;
  quiet?: boolean;
  debug?: boolean;
}

// The program the user ran, for warnings (set by runCli).
let programName = 'blocksmith';

/** One warning line on stderr (what --force overrode, an image in use), named after the program. */
export function warn(message: string): void {
  process.stderr.write(`${programName}: warning: ${message}\n`);
}

/** A bad option value or a bad combination of options: one line, exit 2. */
export function usageError(message: string): never {
  throw new InvalidArgumentError(message);
}

// --- Signals -----------------------------------------------------------------
// One AbortController for the whole run: the first SIGINT/SIGTERM asks the
// running operation to stop cleanly (it keeps what it finished: carve's files
// and report, a sparsify's punched holes); a second one, or a first one when
// no operation is running, exits at once with 130 / 143. Always through
// process.exit(), which runs 'exit' listeners (carve writes its report there).

const stop = new AbortController();
let signalCount = 0;
let stoppedBy: NodeJS.Signals | undefined;
let operationsRunning = 0;

function interruptedExitCode(): number {
  return stoppedBy === 'SIGTERM' ? EXIT_TERMINATED : EXIT_INTERRUPTED;
}

function onSignal(name: NodeJS.Signals): void {
  signalCount++;
  stoppedBy ??= name;
  if (signalCount > 1 || operationsRunning === 0) process.exit(interruptedExitCode());
  process.stderr.write(`\n${name === 'SIGINT' ? 'interrupted' : 'terminated'}: stopping cleanly (Ctrl-C again to quit at once)\n`);
  stop.abort(new AbortError(`stopped by ${name}`));
}

// --- Progress bar --------------------------------------------------------------

/** A progress bar with rate and ETA on stderr, only when stderr is a terminal. */
function progressBar(label: string, flags: CommonFlags): { update: (p: Progress) => void; stop: () => void } {
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
      started = false;
    },
  };
}

// --- Operations -----------------------------------------------------------------

export interface Operation {
  /** Aborted by the first Ctrl-C / SIGTERM, or when stdout fails. */
  signal: AbortSignal;
  onProgress: (p: Progress) => void;
  /** Removes the progress bar (before printing while the operation is still running). */
  clearProgress: () => void;
}

/**
 * Runs one long operation with the progress bar (`label`) and signal
 * handling. Errors propagate to runCli, which reports them.
 */
export async function runOperation<T>(label: string, flags: CommonFlags, run: (op: Operation) => Promise<T>): Promise<T> {
  const bar = progressBar(label, flags);
  operationsRunning++;
  try {
    return await run({ signal: stop.signal, onProgress: bar.update, clearProgress: bar.stop });
  } finally {
    operationsRunning--;
    bar.stop();
  }
}

// --- Errors and exit ---------------------------------------------------------------

/** One line on stderr (the stack only with --debug); returns the exit code. */
function reportError(prog: string, err: unknown, flags: CommonFlags): number {
  if (err instanceof AbortError) {
    process.stderr.write(`${prog}: stopped${err.note ? `; ${err.note}` : ''}\n`);
    return interruptedExitCode();
  }
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE; // commander printed it (outputError below)
  const usage = err instanceof InvalidArgumentError;
  const e = err as BlocksmithError;
  const code = e && typeof e.code === 'string' && !usage ? ` (${e.code})` : '';
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`${prog}: ${message}${code}\n`);
  if (flags.debug && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
  // A usage error prints nothing on stdout; a failed operation under --json
  // also says what failed as JSON, for the script reading stdout.
  if (flags.json && !usage) out(JSON.stringify({ error: { message, code: e?.code, syscall: e?.syscall, path: e?.path } }) + '\n');
  return usage ? EXIT_USAGE : EXIT_FAILED;
}

/** Commander's messages ("error: unknown option '--x'\n(Did you mean --y?)\n") as one line: "PROG: unknown option '--x' (did you mean --y?)". */
function commanderLine(prog: string, message: string): string {
  const text = message
    .trim()
    .replace(/^error: /, '')
    .replace(/\s*\n\(Did you mean (.*)\?\)$/s, ' (did you mean $1?)')
    .replace(/\s*\n\s*/g, ' ');
  return `${prog}: ${text}\n`;
}

/**
 * Parses argv (usage errors exit 2 with one line), runs the action, reports
 * what it threw, flushes stdout and exits with the code. Never returns.
 */
export async function runCli(program: Command, argv: string[]): Promise<never> {
  const prog = program.name();
  programName = prog;
  watchStdout(() => stop.abort(new AbortError('standard output failed')));
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // The command whose action ran: its flags say --debug / --json.
  let actionCommand: Command = program;
  program.hook('preAction', (_program, action) => {
    actionCommand = action;
  });
  // Subcommands added with addCommand() do not inherit these: set them on all.
  const configure = (cmd: Command) => {
    cmd.exitOverride();
    cmd.configureOutput({
      writeOut: (s) => out(s),
      writeErr: (s) => process.stderr.write(s),
      outputError: (s, write) => write(commanderLine(prog, s)),
    });
    cmd.commands.forEach(configure);
  };
  configure(program);
  let code: number = EXIT_OK;
  let failed: { err: unknown } | undefined;
  try {
    await program.parseAsync(argv);
    code = (process.exitCode as number | undefined) ?? EXIT_OK;
  } catch (err) {
    failed = { err };
  }
  // The failure to report: stdout's first (an operation stopped because its
  // output is gone says nothing more), else the operation's.
  if (failed && !stdoutFailure()) code = reportError(prog, failed.err, (actionCommand.opts() ?? {}) as CommonFlags);
  await flushStdout();
  process.exit(stdoutExitCode(prog) ?? code);
}
