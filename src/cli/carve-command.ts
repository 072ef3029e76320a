// `carve SOURCE -o OUTDIR`, shared by the direct `carve` CLI and `blocksmith carve`.
import { Command, Option } from 'commander';
import { carve, type CarveAbortError, type CarveReport, type CarveSummary } from '../carve.js';
import { AbortError } from '../errors.js';
import { formatBytes } from '../units.js';
import { EXIT_PARTIAL, interruptSignal, progressBar, reportError, type CommonFlags } from './common.js';

interface CarveFlags extends CommonFlags {
  output: string;
  sectorSize?: string;
  offset?: string;
  length?: string;
  minSize?: string;
  minWidth?: string;
  minHeight?: string;
  maxSize?: string;
  dedupe?: boolean;
  thumbnails?: boolean;
  partial?: boolean;
  reassemble?: boolean;
  blockSize?: string;
  maxGap?: string;
  maxAttempts?: string;
  force?: boolean;
  seekHole?: boolean;
  resume?: string;
  gallery?: boolean;
}

function intFlag(v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw Object.assign(new Error(`${what} must be a non-negative integer, got '${v}'`), { usage: true });
  return Number(v);
}

export function summaryOf(r: CarveReport): CarveSummary {
  const { files: _files, tool: _tool, version: _v, startedAt: _s, finishedAt: _f, options: _o, resumeState: _rs, ...summary } = r;
  return summary;
}

export function formatSummary(r: CarveReport): string {
  const lines = [
    `${r.finished === false ? 'stopped' : 'carved'} ${r.source} -> ${r.outDir}`,
    `  complete: ${r.complete}   reassembled: ${r.reassembled ?? 0}   partial: ${r.partial}   thumbnails: ${r.thumbnails}   duplicates: ${r.duplicates}   filtered: ${r.filtered}`,
    `  candidates: ${r.candidates} (${r.rejected} rejected)   written: ${formatBytes(r.bytesWritten)}`,
    `  scanned: ${formatBytes(r.nextOffset - r.start)} of ${formatBytes(r.end - r.start)} in ${r.seconds.toFixed(2)} s (${formatBytes(r.bytesPerSecond)}/s)`,
  ];
  if (r.unreadable.length > 0) {
    const bytes = r.unreadable.reduce((a, u) => a + u.length, 0);
    lines.push(`  unreadable: ${r.unreadable.length} range(s), ${formatBytes(bytes)} skipped (see report.json)`);
  }
  if (r.finished === false) lines.push(`  resume with: ${r.resumeWith ?? `--resume ${r.outDir}/report.json`}`);
  return lines.join('\n') + '\n';
}

