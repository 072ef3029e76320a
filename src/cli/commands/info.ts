// `blocksmith info`: the summary of an image or device (sizes, data/zero/hole
// bytes, format, backing chain; with --fs the filesystems inside).
import { Command } from '../commander.js';
import { info, type ImageInfo } from '../../api/extents.js';
import { cpuFeatures } from '../../api/zero.js';
import { isRbdSpec } from '../../api/rbd.js';
import { inspectFilesystems, type FsInspection } from '../../api/sparsify.js';
import { formatBytes } from '../../api/units.js';
import { out, printJson, runOperation } from '../harness.js';
import { backingLines } from './backing-options.js';
import { scanOptions, scanSettings, type ScanFlags } from './scan-flags.js';

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
    if (isRbdSpec(path)) return (await import('./rbd.js')).runRbdInfo(path, flags);
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

