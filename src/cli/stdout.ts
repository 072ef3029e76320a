// The one path every CLI writes standard output through (text, --json,
// carve's NDJSON, --help). Writing stdout can fail, and a tool that says
// nothing about it lies: `map --json img > file` on a full filesystem must
// not exit 0 with an empty file.
//
// - EPIPE (the reader went away: `blocksmith map img | head -1`) ends the
//   run quietly, as coreutils do: nothing on stderr, exit 141. A coreutils
//   tool dies of SIGPIPE there, which a shell reports as 128 + 13 = 141;
//   Node ignores SIGPIPE and must leave through process.exit() (so that
//   'exit' listeners, e.g. carve's report, still run), so it exits 141 itself:
//   `set -o pipefail` scripts see what they see with `cat`.
// - Any other error (ENOSPC, EIO, EFBIG, ...) is one line on stderr and exit 1.
//
// Node writes stdout synchronously to files but asynchronously to pipes, and
// reports a failed write as an 'error' event a tick later in both cases; the
// harness therefore waits for flushStdout() before it picks the exit code.
import { getSystemErrorMap } from 'node:util';

export const EXIT_BROKEN_PIPE = 141;

let failure: NodeJS.ErrnoException | undefined;
let watching = false;

/**
 * Starts watching stdout for write errors; `onFailure` runs once, at the first
 * one (the harness stops the running operation there).
 */
export function watchStdout(onFailure: () => void): void {
  if (watching) return;
  watching = true;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    // After the first failure the stream is destroyed and every later write
    // fails with ERR_STREAM_DESTROYED: only the first error is the cause.
    if (failure) return;
    failure = err;
    onFailure();
  });
  // A failed write to stderr cannot be reported anywhere; without a listener
  // it would become an uncaught exception with a stack trace.
  process.stderr.on('error', () => {});
}

/** Writes text to stdout; after a failed write, nothing more is written. */
export function out(text: string): void {
  if (failure || process.stdout.destroyed) return;
  process.stdout.write(text);
}

/**
 * Undefined while stdout takes more; else a promise that settles once what
 * was written drained (or stdout failed or closed). A producer that waits
 * for it keeps a slow reader's pipe from piling the output up in memory.
 */
export function stdoutBackpressure(): Promise<void> | undefined {
  const s = process.stdout;
  if (failure || s.destroyed || !s.writableNeedDrain) return undefined;
  return new Promise((resolve) => {
    const done = () => {
      s.off('drain', done).off('error', done).off('close', done);
      resolve();
    };
    s.on('drain', done).on('error', done).on('close', done);
  });
}

/** Pretty JSON and a newline, through out(). */
export function printJson(value: unknown): void {
  out(JSON.stringify(value, null, 2) + '\n');
}

/** Resolves once everything written so far reached stdout's file descriptor, or its write failed. */
export function flushStdout(): Promise<void> {
  return new Promise((resolve) => {
    if (failure || process.stdout.destroyed) return resolve();
    // Writes complete in order: this callback runs after all earlier ones,
    // with the error when one failed (the 'error' listener records it first).
    process.stdout.write('', () => setImmediate(resolve));
  });
}

/** The first stdout write error, if any. */
export function stdoutFailure(): NodeJS.ErrnoException | undefined {
  return failure;
}

/** "no space left on device (ENOSPC)", worded like the addon's errors (strerror, lower case). */
export function describeErrno(err: NodeJS.ErrnoException): string {
  const code = err.code ?? 'EIO';
  const known: Record<string, string> = { EIO: 'input/output error', EDQUOT: 'disk quota exceeded' };
  const fromLibuv = typeof err.errno === 'number' ? getSystemErrorMap().get(err.errno)?.[1] : undefined;
  return `${known[code] ?? fromLibuv ?? err.message} (${code})`;
}

/**
 * The exit code a stdout failure imposes (printing its one line), or
 * undefined when stdout was fine.
 */
export function stdoutExitCode(prog: string): number | undefined {
  if (!failure) return undefined;
  if (failure.code === 'EPIPE') return EXIT_BROKEN_PIPE;
  process.stderr.write(`${prog}: cannot write standard output: ${describeErrno(failure)}\n`);
  return 1;
}
