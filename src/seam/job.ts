// Runs a native job as a promise with AbortSignal and progress, the way every
// long blocksmith operation is exposed.
import { AbortError, toBlocksmithError } from '../api/errors.js';
import type { NativeJob, NativeProgress } from './native.js';

export interface Progress {
  bytesDone: number;
  bytesTotal: number;
}

export interface JobOptions {
  signal?: AbortSignal;
  onProgress?: (progress: Progress) => void;
}

export async function runJob<T>(start: (onProgress?: NativeProgress) => NativeJob<T>, options: JobOptions = {}): Promise<T> {
  const { signal, onProgress } = options;
  const callSite = new Error();
  if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
  let job: NativeJob<T>;
  try {
    job = start(onProgress ? (done, total) => onProgress({ bytesDone: done, bytesTotal: total }) : undefined);
  } catch (err) {
    // The addon validates arguments synchronously (a TypeError); map it the
    // same way as a rejection so callers see one error type.
    throw toBlocksmithError(err, signal);
  }
  const onAbort = () => job.cancel();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await job.promise;
  } catch (err) {
    const mapped = toBlocksmithError(err, signal);
    // Keep the caller's stack: the native rejection has none worth reading.
    const frames = callSite.stack?.split('\n').slice(1).join('\n');
    if (frames) mapped.stack = `${mapped.name}: ${mapped.message}\n${frames}`;
    throw mapped;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
