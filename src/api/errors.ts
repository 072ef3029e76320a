// Errors shaped like Node's own fs errors. The binding rejects with plain
// Errors carrying code/errno/syscall/path; toBlocksmithError maps them once.

export class BlocksmithError extends Error {
  code: string;
  errno?: number;
  syscall?: string;
  path?: string;

  constructor(message: string, props: { code: string; errno?: number; syscall?: string; path?: string }) {
    super(message);
    this.name = 'BlocksmithError';
    this.code = props.code;
    if (props.errno !== undefined) this.errno = props.errno;
    if (props.syscall !== undefined) this.syscall = props.syscall;
    if (props.path !== undefined) this.path = props.path;
  }
}

/** Thrown when an operation is stopped through its AbortSignal. */
export class AbortError extends Error {
  code = 'ABORT_ERR' as const;
  /** What the stopped operation left behind, when that matters (e.g. a partial RBD image it could not remove). */
  note?: string;
  constructor(message = 'The operation was aborted', options?: { cause?: unknown; note?: string }) {
    super(options?.note ? `${message}; ${options.note}` : message, options);
    this.name = 'AbortError';
    if (options?.note) this.note = options.note;
  }
}

/** A bad argument or option (a usage error in the CLIs). */
export class InvalidArgumentError extends BlocksmithError {
  constructor(message: string) {
    super(message, { code: 'ERR_INVALID_ARG_VALUE' });
    this.name = 'InvalidArgumentError';
  }
}

type NativeErrorShape = Error & { code?: string; errno?: number; syscall?: string; path?: string; note?: string };

export function toBlocksmithError(err: unknown, signal?: AbortSignal): Error {
  if (err instanceof BlocksmithError || err instanceof AbortError) return err;
  const e = err as NativeErrorShape;
  if (e && e.code === 'ABORT_ERR') return new AbortError(undefined, { cause: signal?.reason, note: e.note });
  if (e && typeof e.code === 'string') {
    if (e.code === 'ERR_INVALID_ARG_VALUE' || e.code === 'ERR_OUT_OF_RANGE') return new InvalidArgumentError(e.message);
    return new BlocksmithError(e.message, { code: e.code, errno: e.errno, syscall: e.syscall, path: e.path });
  }
  // The addon's synchronous argument checks throw plain TypeErrors/RangeErrors.
  if (err instanceof TypeError || err instanceof RangeError) return new InvalidArgumentError(err.message);
  return err instanceof Error ? err : new Error(String(err));
}
