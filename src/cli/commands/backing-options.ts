// The qcow2 backing-file options every command that reads an image takes
// (info, map, sparse copies, RBD import), and how a report names the chain.
import type { Command } from '../commander.js';
import type { AllowBacking, BackingLink } from '../../api/image-format.js';

export interface BackingFlags {
  allowBacking?: boolean;
  allowBackingDir?: string[];
}

export function addBackingOptions(cmd: Command): Command {
  return cmd
    .option('--allow-backing', 'qcow2: follow every backing file, wherever it is (devices too); only for images you trust')
    .option(
      '--allow-backing-dir <dir>',
      'qcow2: also follow backing files (regular files) under DIR; repeatable (default: only inside the image\'s directory)',
      (dir: string, prev: string[] | undefined) => [...(prev ?? []), dir],
    );
}

export function allowBackingFrom(flags: BackingFlags): AllowBacking {
  if (flags.allowBacking) return true;
  return flags.allowBackingDir?.length ? flags.allowBackingDir : false;
}

/** One line per backing file, nearest first: the name as written, then the file opened and its format. */
export function backingLines(chain: BackingLink[] | undefined, prefix: string): string[] {
  return (chain ?? []).map((b) => `${prefix}backing file: ${b.name} (${b.path}, ${b.format})`);
}
