// The `info` and `map` subcommands (kept apart from the program so the
// direct CLIs can reuse them).
import { Command, Option } from 'commander';
import { info, mapExtents, type ExtentMap, type ImageInfo, type ScanOptions } from '../extents.js';
import { cpuFeatures } from '../zero.js';
import { isRbdSpec } from '../rbd.js';
import { inspectFilesystems, type FsInspection } from '../sparsify.js';
import { formatBytes, parseBlockSize } from '../units.js';
import { parseImageFormat } from '../format.js';
import { checkNewFile, writeNewFile } from '../output-file.js';
import { out, printJson, runOperation, usageError, type CommonFlags } from './common.js';
import { addBackingOptions, allowBackingFrom, backingLines, type BackingFlags } from './backing-options.js';

interface ScanFlags extends CommonFlags, BackingFlags {
  blockSize?: string;
  seekHole?: boolean;
  verbose?: boolean;
  svg?: string;
  overwrite?: boolean;
  format?: string;
  fs?: boolean;
}

function scanOptions(cmd: Command): Option[] {
  addBackingOptions(cmd);
  return [
    new Option('-b, --block-size <size>', 'zero-detection block size, a power of two from 512 to 1M').default('4K'),
    new Option('--no-seek-hole', 'read every byte instead of skipping holes with SEEK_DATA/SEEK_HOLE'),
    new Option('--format <format>', 'image format: raw or qcow2 (default: detected by magic)'),
    new Option('--json', 'machine-readable output (exact byte counts)'),
    new Option('-q, --quiet', 'no progress bar'),
    new Option('--debug', 'print stack traces on errors'),
  ].map((o) => (cmd.addOption(o), o));
}

/** The scan options from the flags (usage errors before any work). */
function scanSettings(flags: ScanFlags): Pick<ScanOptions, 'blockSize' | 'seekHole' | 'format' | 'allowBacking'> {
  return { blockSize: parseBlockSize(flags.blockSize), seekHole: flags.seekHole !== false, format: parseImageFormat(flags.format), allowBacking: allowBackingFrom(flags) };
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
  lines.push(...backingLines(i.image.backingChain, ''));
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
    if (isRbdSpec(path)) return (await import('./rbd-command.js')).runRbdInfo(path, flags);
    const settings = scanSettings(flags);
    const r = await runOperation('scanning', flags, (op) => info(path, { ...settings, ...op }));
    const fsInfo: FsInspection | undefined = flags.fs ? await runOperation('reading filesystems', flags, (op) => inspectFilesystems(path, op)) : undefined;
    if (flags.json) {
      printJson({ ...r, ...(flags.verbose ? { zeroKernel: cpuFeatures().zeroKernel } : {}), ...(fsInfo ? { filesystems: fsInfo } : {}) });
    } else {
      out(formatInfo(r, !!flags.verbose));
      if (fsInfo) out(formatFsInspection(fsInfo));
    }
  });
  return cmd;
}

function formatMapText(m: ExtentMap): string {
  const w = String(m.virtualSize).length;
  const out = [`${'offset'.padStart(w)}  ${'length'.padStart(w)}  kind`];
  for (const e of m.extents) out.push(`${String(e.offset).padStart(w)}  ${String(e.length).padStart(w)}  ${e.kind}`);
  out.push(`# ${m.extents.length} extents: data ${formatBytes(m.dataBytes)}, zero ${formatBytes(m.zeroBytes)}, holes ${formatBytes(m.holeBytes)}`);
  out.push(...backingLines(m.image.backingChain, '# '));
  return out.join('\n') + '\n';
}

export function mapCommand(): Command {
  const cmd = new Command('map')
    .description('list the hole / zero / data extents of a raw or qcow2 image or a block device')
    .argument('<path>', 'raw image file or block device')
    .option('--svg <file>', 'also draw the map as an SVG picture (open it in a browser); a new file: never a device or the image')
    .option('--overwrite', 'replace an existing --svg file (atomically, through a temporary file and rename)');
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
    const settings = scanSettings(flags);
    if (flags.overwrite && flags.svg === undefined) usageError('--overwrite applies to --svg FILE only');
    // Refuse a bad --svg target before the scan, not after minutes of it;
    // writeNewFile checks again when it creates the file.
    const svgRule = { overwrite: !!flags.overwrite, protect: [path], what: 'SVG' };
    if (flags.svg !== undefined) await checkNewFile(flags.svg, svgRule);
    const r = await runOperation('mapping', flags, (op) => mapExtents(path, { ...settings, ...op }));
    if (flags.svg !== undefined) {
      const svg = (await import('../svg.js')).renderExtentSvg(r);
      // The backing files of a qcow2 are sources too.
      await writeNewFile(flags.svg, svg, { ...svgRule, protect: [path, ...(r.image.backingChain ?? []).map((b) => ({ path: b.path, role: `a backing file of '${path}', opened as` }))] });
    }
    if (flags.json) {
      // One extent per line inside a JSON array, like `qemu-img map --output=json`.
      const lines = r.extents.map((e) => JSON.stringify(e));
      out('[' + lines.join(',\n') + ']\n');
    } else {
      out(formatMapText(r));
    }
  });
  return cmd;
}
