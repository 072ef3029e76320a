// The CLIs load the harness and their command with dynamic imports (after
// answering --version, see version.ts), and the first of those loads the
// addon. When it cannot load (not built, a prebuild this machine cannot
// run), native.ts throws one sentence saying what to do: print that line and
// exit 1 instead of Node's stack trace through the module graph (the stack
// too with --debug, as for any other error).
export function exitOnLoadFailure(prog: string): (err: unknown) => never {
  return (err) => {
    const message = (err instanceof Error ? err.message : String(err)).replace(/^blocksmith: /, '');
    process.stderr.write(`${prog}: ${message}\n`);
    if (process.argv.includes('--debug') && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
    process.exit(1);
  };
}
