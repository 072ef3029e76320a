// The only file that loads the compiled addon. Everything else imports the
// typed binding from here (loading one .node from two paths crashes workers).
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type NativeProgress = (done: number, total: number) => void;

export interface NativeJob<T> {
  promise: Promise<T>;
  cancel(): void;
}

export interface NativeCpuFeatures {
  zeroKernel: string;
  availableZeroKernels: string[];
  sse2: boolean;
  avx2: boolean;
  avx512f: boolean;
  avx512bw: boolean;
  arch: string;
}

export interface NativeScanResult {
  image: import('../api/image-format.js').ImageDescription;
  kind: 'file' | 'block-device';
  size: number;
  allocated: number;
  blockSize: number;
  logicalSectorSize?: number;
  physicalSectorSize?: number;
  holeBytes: number;
  zeroBytes: number;
  dataBytes: number;
  extentCount: number;
  /** Flat triples: offset, length, kind (0 hole, 1 zero, 2 data). */
  extents: Float64Array;
}

export interface NativeScanOptions {
  blockSize?: number;
  chunkSize?: number;
  seekHole?: boolean;
  extents?: boolean;
  format?: 'raw' | 'qcow2';
  allowBacking?: boolean | string[];
}

export interface NativeSparsifyOptions {
  blockSize?: number;
  seekHole?: boolean;
  dryRun?: boolean;
  force?: boolean;
  overwrite?: boolean;
  format?: 'raw' | 'qcow2';
  fs?: boolean;
  allowBacking?: boolean | string[];
}

/** sparsify --fs: one partition (or the whole image) and what was done there. */
export interface NativeVolumeReport {
  number: number;
  type: string;
  name: string;
  offset: number;
  length: number;
  filesystem: string;
  label: string;
  /** 'refused': an ext filesystem sparsify --fs would not touch; `error` says why. */
  action: 'free-blocks' | 'zero-detection' | 'refused';
  blockSize: number;
  clusterSize: number;
  blocksCount: number;
  freeBlocks: number;
  freeBytes: number;
  usedBytes: number;
  groups: number;
  uninitGroups: number;
  features: string[];
  /** action 'refused': the error sparsify --fs would throw for this filesystem (message without the path). */
  error?: { code: string; message: string };
  /**
   * action 'free-blocks': the cross-check of the block bitmaps against the inodes (every block an inode or the
   * filesystem's own metadata uses is allocated in the bitmaps): inodes walked, blocks referenced, extent-tree and
   * indirect blocks read, and the seconds it took.
   */
  verified?: { inodes: number; blocks: number; treeBlocks: number; seconds: number };
}

export interface NativeFsInspection {
  path: string;
  size: number;
  partitionScheme: 'none' | 'mbr' | 'gpt';
  gptBackupUsed: boolean;
  freeBytes: number;
  volumes: NativeVolumeReport[];
  /** The partition table could not be trusted (then `volumes` is empty). */
  error?: { code: string; message: string };
}

export interface NativeSparsifyReport {
  source: string;
  target?: string;
  kind: 'file' | 'block-device';
  size: number;
  allocatedBefore: number;
  allocatedAfter: number;
  holeBytes: number;
  zeroBytes: number;
  dataBytes: number;
  punchCalls: number;
  punchedBytes: number;
  /** In place: allocated bytes the punches covered (dry run: would cover). */
  reclaimableBytes?: number;
  seconds: number;
  dryRun: boolean;
  /** Copies: the source's format. */
  format?: 'raw' | 'qcow2';
  /** Copies: the source's backing files, nearest first. */
  backingChain?: import('../api/image-format.js').BackingLink[];
  freeBytes?: number;
  partitionScheme?: 'none' | 'mbr' | 'gpt';
  gptBackupUsed?: boolean;
  volumes?: NativeVolumeReport[];
  warnings: string[];
}

export interface NativeRbdTarget {
  pool: string;
  namespace?: string;
  image: string;
  user?: string;
  conf?: string;
  keyring?: string;
  timeout?: number;
}

export interface NativeRbdImportOptions {
  blockSize?: number;
  seekHole?: boolean;
  parallel?: number;
  objectSize?: number;
  writeSize?: number;
  features?: number;
  dataPool?: string;
  overwrite?: boolean;
  keepPartial?: boolean;
  verify?: boolean;
  force?: boolean;
  format?: 'raw' | 'qcow2';
  allowBacking?: boolean | string[];
}

export interface NativeRbdImportReport {
  source: string;
  /** The source's format. */
  format: 'raw' | 'qcow2';
  /** The source's backing files, nearest first. */
  backingChain: import('../api/image-format.js').BackingLink[];
  image: string;
  size: number;
  dataBytes: number;
  zeroBytes: number;
  holeBytes: number;
  writes: number;
  objectSize: number;
  verified: boolean;
  seconds: number;
  verifySeconds: number;
  monHost: string;
  user: string;
  /** What force overrode (the source was in use). */
  warnings: string[];
}

