// The `info` and `map` subcommands (kept apart from the program so the
// direct CLIs can reuse them).
import { writeFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { info, mapExtents, type ExtentMap, type ImageInfo, type ScanOptions } from '../extents.js';
import { cpuFeatures } from '../zero.js';
import { isRbdSpec } from '../rbd.js';
import { inspectFilesystems, type FsInspection } from '../sparsify.js';
import { formatBytes, parseBlockSize } from '../units.js';
import { parseImageFormat } from '../format.js';
import { interruptSignal, printJson, progressBar, reportError, type CommonFlags } from './common.js';

interface ScanFlags extends CommonFlags {
  blockSize?: string;
  seekHole?: boolean;
  verbose?: boolean;
  svg?: string;
  format?: string;
  fs?: boolean;
}

function scanOptions(cmd: Command): Option[] {
  return [
    new Option('-b, --block-size <size>', 'zero-detection block size, a power of two from 512 to 1M').default('4K'),
    new Option('--no-seek-hole', 'read every byte instead of skipping holes with SEEK_DATA/SEEK_HOLE'),
    new Option('--format <format>', 'image format: raw or qcow2 (default: detected by magic)'),
    new Option('--json', 'machine-readable output (exact byte counts)'),
    new Option('-q, --quiet', 'no progress bar'),
    new Option('--debug', 'print stack traces on errors'),
  ].map((o) => (cmd.addOption(o), o));
}

/** Runs a scan with progress bar and Ctrl-C handling; returns the result or an exit code. */
async function withScan<T>(label: string, flags: ScanFlags, run: (opts: ScanOptions) => Promise<T>): Promise<T | number> {
  const blockSize = parseBlockSize(flags.blockSize);
  const interrupt = interruptSignal();
  const bar = progressBar(label, flags);
  try {
    const format = parseImageFormat(flags.format);
    return await run({ blockSize, seekHole: flags.seekHole !== false, format, signal: interrupt.signal, onProgress: bar.update });
  } catch (err) {
    bar.stop();
    return reportError('blocksmith', err, flags);
  } finally {
    bar.stop();
    interrupt.dispose();
  }
}

function pct(part: number, whole: number): string {
  return whole > 0 ? ` (${((100 * part) / whole).toFixed(1)}%)` : '';
}

function formatImage(i: ImageInfo): string {
  const d = i.image;
  if (d.format !== 'qcow2') return d.format;
  const parts = [`version ${d.version}`, `cluster size ${formatBytes(d.clusterSize ?? 0)}`, `compression ${d.compression}`];
  if (d.extendedL2) parts.push('extended L2');
  parts.push(`file size ${formatBytes(d.fileSize)}`);
  return `qcow2 (${parts.join(', ')})`;
}

export function formatInfo(i: ImageInfo, verbose: boolean): string {
  const lines = [
    `image: ${i.path}`,
    `kind: ${i.kind === 'block-device' ? 'block device' : 'regular file'}`,
    `format: ${formatImage(i)}`,
    `virtual size: ${formatBytes(i.virtualSize)} (${i.virtualSize} bytes)`,
    `disk size: ${formatBytes(i.allocatedSize)} (${i.allocatedSize} bytes allocated)`,
    `data: ${formatBytes(i.dataBytes)}${pct(i.dataBytes, i.virtualSize)}`,
    `zero (allocated, reclaimable): ${formatBytes(i.zeroBytes)}${pct(i.zeroBytes, i.virtualSize)}`,
    `holes: ${formatBytes(i.holeBytes)}${pct(i.holeBytes, i.virtualSize)}`,
    `block size: ${formatBytes(i.blockSize)}`,
  ];
  for (const b of i.image.backingChain ?? []) lines.push(`backing file: ${b.path} (${b.format})`);
  if (i.logicalSectorSize) lines.push(`sector size: ${i.logicalSectorSize} logical / ${i.physicalSectorSize} physical`);
  if (verbose) {
    const cpu = cpuFeatures();
    lines.push(`extents: ${i.extentCount}`);
    lines.push(`zero kernel: ${cpu.zeroKernel} (available: ${cpu.availableZeroKernels.join(', ')}; arch ${cpu.arch})`);
  }
  return lines.join('\n') + '\n';
}

/**
 * `info --fs`: the partition table, then one line per partition, whatever became of it: an ext filesystem's usage,
 * "no known filesystem", or why sparsify --fs would refuse it.
 */
export function formatFsInspection(fsInfo: FsInspection): string {
  if (fsInfo.error) return `partition table: cannot be used: ${fsInfo.error.message}\n`;
  const lines = [`partition table: ${fsInfo.partitionScheme}${fsInfo.gptBackupUsed ? ' (backup GPT used: the primary is corrupt)' : ''}`];
  for (const v of fsInfo.volumes) {
    const where = `${v.number === 0 ? 'whole image' : `partition ${v.number} (${v.type})`} at ${v.offset}, ${formatBytes(v.length)}`;
    if (v.action === 'free-blocks') {
      const checked = v.verified ? `; bitmaps agree with ${v.verified.inodes} inodes` : '';
      lines.push(`  ${where}: ${v.filesystem}, ${v.blockSize} B blocks, used ${formatBytes(v.usedBytes)}, free ${formatBytes(v.freeBytes)}${checked}`);
    } else if (v.action === 'refused') {
      lines.push(`  ${where}: ${v.filesystem || 'ext'}, refused by sparsify --fs: ${v.error?.message ?? 'unknown reason'}`);
    } else {
      lines.push(`  ${where}: no known filesystem`);
    }
  }
  return lines.join('\n') + '\n';
}

export function infoCommand(): Command {
  const cmd = new Command('info')
    .description('summarise a raw or qcow2 image or a block device: format, size, allocation, holes, zero blocks, data')
    .argument('<path>', 'raw or qcow2 image file, or block device (/dev/sdX, /dev/loopN, /dev/mapper/...)')
    .option('-v, --verbose', 'also show the extent count and the SIMD kernel in use')
    .option('--fs', 'also list the partitions and ext2/3/4 filesystems: used, free (what sparsify --fs reclaims), or why sparsify --fs refuses one');
  scanOptions(cmd);
  cmd.addHelpText(
    'after',
    `
Examples:
  $ blocksmith info vm.raw
  $ blocksmith info --json /dev/loop0
  $ blocksmith info vm.qcow2             # format, virtual size, backing chain, data by content
  $ blocksmith info --block-size 64K --verbose vm.raw
  $ blocksmith info --fs vm.raw          # partitions, ext filesystems, free blocks
  $ blocksmith info rbd:rbd/vm1          # provisioned vs used bytes of an RBD image`,
  );
  cmd.action(async (path: string, flags: ScanFlags) => {
    if (isRbdSpec(path)) return (await import('./rbd-command.js')).runRbdInfo('blocksmith', path, flags);
    const r = await withScan<ImageInfo>('scanning', flags, (o) => info(path, o));
    if (typeof r === 'number') {
      process.exitCode = r;
      return;
    }
    let fsInfo: FsInspection | undefined;
    if (flags.fs) {
      try {
        fsInfo = await inspectFilesystems(path);
      } catch (err) {
        process.exitCode = reportError('blocksmith', err, flags);
        return;
      }
    }
    if (flags.json) {
      printJson({ ...r, ...(flags.verbose ? { zeroKernel: cpuFeatures().zeroKernel } : {}), ...(fsInfo ? { filesystems: fsInfo } : {}) });
    } else {
      process.stdout.write(formatInfo(r, !!flags.verbose));
      if (fsInfo) process.stdout.write(formatFsInspection(fsInfo));
    }
  });
  return cmd;
}

function formatMapText(m: ExtentMap): string {
  const w = String(m.virtualSize).length;
  const out = [`${'offset'.padStart(w)}  ${'length'.padStart(w)}  kind`];
  for (const e of m.extents) out.push(`${String(e.offset).padStart(w)}  ${String(e.length).padStart(w)}  ${e.kind}`);
  out.push(`# ${m.extents.length} extents: data ${formatBytes(m.dataBytes)}, zero ${formatBytes(m.zeroBytes)}, holes ${formatBytes(m.holeBytes)}`);
  return out.join('\n') + '\n';
}

export function mapCommand(): Command {
  const cmd = new Command('map')
    .description('list the hole / zero / data extents of a raw or qcow2 image or a block device')
    .argument('<path>', 'raw image file or block device')
    .option('--svg <file>', 'also draw the map as an SVG picture (open it in a browser)');
  scanOptions(cmd);
  cmd.addHelpText(
    'after',
    `
Examples:
  $ blocksmith map vm.raw
  $ blocksmith map --json vm.raw > extents.json
  $ blocksmith map --json vm.qcow2        # from the L1/L2 tables, refined by content
  $ blocksmith map --svg vm.svg /dev/loop0`,
  );
  cmd.action(async (path: string, flags: ScanFlags) => {
    const r = await withScan<ExtentMap>('mapping', flags, (o) => mapExtents(path, o));
    if (typeof r === 'number') {
      process.exitCode = r;
      return;
    }
    if (flags.svg) await writeFile(flags.svg, (await import('../svg.js')).renderExtentSvg(r));
    if (flags.json) {
      // One extent per line inside a JSON array, like `qemu-img map --output=json`.
      const lines = r.extents.map((e) => JSON.stringify(e));
      process.stdout.write('[' + lines.join(',\n') + ']\n');
    } else {
      process.stdout.write(formatMapText(r));
    }
  });
  return cmd;
}
