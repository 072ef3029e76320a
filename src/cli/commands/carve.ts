// `carve SOURCE -o OUTDIR`, shared by the direct `carve` CLI and `blocksmith carve`.
import { Command, Option } from '../commander.js';
import type { CarveAbortError, CarveReport, CarveSummary } from '../../api/carve.js';
import { AbortError } from '../../api/errors.js';
import { formatBytes, formatSizeFlag, parseCount, parseSizeIn } from '../../api/units.js';
import { defaults } from '../../api/defaults.js';
import type { CarveScopeName } from '../../seam/native.js';
import { EXIT_PARTIAL, out, runOperation, warn, type CommonFlags } from '../harness.js';

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
  scope?: CarveScopeName;
  undelete?: boolean;
}

/** The options of one carve run, with every size and number checked (usage errors, exit 2) before any work. */
function parseCarveOptions(flags: CarveFlags) {
  const size = (v: string | undefined, what: string, bounds?: Parameters<typeof parseSizeIn>[2]) => (v === undefined ? undefined : parseSizeIn(v, what, bounds));
  const count = (v: string | undefined, what: string) => (v === undefined ? undefined : parseCount(v, what));
  return {
    outDir: flags.output,
    sectorSize: size(flags.sectorSize, 'sector size', { min: 1, max: 1 << 20 }),
    offset: size(flags.offset, 'offset'),
    // 0 would be read as "to the end": a length names at least one byte (omit it to scan to the end).
    length: size(flags.length, 'length', { min: 1 }),
    minSize: size(flags.minSize, 'min size'),
    minWidth: count(flags.minWidth, 'min width'),
    minHeight: count(flags.minHeight, 'min height'),
    maxSize: size(flags.maxSize, 'max size', { min: 1 }),
    // Filesystem blocks and clusters: powers of two, like --block-size of the other commands (up to exFAT's 32 MiB is not needed: 16 MiB).
    blockSize: size(flags.blockSize, 'block size', { min: 512, max: 16 << 20, powerOfTwo: true }),
    maxGap: size(flags.maxGap, 'max gap'),
    maxAttempts: count(flags.maxAttempts, 'max attempts'),
  };
}

export function summaryOf(r: CarveReport): CarveSummary {
  const { files: _files, tool: _tool, version: _v, startedAt: _s, finishedAt: _f, options: _o, resumeState: _rs, ...summary } = r;
  return summary;
}

/** The summary's scope line: what was scanned and what was left out, or why everything was. */
function scopeLine(s: NonNullable<CarveReport['scope']>): string {
  const what = s.used === 'all' ? 'all bytes' : `${s.used} space`;
  const skipped = s.bytesSkipped > 0 ? `, ${formatBytes(s.bytesSkipped)} ${s.used === 'free' ? 'allocated' : 'free'} skipped` : '';
  const why = s.reason ? ` (${s.reason})` : '';
  return `  scope: ${what}: ${formatBytes(s.bytesInScope)} in scope${skipped}${why}`;
}

/** The summary's line for the recovery by name (--undelete). */
function undeleteLine(u: NonNullable<CarveReport['undelete']>): string {
  if (u.reason) return `  by name: nothing (${u.reason})`;
  const fs = [...new Set(u.volumes.filter((v) => v.read).map((v) => v.filesystem))].join(', ');
  const state = u.finished ? '' : ' (stopped before the end)';
  return `  by name (${fs}): recovered: ${u.recovered}   partial: ${u.partial}   overwritten: ${u.overwritten}   empty: ${u.empty}   unreadable: ${u.unreadable}   -> recovered/${state}`;
}

export function formatSummary(r: CarveReport): string {
  const lines = [
    `${r.finished === false ? 'stopped' : 'carved'} ${r.source} -> ${r.outDir}`,
    ...(r.undelete ? [undeleteLine(r.undelete)] : []),
    `  complete: ${r.complete}   reassembled: ${r.reassembled ?? 0}   partial: ${r.partial}   thumbnails: ${r.thumbnails}   duplicates: ${r.duplicates}   filtered: ${r.filtered}`,
    `  candidates: ${r.candidates} (${r.rejected} rejected)   written: ${formatBytes(r.bytesWritten)}`,
    ...(r.scope ? [scopeLine(r.scope)] : []),
    `  scanned: ${formatBytes(r.nextOffset - r.start)} of ${formatBytes(r.end - r.start)} in ${r.seconds.toFixed(2)} s (${formatBytes(r.bytesPerSecond)}/s)`,
  ];
  if (r.unreadable.length > 0) {
    const bytes = r.unreadable.reduce((a, u) => a + u.length, 0);
    lines.push(`  unreadable: ${r.unreadable.length} range(s), ${formatBytes(bytes)} skipped (see report.json)`);
  }
  if (r.finished === false) lines.push(`  resume with: ${r.resumeWith ?? `--resume ${r.outDir}/report.json`}`);
  return lines.join('\n') + '\n';
}