export interface NativeRbdExportReport {
  image: string;
  target: string;
  size: number;
  allocatedInImage: number;
  dataBytes: number;
  zeroBytes: number;
  holeBytes: number;
  allocatedAfter: number;
  seconds: number;
}

export interface NativeRbdInfo {
  image: string;
  size: number;
  used: number;
  objectSize: number;
}

export interface NativeCarveReport {
  source: string;
  size: number;
  start: number;
  end: number;
  /** Where `resume` continues; equals `end` when the run finished. */
  nextOffset: number;
  bytesScanned: number;
  candidates: number;
  complete: number;
  /** Files recovered from two or more fragments (status 'reassembled'). */
  reassembled: number;
  partial: number;
  rejected: number;
  filtered: number;
  duplicates: number;
  thumbnails: number;
  bytesWritten: number;
  unreadable: { offset: number; length: number }[];
  seconds: number;
  cancelled: boolean;
  /** What a resumed run continues from besides nextOffset (filled when cancelled and in checkpoints): candidates before it held for the fragment search, and the files recovered before it. */
  held: number[];
  recovered: { offset: number; length: number }[];
}

export interface NativeBinding {
  isZero(bytes: ArrayBufferView | ArrayBuffer, kernel?: string): boolean;
  classifyBlocks(bytes: ArrayBufferView | ArrayBuffer, blockSize: number): Uint8Array;
  cpuFeatures(): NativeCpuFeatures;
  scanExtents(path: string, options: NativeScanOptions, onProgress?: NativeProgress): NativeJob<NativeScanResult>;
  sparsify(path: string, options: NativeSparsifyOptions, onProgress?: NativeProgress): NativeJob<NativeSparsifyReport>;
  inspectFilesystems(path: string, onProgress?: NativeProgress): NativeJob<NativeFsInspection>;
  sparseCopy(
    source: string,
    target: string,
    options: NativeSparsifyOptions,
    onProgress?: NativeProgress,
  ): NativeJob<NativeSparsifyReport>;
  rbdImport(
    source: string,
    target: NativeRbdTarget,
    options: NativeRbdImportOptions,
    onProgress?: NativeProgress,
  ): NativeJob<NativeRbdImportReport>;
  rbdExport(
    source: NativeRbdTarget,
    target: string,
    options: { blockSize?: number; overwrite?: boolean },
    onProgress?: NativeProgress,
  ): NativeJob<NativeRbdExportReport>;
  rbdInfo(target: NativeRbdTarget, onProgress?: NativeProgress): NativeJob<NativeRbdInfo>;
  carve(
    source: string,
    options: Record<string, unknown>,
    onProgress: NativeProgress | undefined,
    /** (file) for each file written; (null, checkpoint) about once a second, after every file the checkpoint covers. */
    onEvent: (file: import('../api/carved-file.js').CarvedFile | null, checkpoint?: NativeCarveReport) => void,
  ): NativeJob<NativeCarveReport>;
  /** Why writing under outDir could overwrite the source's sectors (native/core/host/same_storage.h), or null. */
  sameStorage(source: string, outDir: string): string | null;
  /** A block device's size in bytes from sysfs; undefined for anything else or when sysfs does not say. */
  blockDeviceSize(path: string): number | undefined;
  /** The mount point of the filesystem holding path (native/core/host/mountinfo.h), or undefined. */
  mountPointOf(path: string): string | undefined;
}

function packageRoot(): string {
  // dist/seam/native.js -> package root; also works from src/ under vitest.
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('blocksmith: cannot find the package root');
    dir = parent;
  }
  return dir;
}

// node-gyp-build picks the addon: build/Release (a source build: a clone, or an
// install where no prebuild matched), then build/Debug, then the prebuilt
// prebuilds/linux-x64/blocksmith.glibc.node shipped in the npm package.
interface NodeGypBuild {
  resolve(dir: string): string;
}

function load(): NativeBinding {
  const root = packageRoot();
  const require = createRequire(import.meta.url);
  const nodeGypBuild = require('node-gyp-build') as NodeGypBuild;
  // npm rebuild runs the install script (node-gyp-build), which compiles when no
  // prebuild loads, even where npm skipped it at install time.
  const fromSource = "build it from source with 'npm rebuild blocksmith' (in a clone: 'npm install'), which needs python3, make and g++";
  let file: string;
  try {
    file = nodeGypBuild.resolve(root);
  } catch {
    throw new Error(
      `blocksmith: the native addon is not built (no build/Release/blocksmith.node and no prebuild for ${process.platform}-${process.arch} in ${root}); ${fromSource}`,
    );
  }
  try {
    return require(file) as NativeBinding;
  } catch (err) {
    // A prebuild for this platform that the machine cannot load (a glibc older
    // than 2.34): say which file and how to get one that fits.
    throw new Error(
      `blocksmith: cannot load the native addon ${file}: ${(err as Error).message}; ${fromSource}`,
    );
  }
}

export const native: NativeBinding = load();
