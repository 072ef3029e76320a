// `sparsify IMAGE` (in place) and `sparsify SRC DST` (sparse copy), shared by
// the direct `sparsify` CLI and `blocksmith sparsify`.
import { Command, Option } from '../commander.js';
import { sparseCopy, sparsify, type SparsifyReport } from '../../api/sparsify.js';
import { formatBytes, formatSizeFlag, parseBlockSize } from '../../api/units.js';
import { defaults } from '../../api/defaults.js';
import { isRbdSpec } from '../../api/rbd.js';
import { parseImageFormat } from '../../api/image-format.js';
import { out, printJson, runOperation, usageError, warn } from '../harness.js';
import { addImportOptions, runRbdExport, runRbdImport, runRbdSparsify, type RbdFlags } from './rbd.js';
import { allowBackingFrom, backingLines } from './backing-options.js';

interface SparsifyFlags extends RbdFlags {
  blockSize?: string;
  seekHole?: boolean;
  dryRun?: boolean;
  force?: boolean;
  overwrite?: boolean;
  fs?: boolean;
}

export function formatReport(r: SparsifyReport): string {
  const rate = `${formatBytes(r.bytesPerSecond)}/s`;
  const lines: string[] = [];
  if (r.target !== undefined) {
    lines.push(`${r.dryRun ? 'would copy' : 'copied'} ${r.source}${r.format === 'qcow2' ? ' (qcow2)' : ''} -> ${r.target} (${formatBytes(r.size)}, ${r.size} bytes)`);
    lines.push(...backingLines(r.backingChain, '  '));
    lines.push(`  disk size: ${formatBytes(r.allocatedBefore)} (source) -> ${formatBytes(r.allocatedAfter)} (copy${r.dryRun ? ', estimated' : ''})`);
    lines.push(`  data ${r.dryRun ? 'to write' : 'written'}: ${formatBytes(r.dataBytes)}; left as holes: ${formatBytes(r.zeroBytes)} zero blocks + ${formatBytes(r.holeBytes)} holes`);
  } else {
    lines.push(`${r.dryRun ? 'dry run: ' : ''}${r.source} (${r.kind === 'block-device' ? 'block device' : 'file'}, ${formatBytes(r.size)})`);
    if (r.kind === 'file') {
      lines.push(
        r.dryRun
          ? `  disk size: ${formatBytes(r.allocatedBefore)} -> about ${formatBytes(r.allocatedBefore - r.reclaimedBytes)} (would reclaim about ${formatBytes(r.reclaimedBytes)})`
          : `  disk size: ${formatBytes(r.allocatedBefore)} -> ${formatBytes(r.allocatedAfter)} (reclaimed ${formatBytes(r.reclaimedBytes)})`,
      );
    }
    lines.push(`  ${r.dryRun ? 'holes to punch' : 'holes punched'}: ${r.holesPunched} (over ${formatBytes(r.zeroBytes)} of zero blocks)`);
    lines.push(`  data: ${formatBytes(r.dataBytes)}; already holes: ${formatBytes(r.holeBytes)}`);
  }
  if (r.volumes !== undefined) {
    lines.push(`  filesystem free blocks ${r.dryRun ? 'to reclaim' : 'reclaimed'} without reading: ${formatBytes(r.freeBytes ?? 0)} (partition table: ${r.partitionScheme})`);
    for (const v of r.volumes) {
      const where = v.number === 0 ? 'whole image' : `partition ${v.number} (${v.type})`;
      const span = `at ${v.offset}, ${formatBytes(v.length)}`;
      lines.push(
        v.action === 'free-blocks'
          ? `    ${where} ${span}: ${v.filesystem}${v.label ? ` "${v.label}"` : ''}, ${v.blockSize} B blocks, used ${formatBytes(v.usedBytes)}, free ${formatBytes(v.freeBytes)}: free blocks ${r.dryRun ? 'would be ' : ''}${r.target === undefined ? 'punched' : 'left as holes'}`
          : `    ${where} ${span}: no known filesystem: zero detection only`,
      );
    }
  }
  lines.push(`  time: ${r.seconds.toFixed(2)} s (${rate})`);
  return lines.join('\n') + '\n';
}