/** The text after the options in --help: examples, how fragments are searched, exit codes. */
function carveHelp(command: string): string {
  return `
Examples:
  $ ${command} /dev/sdb -o /mnt/usb/recovered
  $ ${command} card.img -o out --min-width 640 --dedupe --json > files.ndjson
  $ ${command} /dev/md1 -o out --sector-size 512 --resume out/report.json
  $ ${command} sdcard.img -o out --block-size 32K --max-gap 8M
  $ ${command} card.img -o out --scope all        # live files too, not only deleted ones
  $ ${command} sdcard.img -o out --undelete     # FAT/exFAT/ext: deleted files by name and date first, then carve the rest
  $ blocksmith undelete sdcard.img -o undeleted    # only the files recovered by name

Fragmented JPEGs: when a file's data stops decoding, the blocks after the break
(up to --max-gap, at --block-size steps) are tried as its next fragment, from the
decoder's exact state; one is taken only if the image then decodes to its end
(EOI, every MCU) - 'reassembled' in the report, with its fragments. Only files
that broke are searched, so unfragmented data scans as fast as before; each one
costs at most --max-attempts decodes (about a quarter of a second), bounding a
whole-disk run.
Baseline JPEGs only; progressive ones stay partial.

Scope: on a recognised, consistent filesystem (ext2/3/4, FAT12/16/32, exFAT;
whole device or MBR/GPT partitions) the default is free space only: deleted
files, without the live ones. Bytes outside any recognised filesystem are
scanned in every scope; a damaged filesystem or none at all means all bytes,
and report.json says why (scope.reason).

--undelete: first the deleted files the FAT/exFAT/ext2/3/4 metadata still names are
written to OUTDIR/recovered/<original path> with their mtime (as blocksmith
undelete does; any file type), then the carving: in scope free it leaves out the
bytes of the files recovered whole, so each deleted photo comes back once, by
name when its directory entry survives, else by offset. report.json, --json and
index.html list both (method metadata / carved / reassembled). A resumed run
does not recover by name again unless the interrupted one stopped during it.
A filesystem mounted read-write is refused with --undelete (a read-only mount is fine).

Open OUTDIR/index.html to browse what was recovered (offset, size, status, camera, date; filter and sort).

Exit codes: 0 done, 1 failed, 2 usage, 3 done but unreadable ranges were skipped, 130 stopped (files and report kept).`;
}

/** One carve from the flags: NDJSON or a summary on stdout; exit 3 when unreadable ranges were skipped. */
async function runCarveCommand(source: string, flags: CarveFlags): Promise<void> {
  const opts = parseCarveOptions(flags);
  const printSummary = (r: CarveReport) => {
    if (flags.json) out(JSON.stringify({ summary: summaryOf(r) }) + '\n');
    else if (!flags.quiet) out(formatSummary(r));
  };
  // Loaded here, after the options are checked, not with the command: `--help` and usage errors need none of it.
  const { carve } = await import('../../api/carve.js');
  let report: CarveReport;
  try {
    report = await runOperation('carving', flags, (op) =>
      carve(source, {
        ...opts,
        dedupe: !!flags.dedupe,
        thumbnails: !!flags.thumbnails,
        partials: flags.partial !== false,
        reassemble: flags.reassemble !== false,
        force: !!flags.force,
        seekHole: flags.seekHole !== false,
        resume: flags.resume,
        scope: flags.scope,
        undelete: !!flags.undelete,
        gallery: flags.gallery !== false,
        signal: op.signal,
        onProgress: op.onProgress,
        onFile: flags.json ? (f) => out(JSON.stringify(f) + '\n') : undefined,
      }),
    );
  } catch (err) {
    // Stopped (Ctrl-C, SIGTERM): the summary of what was done, then "stopped" and 130 / 143 from the harness.
    if (err instanceof AbortError && (err as CarveAbortError).report) printSummary((err as CarveAbortError).report);
    throw err;
  }
  // An explicit scope that could not be used: said once, besides the report.
  const scope = report.scope;
  if (scope && scope.requested !== 'auto' && scope.used !== scope.requested) warn(`--scope ${scope.requested}: scanned all bytes instead: ${scope.reason}`);
  if (report.undelete?.reason) warn(`--undelete: nothing recovered by name: ${report.undelete.reason}`);
  printSummary(report);
  if (report.unreadable.length > 0) process.exitCode = EXIT_PARTIAL;
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
    .option('--max-size <size>', `longest JPEG to follow (default ${formatSizeFlag(defaults.carve.maxSize)})`)
    .option('--dedupe', 'write identical files once (by sha256)')
    .option('--thumbnails', 'also write embedded EXIF thumbnails to OUTDIR/thumbnails')
    .option('--no-partial', 'do not write partial files')
    .option('--no-reassemble', 'do not search for the further fragments of a JPEG whose data breaks off')
    .option('--block-size <size>', 'filesystem block/cluster size fragments are aligned to (default: from a FAT/ext superblock, else from the files found)')
    .option('--max-gap <size>', `farthest a further fragment may start after the end of the previous one (default ${formatSizeFlag(defaults.carve.maxGap)})`)
    .option('--max-attempts <n>', `continuations decoded per broken file before it is left partial (default ${defaults.carve.maxAttempts})`)
    .option('-f, --force', 'allow an output directory on the same device or filesystem as the source')
    .option('--no-seek-hole', 'read holes of sparse images too')
    .addOption(
      new Option('--scope <scope>', 'which bytes to scan: free (what no live file or filesystem structure owns), allocated, all, or auto: free when the ext2/3/4, FAT or exFAT filesystems are recognised and consistent, else all')
        .choices(['auto', 'free', 'all', 'allocated'])
        .default(defaults.carve.scope),
    )
    .option('--undelete', 'first recover the deleted files of FAT/exFAT/ext volumes by name into OUTDIR/recovered (any type, mtimes restored), then carve what they did not cover')
    .option('--resume <report>', 'continue an interrupted run from its report.json')
    .option('--gallery', 'write OUTDIR/index.html, a page of the recovered photos to open in a browser (default)')
    .option('--no-gallery', 'do not write OUTDIR/index.html')
    .option('--json', 'NDJSON on stdout: one object per file, then the summary')
    .option('-q, --quiet', 'no progress bar, no summary')
    .option('--debug', 'print stack traces on errors');
  cmd.addHelpText('after', carveHelp(prefix + name));
  cmd.action(runCarveCommand);
  return cmd;
}
