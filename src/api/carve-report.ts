// The report of a carve (report.json, and what carve() resolves with): the
// addon's figures plus the files, where they went and how to resume.
import type { NativeCarveReport } from '../seam/native.js';
import type { CarveUndeletePart } from './carve-undelete.js';
import type { CarveReportFile, FileFragment } from './carved-file.js';

/** The run's figures: the addon's (bytes scanned, candidates, complete / reassembled / partial / rejected counts,
 * unreadable ranges, where `resume` continues: `nextOffset`) plus where the files went and the rate. The counts
 * of files (complete, reassembled, partial, thumbnails, duplicates) are those of the carved `files`; bytesWritten
 * counts every file written, those recovered by name (undelete) too. */
export interface CarveSummary extends Omit<NativeCarveReport, 'held' | 'recovered'> {
  outDir: string;
  bytesPerSecond: number;
  /**
   * running: the run is going on (report.json is brought up to date every second, and soon after each new file);
   * stopped: by a signal or a closed stdout; failed: by an error (`error`), e.g. the output filesystem full;
   * done: the whole range was carved. Only `done` is finished; the others say how to continue (`resumeWith`).
   */
  state: 'running' | 'stopped' | 'failed' | 'done';
  finished: boolean;
  /** When not finished: the option that continues the run (`--resume OUTDIR/report.json`). */
  resumeWith?: string;
  error?: { message: string; code?: string };
  /** carve --undelete: the recovery by name that came first (its files are in `files`, method 'metadata'). */
  undelete?: CarveUndeletePart;
}

export interface CarveReport extends CarveSummary {
  tool: 'blocksmith carve';
  version: 1;
  startedAt: string;
  /** When this report was written (the end of the run once finished). */
  finishedAt: string;
  options: Record<string, unknown>;
  /** The files recovered by name (method 'metadata', with --undelete) first, then the carved ones in the carver's order. */
  files: CarveReportFile[];
  /** When not finished, what --resume continues from besides nextOffset: candidates before it still held for the
   * fragment search (checked again), and the files recovered before it (the search's claims). */
  resumeState?: { held: number[]; recovered: FileFragment[] };
}
