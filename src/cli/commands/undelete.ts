// `blocksmith undelete SOURCE -o OUTDIR [--list]`: deleted files of FAT/exFAT/ext2/3/4 volumes, by name.
import { Command } from '../commander.js';
import type { UndeleteAbortError, UndeletedFile, UndeleteReport } from '../../api/undelete.js';
import { AbortError } from '../../api/errors.js';
import { formatBytes } from '../../api/units.js';
import { out, runOperation, usageError, type CommonFlags } from '../harness.js';

interface UndeleteFlags extends CommonFlags {
  output?: string;
  list?: boolean;
  force?: boolean;
}

/** "p1:" before paths when several volumes were read (their paths would mix), else nothing. */
function volumePrefix(r: UndeleteReport): (f: UndeletedFile) => string {
  const read = r.volumes.filter((v) => v.read).length;
  if (read <= 1) return () => '';
  return (f) => {
    const v = r.volumes[f.volume];
    return v.partition === 0 ? 'whole:' : `p${v.partition}:`;
  };
}

/** One line per deleted file, like `fls -rd`: status, size, mtime (local wall-clock time for FAT), path
 * ("(first letter guessed)" after a FAT 8.3 name whose first character came from the names around it;
 * "(inode N, from WHERE)" on ext: the inode and where the metadata that located its bytes came from). */
export function formatListLine(f: UndeletedFile, prefix = ''): string {
  const status = f.directory ? 'dir' : f.status;
  const mtime = f.times.modified ? f.times.modified.replace('T', ' ').replace(/\.\d+/, '').replace('Z', ' UTC') : '-';
  const ext = f.inode !== undefined ? `  (inode ${f.inode}${f.foundIn ? `, from ${f.foundIn}` : ''})` : '';
  return `${status.padEnd(11)} ${String(f.size).padStart(12)}  ${mtime.padEnd(23)} ${prefix}/${f.path}${f.directory ? '/' : ''}${f.nameGuessed ? '  (first letter guessed)' : ''}${ext}`;
}

export function formatUndeleteSummary(r: UndeleteReport): string {
  const lines = [`${r.list ? 'listed' : r.finished ? 'recovered' : 'stopped'} ${r.source}${r.outDir ? ` -> ${r.outDir}` : ''}`];
  for (const v of r.volumes) {
    const where = v.partition === 0 ? 'whole source' : `partition ${v.partition}`;
    if (v.read) {
      const label = v.label ? ` '${v.label}'` : '';
      lines.push(`  ${where}: ${v.filesystem}${label}, ${formatBytes(v.clusterSize ?? 0)} clusters, ${v.deleted} deleted entries`);
      for (const p of v.problems ?? []) lines.push(`    problem: ${p}`);
    } else lines.push(`  ${where}: not read: ${v.problem}`);
  }
  const ok = r.list ? 'recoverable' : 'recovered';
  lines.push(
    `  ${ok}: ${r.recovered}${r.list ? '' : `   reassembled: ${r.reassembled}`}   partial: ${r.partial}   overwritten: ${r.overwritten}   empty: ${r.empty}   unreadable: ${r.unreadable}   directories: ${r.directories}`,
  );
  if (!r.list) lines.push(`  written: ${formatBytes(r.bytesWritten)} in ${r.seconds.toFixed(2)} s; report: ${r.outDir}/report.json`);
  return lines.join('\n') + '\n';
}

function undeleteHelp(command: string): string {
  return `
Examples:
  $ ${command} card.img --list
  $ ${command} /dev/sdb --list --json > deleted.ndjson
  $ ${command} /dev/sdb -o /mnt/usb/undeleted
  $ ${command} sdcard.img -o out && carve sdcard.img -o out/carved

Reads the FAT12/16/32, exFAT or ext2/3/4 filesystem on the whole source or on
each MBR/GPT partition, finds every deleted entry (in live and deleted
directories) and writes it to OUTDIR/recovered/<original path> with its mtime
and atime. exFAT files marked contiguous are read as such; on FAT the cluster
chain is gone, so a file is taken from its first cluster on, skipping clusters
live files own. On ext2/3/4 a deleted inode's newest copy that still maps its
blocks (the inode table, or the jbd2 journal's older copies) gives its bytes,
and its name comes from live or journalled directory blocks
(lost+found/#INODE when none survives); holes are written as zeros.
A file whose clusters or blocks a live file now owns is listed as overwritten
and not written. JPEGs are checked by decoding: one that does not decode is
handed to carve's fragment search (from its first cluster, continuations in
free clusters only) and written as reassembled when a continuation decodes to
its end; otherwise it is reported partial.
FAT times are local wall-clock times: they are restored in this machine's time
zone (TZ) and shown without a zone.
A filesystem mounted read-write is refused (what is on disk is not current);
a read-only mount is fine.

--list prints one line per deleted file (status, size, mtime, path; on ext the
inode and where it was found; NDJSON with --json) and writes nothing. OUTDIR must be new or empty, and not on the source's
storage (unless --force); OUTDIR/report.json describes every file, is kept
current while files are written, and says stopped or failed (with the error and
the files written so far) when the run is interrupted or the disk fills up.

Exit codes: 0 done, 1 failed (no FAT, exFAT or ext filesystem could be read; mounted read-write), 2 usage, 130 stopped (files and report kept).`;
}

async function runUndelete(source: string, flags: UndeleteFlags): Promise<void> {
  if (!flags.list && !flags.output) usageError('an output directory is required (-o OUTDIR), or --list to only list the deleted files');
  if (flags.list && flags.output) usageError('--list writes nothing: give either --list or -o OUTDIR');
  const print = (r: UndeleteReport) => {
    const prefix = volumePrefix(r);
    if (flags.json) {
      for (const f of r.files) out(JSON.stringify(f) + '\n');
      const { files: _files, ...summary } = r;
      out(JSON.stringify({ summary }) + '\n');
      return;
    }
    if (r.list) for (const f of r.files) out(formatListLine(f, prefix(f)) + '\n');
    if (!flags.quiet) out(formatUndeleteSummary(r));
  };
  // Loaded here, after the options are checked, not with the command: `--help` and usage errors need none of it.
  const { undelete } = await import('../../api/undelete.js');
  let report: UndeleteReport;
  try {
    report = await runOperation(flags.list ? 'reading' : 'recovering', flags, (op) =>
      undelete(source, { outDir: flags.output, list: !!flags.list, force: !!flags.force, signal: op.signal, onProgress: op.onProgress }),
    );
  } catch (err) {
    if (err instanceof AbortError && (err as UndeleteAbortError).report) print((err as UndeleteAbortError).report);
    throw err;
  }
  print(report);
}

export function undeleteCommand(name = 'undelete', prefix = 'blocksmith '): Command {
  const cmd = new Command(name)
    .description('recover deleted files by name from FAT12/16/32, exFAT and ext2/3/4 volumes (read-only), or list them with --list')
    .argument('<source>', 'image file or block device (opened read-only)')
    .option('-o, --output <dir>', 'output directory: new or empty, not on the source device')
    .option('--list', 'only list the deleted files (status, size, mtime, path); write nothing')
    .option('-f, --force', 'allow an output directory on the same device or filesystem as the source')
    .option('--json', 'NDJSON on stdout: one object per deleted file, then the summary')
    .option('-q, --quiet', 'no progress bar, no summary')
    .option('--debug', 'print stack traces on errors');
  cmd.addHelpText('after', undeleteHelp(prefix + name));
  cmd.action(runUndelete);
  return cmd;
}
