// `blocksmith rbd import|export|info`, and the RBD paths of `sparsify`
// (sparsify SRC rbd:pool/image, sparsify rbd:pool/image DST).
import { Command, Option } from '../commander.js';
import { copyFromRbd, copyToRbd, formatRbdSpec, parseRbdSpec, rbdInfo, sparsifyRbd, type RbdSparsifyReport, type RbdTarget } from '../../api/rbd.js';
import { formatBytes, formatSizeFlag, parseCount } from '../../api/units.js';
import { defaults } from '../../api/defaults.js';
import { parseImageFormat } from '../../api/image-format.js';
import { out, printJson, runOperation, warn, type CommonFlags } from '../harness.js';
import { addBackingOptions, allowBackingFrom, backingLines, type BackingFlags } from './backing-options.js';

export interface RbdFlags extends CommonFlags, BackingFlags {
  blockSize?: string;
  seekHole?: boolean;
  parallel?: string;
  objectSize?: string;
  writeSize?: string;
  features?: string;
  dataPool?: string;
  overwrite?: boolean;
  keepPartial?: boolean;
  verify?: boolean;
  libvirtXml?: boolean;
  force?: boolean;
  secretUuid?: string;
  timeout?: string;
  id?: string;
  format?: string;
  conf?: string;
  keyring?: string;
}

/** Adds the options of an RBD import to a command. */
export function addImportOptions(cmd: Command): Command {
  return addBackingOptions(cmd)
    .option('--format <format>', 'source format: raw or qcow2 (default: detected by magic)')
    .option('--parallel <n>', 'RBD writes in flight', String(defaults.rbdImport.parallel))
    .option('--object-size <size>', 'RBD object size (power of two, e.g. 4M); default librbd\'s')
    .option('--write-size <size>', 'largest write (power of two, at most the object size)', formatSizeFlag(defaults.rbdImport.writeSize))
    .option('--features <bits>', 'RBD feature bits (number); default librbd\'s')
    .option('--data-pool <pool>', 'store data objects in this pool (erasure-coded pools)')
    .option('--keep-partial', 'keep a half-written image after a failure or Ctrl-C')
    .option('--verify', 'read source and image back and compare every object')
    .option('--libvirt-xml', 'print the libvirt <disk> element for the new image')
    .option('--secret-uuid <uuid>', 'libvirt secret UUID for --libvirt-xml')
    .option('--timeout <seconds>', 'fail when the cluster does not answer within this time', String(defaults.rbdTarget.timeout));
}

function withConnection(t: RbdTarget, flags: RbdFlags): RbdTarget {
  const conn = { ...t };
  if (flags.id) conn.user = flags.id;
  if (flags.conf) conn.conf = flags.conf;
  if (flags.keyring) conn.keyring = flags.keyring;
  if (flags.timeout !== undefined) conn.timeout = parseCount(flags.timeout, '--timeout');
  return conn;
}

export async function runRbdImport(source: string, spec: string, flags: RbdFlags): Promise<void> {
  const target = withConnection(parseRbdSpec(spec), flags);
  const options = {
    blockSize: flags.blockSize,
    seekHole: flags.seekHole !== false,
    parallel: flags.parallel === undefined ? undefined : parseCount(flags.parallel, '--parallel', 1, 1024),
    objectSize: flags.objectSize,
    writeSize: flags.writeSize,
    features: flags.features === undefined ? undefined : parseCount(flags.features, '--features'),
    dataPool: flags.dataPool,
    overwrite: !!flags.overwrite,
    keepPartial: !!flags.keepPartial,
    verify: !!flags.verify,
    force: !!flags.force,
    format: parseImageFormat(flags.format),
    allowBacking: allowBackingFrom(flags),
  };
  const r = await runOperation('importing', flags, (op) => copyToRbd(source, target, { ...options, ...op }));
  for (const w of r.warnings) warn(w);
  // The XML library loads only when asked for (start-up of every other import).
  const xml = flags.libvirtXml
    ? (await import('../../libvirt/domain-xml.js')).libvirtDiskXml(target, r.monHost, { user: r.user, secretUuid: flags.secretUuid })
    : undefined;
  if (flags.json) {
    printJson(xml ? { ...r, libvirtXml: xml } : r);
    return;
  }
  if (!flags.quiet) {
    out(
      [
        `copied ${r.source}${r.format === 'qcow2' ? ' (qcow2)' : ''} -> ${r.image} (${formatBytes(r.size)}, ${r.size} bytes)`,
        ...backingLines(r.backingChain, '  '),
        `  data written: ${formatBytes(r.dataBytes)} in ${r.writes} writes; skipped: ${formatBytes(r.zeroBytes)} zero blocks + ${formatBytes(r.holeBytes)} holes`,
        `  time: ${r.seconds.toFixed(2)} s (${formatBytes(r.bytesPerSecond)}/s)`,
        ...(flags.verify ? [`  verified: ${r.verified ? 'identical' : 'NOT verified'} (${r.verifySeconds.toFixed(2)} s)`] : []),
      ].join('\n') + '\n',
    );
  }
  if (xml) out(xml);
}

