// `--version` answered before anything else loads: commander, the harness
// and, through the option defaults, the native addon cost more start-up than
// Node itself on a small machine (bench/startup.bench.js), and a version
// check is the smallest job a script runs. Prints what commander's
// `.version()` prints, through the same stdout path (stdout.ts: EPIPE exits
// 141, another write error is one line and exit 1).
import { readFileSync } from 'node:fs';
import { flushStdout, out, stdoutExitCode, watchStdout } from './stdout.js';

export function packageVersion(): string {
  // dist/cli/version.js (or src/cli/version.ts) -> the package root.
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/**
 * When argv's first argument is `--version` or `-V`, prints the version and
 * exits; otherwise returns. Commander answers the flag there the same way
 * whatever follows it, so nothing after it is looked at.
 */
export async function answerVersionFlag(prog: string, argv: string[]): Promise<void> {
  const first = argv[2];
  if (first !== '--version' && first !== '-V') return;
  watchStdout(() => {});
  out(`${packageVersion()}\n`);
  await flushStdout();
  process.exit(stdoutExitCode(prog) ?? 0);
}
