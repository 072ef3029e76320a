// The flags info and map share (block size, holes, format, backing files,
// --json) and the scan options they make.
import { Command, Option } from '../commander.js';
import { type ScanOptions } from '../../api/extents.js';
import { formatSizeFlag, parseBlockSize } from '../../api/units.js';
import { defaults } from '../../api/defaults.js';
import { parseImageFormat } from '../../api/image-format.js';
import { type CommonFlags } from '../harness.js';
import { addBackingOptions, allowBackingFrom, type BackingFlags } from './backing-options.js';

export interface ScanFlags extends CommonFlags, BackingFlags {
  blockSize?: string;
  seekHole?: boolean;
  verbose?: boolean;
  svg?: string;
  overwrite?: boolean;
  format?: string;
  fs?: boolean;
}

export function scanOptions(cmd: Command): Option[] {
  addBackingOptions(cmd);
  return [
    new Option('-b, --block-size <size>', 'zero-detection block size, a power of two from 512 to 1M').default(formatSizeFlag(defaults.scan.blockSize)),
    new Option('--no-seek-hole', 'read every byte instead of skipping holes with SEEK_DATA/SEEK_HOLE'),
    new Option('--format <format>', 'image format: raw or qcow2 (default: detected by magic)'),
    new Option('--json', 'machine-readable output (exact byte counts)'),
    new Option('-q, --quiet', 'no progress bar'),
    new Option('--debug', 'print stack traces on errors'),
  ].map((o) => (cmd.addOption(o), o));
}

/** The scan options from the flags (usage errors before any work). */
export function scanSettings(flags: ScanFlags): Pick<ScanOptions, 'blockSize' | 'seekHole' | 'format' | 'allowBacking'> {
  return { blockSize: parseBlockSize(flags.blockSize), seekHole: flags.seekHole !== false, format: parseImageFormat(flags.format), allowBacking: allowBackingFrom(flags) };
}

