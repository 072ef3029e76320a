// The report of an undelete run (report.json, and what undelete() resolves
// with): the addon's volumes and files plus the run's state.
import type { NativeUndeleteReport } from '../seam/native.js';

export interface UndeleteReport extends NativeUndeleteReport {
  tool: 'blocksmith undelete';
  version: 1;
  /** Absent with `list`. */
  outDir?: string;
  list: boolean;
  /** running: written while the run goes on; stopped: by the signal; failed: see `error` (the files written so far are listed). */
  state: 'running' | 'done' | 'stopped' | 'failed';
  error?: { message: string; code?: string };
  startedAt: string;
  finishedAt: string;
  /** False when the run was stopped or failed (the files written so far are kept and listed). */
  finished: boolean;
}
