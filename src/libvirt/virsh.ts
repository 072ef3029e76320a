// The one way blocksmith talks to libvirt: the `virsh` client, run without a
// shell, its failures turned into one-line BlocksmithErrors here (code
// ERR_LIBVIRT, or ENOENT when virsh is missing) and nowhere else.
import { spawn } from 'node:child_process';
import { AbortError, BlocksmithError } from '../api/errors.js';

export interface VirshOptions {
  /** libvirt connection URI; default: virsh's own ($LIBVIRT_DEFAULT_URI, then qemu:///system for root). */
  uri?: string;
  signal?: AbortSignal;
  /** Each line of output as it comes: `--verbose` job progress ("Block Copy: [ 45 %]"), which virsh writes to stderr. */
  onLine?: (line: string) => void;
  /** What the command is about, for messages: a domain, a file. */
  subject?: string;
}

// `--verbose` job progress, "Block Copy: [ 45 %]" / "Migration: [ 45.12 %]", redrawn with \r.
const JOB_PROGRESS = /\[\s*(\d+(?:\.\d+)?)\s*%\]$/;

/** The percentage of a job progress line, or undefined for any other line. */
export function jobPercent(line: string): number | undefined {
  const m = JOB_PROGRESS.exec(line.trim());
  return m ? Number(m[1]) : undefined;
}

/** virsh's first "error: ..." line, without the prefix: what went wrong, in libvirt's words. */
function libvirtReason(stderr: string): string {
  // Progress redraws (\r...[ 45 %]) are not the reason.
  const lines = stderr
    .split(/[\r\n]/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && jobPercent(l) === undefined);
  const errors = lines.filter((l) => l.startsWith('error: ')).map((l) => l.slice('error: '.length));
  // virsh often prints "failed to get domain 'x'" then the reason; keep both, in one line.
  return (errors.length > 0 ? errors.join(': ') : lines.join('; ')) || 'failed without a message';
}

/** Runs `virsh [-c URI] ARGS...` and resolves with its standard output; rejects with one line. */
export function virsh(args: string[], options: VirshOptions = {}): Promise<string> {
  const argv = [...(options.uri ? ['-c', options.uri] : []), ...args];
  const what = `virsh ${args[0] ?? ''}${options.subject ? ` ${options.subject}` : ''}`;
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) return reject(new AbortError(undefined, { cause: options.signal.reason }));
    // LC_ALL=C: messages and numbers in the forms parsed here.
    const child = spawn('virsh', argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    let stdout = '';
    let stderr = '';
    const lineSplitter = () => {
      let pending = '';
      return (d: string) => {
        if (!options.onLine) return;
        // Job progress redraws its line with \r, without a newline until the end.
        pending += d;
        const parts = pending.split(/[\r\n]/);
        pending = parts.pop() ?? '';
        for (const p of parts) if (p !== '') options.onLine(p);
        if (jobPercent(pending) !== undefined) {
          options.onLine(pending);
          pending = '';
        }
      };
    };
    const outLines = lineSplitter();
    const errLines = lineSplitter();
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      outLines(d);
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      errLines(d);
    });
    const onAbort = () => child.kill('SIGINT');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (err: NodeJS.ErrnoException) => {
      options.signal?.removeEventListener('abort', onAbort);
      if (err.code === 'ENOENT') {
        reject(new BlocksmithError(`${what}: virsh is not installed (Debian package libvirt-clients)`, { code: 'ENOENT', errno: 2, syscall: 'spawn', path: 'virsh' }));
      } else reject(new BlocksmithError(`${what}: ${err.message}`, { code: err.code ?? 'ERR_LIBVIRT', syscall: 'spawn', path: 'virsh' }));
    });
    child.on('close', (code, signal) => {
      options.signal?.removeEventListener('abort', onAbort);
      if (options.signal?.aborted) return reject(new AbortError(undefined, { cause: options.signal.reason }));
      if (code === 0) return resolve(stdout);
      const reason = signal ? `killed by ${signal}` : libvirtReason(stderr);
      reject(new BlocksmithError(`${what}: ${reason}`, { code: 'ERR_LIBVIRT', syscall: `virsh ${args[0] ?? ''}`, path: options.subject }));
    });
  });
}
