// `blocksmith map`: the hole / zero / data extents of an image or device, as
// text, JSON or an SVG picture.
import { Command } from '../commander.js';
import { mapExtents, type ExtentMap } from '../../api/extents.js';
import { formatBytes } from '../../api/units.js';
import { checkNewFile, writeNewFile } from '../../output/output-file.js';
import { out, runOperation, usageError } from '../harness.js';
import { backingLines } from './backing-options.js';
import { scanOptions, scanSettings, type ScanFlags } from './scan-flags.js';

function* mapTextLines(m: ExtentMap): Generator<string> {
  const w = String(m.virtualSize).length;
  yield `${'offset'.padStart(w)}  ${'length'.padStart(w)}  kind`;
  for (const e of m.extents) yield `${String(e.offset).padStart(w)}  ${String(e.length).padStart(w)}  ${e.kind}`;
  yield `# ${m.extents.length} extents: data ${formatBytes(m.dataBytes)}, zero ${formatBytes(m.zeroBytes)}, holes ${formatBytes(m.holeBytes)}`;
  yield* backingLines(m.image.backingChain, '# ');
}

// One extent per line inside a JSON array, like `qemu-img map --output=json`.
function* mapJsonLines(m: ExtentMap): Generator<string> {
  const last = m.extents.length - 1;
  if (last < 0) yield '[]';
  for (let i = 0; i <= last; i++) yield (i === 0 ? '[' : '') + JSON.stringify(m.extents[i]) + (i === last ? ']' : ',');
}

// Written in batches of lines, not as one string: the extents may be
// millions, and the whole text plus the array of lines it was joined from
// were two more copies of the map (peak RSS grew by ~550 B per extent,
// bench/results/memory.json).
function writeLines(lines: Iterable<string>): void {
  let batch: string[] = [];
  for (const line of lines) {
    batch.push(line);
    if (batch.length === 4096) {
      out(batch.join('\n') + '\n');
      batch = [];
    }
  }
  if (batch.length > 0) out(batch.join('\n') + '\n');
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
      const svg = (await import('../../render/svg.js')).renderExtentSvg(r);
      // The backing files of a qcow2 are sources too.
      await writeNewFile(flags.svg, svg, { ...svgRule, protect: [path, ...(r.image.backingChain ?? []).map((b) => ({ path: b.path, role: `a backing file of '${path}', opened as` }))] });
    }
    writeLines(flags.json ? mapJsonLines(r) : mapTextLines(r));
  });
  return cmd;
}
