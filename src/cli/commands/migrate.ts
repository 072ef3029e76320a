// `blocksmith migrate DOMAIN --to rbd:POOL`: a libvirt domain's file and block
// disks onto Ceph RBD (offline, live on this host, or live to another node),
// and `--rollback` to its saved XML.
import { Command } from '../commander.js';
import type { MigrateProgress, MigrateReport } from '../../api/migrate.js';
import { formatBytes, parseCount } from '../../api/units.js';
import { out, printJson, runOperation, usageError, warn, type CommonFlags } from '../harness.js';
import { addBackingOptions, allowBackingFrom, type BackingFlags } from './backing-options.js';

interface MigrateFlags extends CommonFlags, BackingFlags {
  to?: string;
  live?: boolean;
  destUri?: string;
  migrateUri?: string;
  listenAddress?: string;
  dryRun?: boolean;
  name?: string[];
  createSecret?: boolean;
  secretUuid?: string;
  cephConfig?: string;
  xml?: string;
  connect?: string;
  saveDir?: string;
  verify?: boolean;
  parallel?: string;
  rollback?: string | boolean;
}

/** --name DEV=IMAGE (repeatable); a bare IMAGE names the one disk that moves (checked once the plan is known). */
function namesFrom(values: string[] | undefined): { byDev: Record<string, string>; bare?: string } {
  const byDev: Record<string, string> = {};
  let bare: string | undefined;
  for (const v of values ?? []) {
    const eq = v.indexOf('=');
    if (eq < 0) {
      if (bare !== undefined) usageError('--name IMAGE without DEV= names the only disk that moves; give DEV=IMAGE for several');
      bare = v;
    } else byDev[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return { byDev, bare };
}

const STEP_WORDS: Record<MigrateProgress['step'], string> = { import: 'importing', copy: 'copying (virsh blockcopy)', migrate: 'migrating (virsh migrate)', reclaim: 'reclaiming zeros' };

export function formatMigrateReport(r: MigrateReport): string {
  const lines: string[] = [];
  const how = { offline: 'offline', live: 'live (virsh blockcopy)', 'live-to-node': `live to ${r.destUri} (virsh migrate)` }[r.mode];
  lines.push(`${r.dryRun ? 'would move' : 'moved'} domain ${r.domain} to RBD pool ${r.pool}${r.namespace ? `/${r.namespace}` : ''}, ${how}`);
  for (const d of r.disks) {
    lines.push(`  ${d.target}: ${d.source} (${d.format}, ${formatBytes(d.size)}) -> ${d.image}`);
    const facts: string[] = [];
    if (d.dataBytes !== undefined) facts.push(`${r.dryRun ? 'data' : 'data written'}: ${formatBytes(d.dataBytes)}`);
    if (d.usedBytes !== undefined) facts.push(`RBD used: ${formatBytes(d.usedBytes)}`);
    if (d.verified !== undefined) facts.push(d.verified ? 'verified identical' : 'not verified');
    if (d.reclaim) facts.push(`zeros reclaimed by ${d.reclaim.method}: used ${formatBytes(d.reclaim.usedBefore)} -> ${formatBytes(d.reclaim.usedAfter)}`);
    if (d.seconds !== undefined) facts.push(`${d.seconds.toFixed(2)} s`);
    if (facts.length) lines.push(`      ${facts.join('; ')}`);
  }
  for (const l of r.leftAlone) lines.push(`  ${l.target || '-'}: left alone: ${l.reason}${l.source ? ` (${l.source})` : ''}`);
  const hosts = r.configFile ? `<config file='${r.configFile}'/>` : r.monitors.map((m) => `${m.name}:${m.port}`).join(', ');
  lines.push(`  client.${r.user}, libvirt secret ${r.secret.uuid} (${r.secret.usage}${r.secret.created ? `, ${r.dryRun ? 'would be created' : 'created'}` : ''}); monitors: ${hosts}`);
  if (r.savedXml) lines.push(`  the old XML: ${r.savedXml} (the old disk files are untouched; --rollback defines it again)`);
  if (r.dryRun) lines.push('  nothing was changed (dry run); the domain XML would change so:', '', r.xmlDiff.trimEnd());
  lines.push(`  time: ${r.seconds.toFixed(2)} s`);
  return lines.join('\n') + '\n';
}

export function migrateCommand(): Command {
  const cmd = new Command('migrate')
    .description('move a libvirt domain\'s file and block disks onto Ceph RBD images and redefine it (offline, or live with --live)')
    .argument('<domain>', 'libvirt domain name')
    .option('--to <pool>', 'rbd:POOL[/NAMESPACE][:id=USER][:conf=PATH][:keyring=PATH]')
    .option('--live', 'move a running domain without stopping it (virsh blockcopy; with --dest-uri, virsh migrate)')
    .option('--dest-uri <uri>', 'with --live: migrate to this libvirt node (e.g. qemu+ssh://host2/system)')
    .option('--migrate-uri <uri>', 'with --dest-uri: virsh migrate --migrateuri')
    .option('--listen-address <addr>', 'with --dest-uri: virsh migrate --listen-address')
    .option('--dry-run', 'print the plan (disks, sizes, data, image names, the XML diff); change nothing')
    .option('--name <DEV=IMAGE>', 'image name for a disk (default DOMAIN-DEV); repeatable', (v: string, prev: string[] | undefined) => [...(prev ?? []), v])
    .option('--create-secret', 'create the libvirt ceph secret from the client\'s keyring when none exists')
    .option('--secret-uuid <uuid>', 'use this libvirt secret (usage type ceph)')
    .option('--ceph-config <file>', 'write <config file=FILE/> into the disks instead of one <host> per monitor')
    .option('--xml <file>', 'read the domain XML from FILE instead of libvirt')
    .option('-c, --connect <uri>', 'libvirt URI (default: virsh\'s, $LIBVIRT_DEFAULT_URI)')
    .option('--save-dir <dir>', 'where the old XML is saved (default: the working directory)')
    .option('--no-verify', 'offline: do not read the images back and compare')
    .option('--parallel <n>', 'offline: RBD writes in flight per disk')
    .option('--rollback [saved-xml]', 'define the domain again from its saved XML (default: the newest DOMAIN.before-rbd.*.xml in --save-dir)')
    .option('--json', 'print the report as JSON')
    .option('-q, --quiet', 'no progress, no report')
    .option('--debug', 'print stack traces on errors');
  addBackingOptions(cmd);
  cmd.addHelpText(
    'after',
    `
Examples:
  $ blocksmith migrate vm1 --to rbd:rbd --dry-run
  $ blocksmith migrate vm1 --to rbd:rbd:id=libvirt --create-secret
  $ blocksmith migrate vm1 --to rbd:vms --live
  $ blocksmith migrate vm1 --to rbd:vms --live --dest-uri qemu+ssh://node2/system
  $ blocksmith migrate vm1 --rollback`,
  );
  cmd.action(async (domain: string, flags: MigrateFlags) => {
    // Loaded here, not with the command: the libvirt modules and xmldom are
    // most of what `blocksmith --help` would otherwise load (bench/startup.bench.js).
    const { migrate, rollbackMigration } = await import('../../api/migrate.js');
    if (flags.rollback !== undefined) {
      if (flags.to || flags.live || flags.dryRun) usageError('--rollback takes no --to, --live or --dry-run');
      const r = await runOperation('rolling back', flags, () =>
        rollbackMigration(domain, { savedXml: typeof flags.rollback === 'string' ? flags.rollback : undefined, saveDir: flags.saveDir, uri: flags.connect }),
      );
      if (flags.json) printJson(r);
      else if (!flags.quiet) out(`defined ${domain} again from ${r.savedXml}\n  ${r.note}\n`);
      return;
    }
    if (!flags.to) usageError('migrate needs --to rbd:POOL[/NAMESPACE]');
    const { byDev, bare } = namesFrom(flags.name);
    const parallel = flags.parallel === undefined ? undefined : parseCount(flags.parallel, '--parallel', 1, 1024);
    let shown = '';
    const report = await runOperation('migrating', flags, (op) =>
      migrate(domain, {
        to: flags.to!,
        uri: flags.connect,
        xmlFile: flags.xml,
        live: !!flags.live,
        destUri: flags.destUri,
        migrateUri: flags.migrateUri,
        listenAddress: flags.listenAddress,
        dryRun: !!flags.dryRun,
        names: byDev,
        bareName: bare,
        createSecret: !!flags.createSecret,
        secretUuid: flags.secretUuid,
        cephConfigFile: flags.cephConfig,
        saveDir: flags.saveDir,
        verify: flags.verify !== false,
        parallel,
        allowBacking: allowBackingFrom(flags),
        signal: op.signal,
        onProgress: (p) => {
          const now = `${p.disk === '*' ? 'all disks' : `${p.disk} (${p.diskNumber}/${p.diskCount})`}: ${STEP_WORDS[p.step]}`;
          // Step lines go with the progress bar: on a terminal only.
          if (now !== shown && process.stderr.isTTY && !flags.quiet && !flags.json) {
            op.clearProgress();
            process.stderr.write(`${now}\n`);
          }
          shown = now;
          op.onProgress(p);
        },
      }),
    );
    for (const w of report.warnings) warn(w);
    if (flags.json) printJson(report);
    else if (!flags.quiet) out(formatMigrateReport(report));
  });
  return cmd;
}