export function sparsifyCommand(name = 'sparsify', prefix = ''): Command {
  const cmd = new Command(name)
    .description('punch holes over zero blocks in place (IMAGE), or write a sparse copy (SRC DST); content never changes')
    .argument('<image>', 'raw image file, block device or rbd:POOL/IMAGE (in place), or the source of a copy (raw or qcow2)')
    .argument('[target]', 'write a sparse copy here instead of changing IMAGE')
    .addOption(new Option('-b, --block-size <size>', 'zero-detection block size, a power of two from 512 to 1M').default(formatSizeFlag(defaults.sparsify.blockSize)))
    .option('--no-seek-hole', 'read every byte instead of skipping holes (for filesystems that report holes wrongly)')
    .option('-n, --dry-run', 'report what would be reclaimed; change nothing')
    .option('-f, --force', 'proceed although the image is in use (in place: other openers, QEMU locks, loop devices, mounts; an RBD image: other clients, then by Ceph\'s own sparsify; copies: a VM or process writing the source); says what it overrode')
    .option('--overwrite', 'copy: replace an existing target')
    .option('--fs', 'also reclaim the free blocks of ext2/3/4 filesystems in the image (MBR/GPT partitions), checked against the inodes first; refuses dirty, mounted or inconsistent ones')
    .option('--json', 'print the report as JSON (exact byte counts)')
    .option('-q, --quiet', 'no progress bar, no report')
    .option('--debug', 'print stack traces on errors');
  addImportOptions(cmd);
  cmd.addHelpText(
    'after',
    `
Examples:
  $ ${prefix}${name} vm.raw                      # punch holes in place; the VM must be stopped
  $ ${prefix}${name} vm.raw vm-sparse.raw        # sparse copy (temp file, renamed when complete)
  $ ${prefix}${name} vm.qcow2 vm.raw             # qcow2 -> sparse raw, without qemu-img
  $ ${prefix}${name} --allow-backing-dir /srv/base vm.qcow2 vm.raw  # also follow backing files kept in /srv/base
  $ ${prefix}${name} --fs vm.raw                 # also punch the ext4 free blocks (deleted files' junk)
  $ ${prefix}${name} --dry-run --json /dev/loop0 # what would be reclaimed on a device
  $ ${prefix}${name} vm.raw rbd:rbd/vm1 --verify  # sparse, parallel copy into Ceph RBD
  $ ${prefix}${name} rbd:rbd/vm1 vm1.raw         # RBD image -> sparse raw file
  $ ${prefix}${name} rbd:rbd/vm1                 # free the image's zero objects in place (nobody else may have it open)
  $ ${prefix}${name} --force rbd:rbd/vm1         # ... while a VM runs on it: Ceph's own sparsify, atomic per object

RBD targets follow qemu's syntax: rbd:pool[/namespace]/image[:id=USER][:conf=PATH][:keyring=PATH]`,
  );
  cmd.action(async (image: string, target: string | undefined, flags: SparsifyFlags) => {
    if (target === undefined && flags.overwrite) usageError('--overwrite applies to copies (SRC DST) only');
    if (flags.fs && (isRbdSpec(image) || (target !== undefined && isRbdSpec(target)))) usageError('--fs applies to raw images and block devices, not to RBD copies');
    if (target !== undefined && isRbdSpec(target)) return runRbdImport(image, target, flags);
    if (isRbdSpec(image)) {
      if (target === undefined) return runRbdSparsify(image, flags);
      return runRbdExport(image, target, flags);
    }
    const blockSize = parseBlockSize(flags.blockSize);
    const format = parseImageFormat(flags.format);
    const report = await runOperation(target === undefined ? 'sparsifying' : 'copying', flags, (op) => {
      const common = { blockSize, seekHole: flags.seekHole !== false, dryRun: !!flags.dryRun, format, fs: !!flags.fs, signal: op.signal, onProgress: op.onProgress };
      return target === undefined ? sparsify(image, { ...common, force: !!flags.force }) : sparseCopy(image, target, { ...common, overwrite: !!flags.overwrite, force: !!flags.force, allowBacking: allowBackingFrom(flags) });
    });
    for (const w of report.warnings) warn(w);
    if (flags.json) printJson(report);
    else if (!flags.quiet) out(formatReport(report));
  });
  return cmd;
}