export async function runRbdExport(spec: string, target: string, flags: RbdFlags): Promise<void> {
  const source = withConnection(parseRbdSpec(spec), flags);
  const r = await runOperation('exporting', flags, (op) => copyFromRbd(source, target, { blockSize: flags.blockSize, overwrite: !!flags.overwrite, ...op }));
  if (flags.json) printJson(r);
  else if (!flags.quiet) {
    out(
      `exported ${r.image} -> ${r.target} (${formatBytes(r.size)})\n  data written: ${formatBytes(r.dataBytes)}; disk size of the copy: ${formatBytes(r.allocatedAfter)}\n  time: ${r.seconds.toFixed(2)} s\n`,
    );
  }
}

export function formatRbdSparsifyReport(r: RbdSparsifyReport): string {
  const reclaimed = r.usedBefore - r.usedAfter;
  const lines = [
    `${r.dryRun ? 'dry run: ' : ''}${r.image} (${formatBytes(r.size)}, objects of ${formatBytes(r.objectSize)})`,
    r.dryRun
      ? `  used: ${formatBytes(r.usedBefore)} -> about ${formatBytes(r.usedAfter)} (would reclaim about ${formatBytes(reclaimed)})`
      : `  used: ${formatBytes(r.usedBefore)} -> ${formatBytes(r.usedAfter)} (reclaimed ${formatBytes(reclaimed)})`,
    r.method === 'discard'
      ? `  method: discard (read here, zero runs discarded${r.dryRun ? '' : ' under the exclusive lock'}): ${r.discards} ${r.discards === 1 ? 'discard' : 'discards'}${r.dryRun ? ' to make' : ''} over ${formatBytes(r.discardedBytes)}`
      : `  method: ceph-sparsify (Ceph's own, per object on the OSDs; open by ${r.watchers.join(', ')})`,
  ];
  if (r.method === 'discard' || r.dryRun) lines.push(`  data: ${formatBytes(r.dataBytes)}; zero blocks: ${formatBytes(r.zeroBytes)}; already holes: ${formatBytes(r.holeBytes)}`);
  lines.push(`  time: ${r.seconds.toFixed(2)} s`);
  return lines.join('\n') + '\n';
}

/** `sparsify rbd:POOL/IMG` (no target): frees the image's zero objects in place. */
export async function runRbdSparsify(spec: string, flags: RbdFlags & { dryRun?: boolean }): Promise<void> {
  const t = withConnection(parseRbdSpec(spec), flags);
  if (flags.force) warn(`--force: ${formatRbdSpec(t)} is sparsified even if other clients have it open (then by Ceph's own sparsify, atomic per object)`);
  const r = await runOperation(flags.dryRun ? 'reading' : 'sparsifying', flags, (op) =>
    sparsifyRbd(t, {
      blockSize: flags.blockSize,
      dryRun: !!flags.dryRun,
      allowWatchers: flags.force ? Infinity : 0,
      parallel: flags.parallel === undefined ? undefined : parseCount(flags.parallel, '--parallel', 1, 1024),
      ...op,
    }),
  );
  for (const w of r.warnings) warn(w);
  if (flags.json) printJson(r);
  else if (!flags.quiet) out(formatRbdSparsifyReport(r));
}