export function carveCommand(name = 'carve', prefix = ''): Command {
  const cmd = new Command(name)
    .description('recover JPEG photos from an image file or block device (read-only), validated by decoding; writes OUTDIR/report.json and OUTDIR/index.html')
    .argument('<source>', 'image file or block device (opened read-only)')
    .requiredOption('-o, --output <dir>', 'output directory (not on the source device)')
    .addOption(new Option('-s, --sector-size <n>', 'look for JPEG starts only at multiples of n bytes (default: every byte)'))
    .option('--offset <size>', 'start scanning here (4096, 1M, ...)')
    .option('--length <size>', 'scan this many bytes')
    .option('--min-size <size>', 'do not write files smaller than this')
    .option('--min-width <px>', 'do not write images narrower than this')
    .option('--min-height <px>', 'do not write images lower than this')
    .option('--max-size <size>', 'longest JPEG to follow (default 256M)')
    .option('--dedupe', 'write identical files once (by sha256)')
    .option('--thumbnails', 'also write embedded EXIF thumbnails to OUTDIR/thumbnails')
    .option('--no-partial', 'do not write partial files')
    .option('--no-reassemble', 'do not search for the further fragments of a JPEG whose data breaks off')
    .option('--block-size <size>', 'filesystem block/cluster size fragments are aligned to (default: from a FAT/ext superblock, else from the files found)')
    .option('--max-gap <size>', 'farthest a further fragment may start after the end of the previous one (default 32M)')
    .option('--max-attempts <n>', 'continuations decoded per broken file before it is left partial (default 50000)')
    .option('-f, --force', 'allow an output directory on the same device or filesystem as the source')
    .option('--no-seek-hole', 'read holes of sparse images too')
    .option('--resume <report>', 'continue an interrupted run from its report.json')
    .option('--gallery', 'write OUTDIR/index.html, a page of the recovered photos to open in a browser (default)')
    .option('--no-gallery', 'do not write OUTDIR/index.html')
    .option('--json', 'NDJSON on stdout: one object per file, then the summary')
    .option('-q, --quiet', 'no progress bar, no summary')
    .option('--debug', 'print stack traces on errors');
  cmd.addHelpText(
    'after',
    `
Examples:
  $ ${prefix}${name} /dev/sdb -o /mnt/usb/recovered
  $ ${prefix}${name} card.img -o out --min-width 640 --dedupe --json > files.ndjson
  $ ${prefix}${name} /dev/md1 -o out --sector-size 512 --resume out/report.json
  $ ${prefix}${name} sdcard.img -o out --block-size 32K --max-gap 8M

Fragmented JPEGs: when a file's data stops decoding, the blocks after the break
(up to --max-gap, at --block-size steps) are tried as its next fragment, from the
decoder's exact state; one is taken only if the image then decodes to its end
(EOI, every MCU) - 'reassembled' in the report, with its fragments. Only files
that broke are searched, so unfragmented data scans as fast as before; each one
costs at most --max-attempts decodes (about a quarter of a second), bounding a
whole-disk run.
Baseline JPEGs only; progressive ones stay partial.

Open OUTDIR/index.html to browse what was recovered (offset, size, status, camera, date; filter and sort).

Exit codes: 0 done, 1 failed, 2 usage, 3 done but unreadable ranges were skipped, 130 stopped (files and report kept).`,
  );
  cmd.action(async (source: string, flags: CarveFlags) => {
    const interrupt = interruptSignal();
    const bar = progressBar('carving', flags);
    // Standard output closed by its reader (`--json | head -1`): stop the run
    // as Ctrl-C does (the report is written) and leave quietly with 141, as a
    // coreutils tool killed by SIGPIPE.
    const pipe = new AbortController();
    let stdoutFailed = false;
    const onStdoutError = (err: NodeJS.ErrnoException) => {
      if (stdoutFailed) return;
      stdoutFailed = true;
      pipe.abort(new AbortError(`standard output: ${err.code ?? err.message}`));
      if (err.code !== 'EPIPE') process.stderr.write(`${name}: cannot write standard output: ${err.message}\n`);
      process.exitCode = err.code === 'EPIPE' ? 141 : 1;
    };
    process.stdout.on('error', onStdoutError);
    const out = (text: string) => {
      if (!stdoutFailed && !process.stdout.destroyed) process.stdout.write(text);
    };
    try {
      let opts;
      try {
        opts = {
          outDir: flags.output,
          sectorSize: intFlag(flags.sectorSize, 'sector size'),
          offset: flags.offset,
          length: flags.length,
          minSize: flags.minSize,
          minWidth: intFlag(flags.minWidth, 'min width'),
          minHeight: intFlag(flags.minHeight, 'min height'),
          maxSize: flags.maxSize,
          blockSize: flags.blockSize,
          maxGap: flags.maxGap,
          maxAttempts: intFlag(flags.maxAttempts, 'max attempts'),
        };
      } catch (err) {
        process.stderr.write(`${name}: ${(err as Error).message}\n`);
        process.exitCode = 2;
        return;
      }
      let report: CarveReport;
      try {
        report = await carve(source, {
          ...opts,
          dedupe: !!flags.dedupe,
          thumbnails: !!flags.thumbnails,
          partials: flags.partial !== false,
          reassemble: flags.reassemble !== false,
          force: !!flags.force,
          seekHole: flags.seekHole !== false,
          resume: flags.resume,
          gallery: flags.gallery !== false,
          signal: AbortSignal.any([interrupt.signal, pipe.signal]),
          onProgress: bar.update,
          onFile: flags.json ? (f) => out(JSON.stringify(f) + '\n') : undefined,
        });
      } catch (err) {
        if (err instanceof AbortError && (err as CarveAbortError).report) {
          bar.stop();
          const r = (err as CarveAbortError).report;
          if (stdoutFailed) return; // exit code set by onStdoutError
          if (flags.json) out(JSON.stringify({ summary: summaryOf(r) }) + '\n');
          else if (!flags.quiet) out(formatSummary(r));
          process.exitCode = reportError(name, err, flags); // 130 (Ctrl-C) or 143 (SIGTERM)
          return;
        }
        throw err;
      }
      bar.stop();
      if (flags.json) out(JSON.stringify({ summary: summaryOf(report) }) + '\n');
      else if (!flags.quiet) out(formatSummary(report));
      if (report.unreadable.length > 0 && !stdoutFailed) process.exitCode = EXIT_PARTIAL;
    } catch (err) {
      bar.stop();
      process.exitCode = reportError(name, err, flags);
    } finally {
      interrupt.dispose();
    }
  });
  return cmd;
}
