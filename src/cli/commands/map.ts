// `blocksmith map`: the hole / zero / data extents of an image or device, as
// text, JSON or an SVG picture.
import { Command } from '../commander.js';
import { forEachExtent, type Extent, type ImageInfo } from '../../api/extents.js';
import { formatBytes } from '../../api/units.js';
import { checkNewFile, writeNewFile } from '../../output/output-file.js';
import { out, runOperation, stdoutBackpressure, usageError } from '../harness.js';
import { backingLines } from './backing-options.js';
import { scanOptions, scanSettings, type ScanFlags } from './scan-flags.js';

// The extents are printed as the scan finds them, in batches (the list is
// not kept: memory stays flat however many there are; bench/results/memory.json).
// Text: a header sized to the image, a line per extent, then the totals.
// JSON: one extent per line inside an array, like `qemu-img map --output=json`;
// each line waits for the next extent to know whether it ends the array.
class MapPrinter {
  private width = 0;
  private pending: string | undefined;
  private count = 0;

  constructor(private readonly json: boolean) {}

  // A promise when stdout is full: the scan waits for it (a slow pipe).
  extents(batch: Extent[], virtualSize: number): Promise<void> | undefined {
    if (this.count === 0 && !this.json) this.header(virtualSize);
    let text = '';
    for (let i = 0; i < batch.length; i++) {
      const e = batch[i]!;
      if (this.json) {
        if (this.pending !== undefined) text += this.pending + ',\n';
        this.pending = (this.pending === undefined ? '[' : '') + JSON.stringify(e);
      } else {
        text += `${String(e.offset).padStart(this.width)}  ${String(e.length).padStart(this.width)}  ${e.kind}\n`;
      }
      // Written in pieces of ~40 KiB: V8 keeps strings that large in the
      // young generation, where they die young; bigger ones go to the
      // large-object space, freed only by a full collection (peak RSS grew
      // with the extents: 100 MiB at 1M extents with 4,096-line pieces).
      if ((i & 1023) === 1023) {
        out(text);
        text = '';
      }
    }
    this.count += batch.length;
    if (text) out(text);
    return stdoutBackpressure();
  }

  end(m: ImageInfo): void {
    if (this.json) {
      out(this.pending === undefined ? '[]\n' : this.pending + ']\n');
      return;
    }
    if (this.count === 0) this.header(m.virtualSize);
    const totals = `# ${m.extentCount} extents: data ${formatBytes(m.dataBytes)}, zero ${formatBytes(m.zeroBytes)}, holes ${formatBytes(m.holeBytes)}`;
    out([totals, ...backingLines(m.image.backingChain, '# ')].join('\n') + '\n');
  }

  private header(virtualSize: number): void {
    this.width = String(virtualSize).length;
    out(`${'offset'.padStart(this.width)}  ${'length'.padStart(this.width)}  kind\n`);
  }
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
    const printer = new MapPrinter(!!flags.json);
    // The picture needs the whole list: with --svg it is kept, and printed
    // only once the picture is written (a refused picture prints nothing).
    const kept: Extent[] | undefined = flags.svg !== undefined ? [] : undefined;
    const onExtents = (batch: Extent[], virtualSize: number) => {
      if (!kept) return printer.extents(batch, virtualSize);
      for (const e of batch) kept.push(e);
    };
    const r = await runOperation('mapping', flags, (op) => forEachExtent(path, onExtents, { ...settings, ...op }));
    if (kept) {
      const svg = (await import('../../render/svg.js')).renderExtentSvg({ ...r, extents: kept });
      // The backing files of a qcow2 are sources too.
      await writeNewFile(flags.svg!, svg, { ...svgRule, protect: [path, ...(r.image.backingChain ?? []).map((b) => ({ path: b.path, role: `a backing file of '${path}', opened as` }))] });
      for (let i = 0; i < kept.length; i += 4096) printer.extents(kept.slice(i, i + 4096), r.virtualSize);
    }
    printer.end(r);
  });
  return cmd;
}