export async function runRbdInfo(spec: string, flags: RbdFlags): Promise<void> {
  const t = withConnection(parseRbdSpec(spec), flags);
  const r = await runOperation('reading', flags, (op) => rbdInfo(t, op));
  if (flags.json) printJson(r);
  else {
    out(
      `image: ${formatRbdSpec(t)}\nprovisioned size: ${formatBytes(r.size)} (${r.size} bytes)\nused: ${formatBytes(r.used)} (${r.used} bytes in existing objects)\nobject size: ${formatBytes(r.objectSize)}\n`,
    );
  }
}

function connectionOptions(cmd: Command): Command {
  return cmd
    .option('--id <user>', 'Ceph client id (without "client.")')
    .option('--conf <path>', 'ceph.conf (default $CEPH_CONF or /etc/ceph/ceph.conf)')
    .option('--keyring <path>', 'keyring file')
    .option('--json', 'print the report as JSON')
    .option('-q, --quiet', 'no progress bar, no report')
    .option('--debug', 'print stack traces on errors');
}

export function rbdCommand(): Command {
  const rbd = new Command('rbd').description('copy raw images and block devices to and from Ceph RBD (librbd, loaded at run time)');

  const imp = new Command('import')
    .description('copy a raw image or block device into a new RBD image: sparse, parallel, optionally verified')
    .argument('<source>', 'raw or qcow2 image file, or block device')
    .argument('<image>', 'POOL[/NAMESPACE]/IMAGE or rbd:POOL/IMAGE[:id=..][:conf=..][:keyring=..]')
    .addOption(new Option('-b, --block-size <size>', 'zero-detection block size').default(formatSizeFlag(defaults.rbdImport.blockSize)))
    .option('--no-seek-hole', 'read every byte of the source')
    .option('--overwrite', 'replace an existing image')
    .option('-f, --force', 'copy a source that is in use (a VM or another process writing it); says what it overrode');
  addImportOptions(imp);
  connectionOptions(imp);
  imp.addHelpText(
    'after',
    `
Examples:
  $ blocksmith rbd import vm.raw rbd/vm1
  $ blocksmith rbd import --verify --libvirt-xml /dev/vg0/vm1 rbd/vm1
  $ blocksmith rbd import --id libvirt --conf /etc/ceph/ceph.conf vm.raw rbd/ns1/vm1`,
  );
  imp.action((source: string, image: string, flags: RbdFlags) => runRbdImport(source, image, flags));

  const exp = new Command('export')
    .description('copy an RBD image to a sparse raw file (only existing objects are read)')
    .argument('<image>', 'POOL[/NAMESPACE]/IMAGE or rbd:...')
    .argument('<target>', 'raw file to write')
    .addOption(new Option('-b, --block-size <size>', 'zero-detection block size').default(formatSizeFlag(defaults.rbdExport.blockSize)))
    .option('--overwrite', 'replace an existing file');
  connectionOptions(exp);
  exp.addHelpText('after', `\nExamples:\n  $ blocksmith rbd export rbd/vm1 vm1.raw\n  $ blocksmith rbd export --json rbd:rbd/vm1:conf=/etc/ceph/ceph.conf vm1.raw`);
  exp.action((image: string, target: string, flags: RbdFlags) => runRbdExport(image, target, flags));

  const info = new Command('info').description('provisioned and used bytes of an RBD image').argument('<image>', 'POOL/IMAGE or rbd:...');
  connectionOptions(info);
  info.addHelpText('after', `\nExamples:\n  $ blocksmith rbd info rbd/vm1\n  $ blocksmith rbd info --json rbd:rbd/vm1`);
  info.action((image: string, flags: RbdFlags) => runRbdInfo(image, flags));

  return rbd.addCommand(imp).addCommand(exp).addCommand(info);
}
