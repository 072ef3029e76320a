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

/**
 * Bytes of a scan by what they were, in every report that scans (info/map, sparsify, sparse copies, RBD
 * import/export): one type in the core (ExtentTotals), one conversion in the binding (report_fields.h).
 */
export interface ByteTotals {
  /** Skipped as holes (never read). */
  holeBytes: number;
  /** Read and found all zero (allocated: what sparsify reclaims; never written by copies). */
  zeroBytes: number;
  /** Data (written, for copies). */
  dataBytes: number;
}

/** The totals of a report, on their own (the one place a report's totals are copied into another object). */
export function byteTotals(r: ByteTotals): ByteTotals {
  return { holeBytes: r.holeBytes, zeroBytes: r.zeroBytes, dataBytes: r.dataBytes };
}

export interface NativeScanResult extends ByteTotals {
  image: import('../api/image-format.js').ImageDescription;
  kind: 'file' | 'block-device';
  size: number;
  allocated: number;
  blockSize: number;
  logicalSectorSize?: number;
  physicalSectorSize?: number;
  extentCount: number;
  /** Flat triples: offset, length, kind (0 hole, 1 zero, 2 data). */
  extents: Float64Array;
}

// Options objects, one interface per core option struct (native/binding/option_tables.h lists the same names).
// An option left undefined takes the core's default, which `defaults` shows; the public option types of
// src/api derive from these (sizes there may also be given as text: "4K").

export interface NativeScanOptions {
  /** Classification block size: a power of two from 512 B to 1 MiB. Default: `defaults.scan.blockSize`. */
  blockSize?: number;
  /** Bytes per read (rounded to the block size). */
  chunkSize?: number;
  /** Skip holes with SEEK_DATA/SEEK_HOLE (default true); false reads every byte. */
  seekHole?: boolean;
  /** Keep the extent list (false only counts). */
  extents?: boolean;
  /** Force the image format instead of detecting it by magic. */
  format?: 'raw' | 'qcow2';
  /** qcow2 backing files to follow beyond the default (regular files inside the image's directory tree). */
  allowBacking?: boolean | string[];
}

export interface NativeSparsifyOptions {
  /** Zero-detection block size: a power of two from 512 B to 1 MiB. Default: `defaults.sparsify.blockSize`. */
  blockSize?: number;
  /** Bytes per read (rounded to the block size). */
  chunkSize?: number;
  /** Skip holes with SEEK_DATA/SEEK_HOLE (default true); false reads every byte. */
  seekHole?: boolean;
  /** Report what would be reclaimed; change nothing. */
  dryRun?: boolean;
  /**
   * In place: proceed although the image is in use: QEMU image locks, another process with it open, a loop device,
   * a mount or holder of a device, or no lease possible (not the file's owner); never overrides another in-place run
   * on the same image. Copies: copy a source that is in use anyway (a VM holding QEMU's write lock, another process
   * writing it, a read-write loop device or mount), refused by default as the copy would be inconsistent. The
   * report's `warnings` say what was overridden.
   */
  force?: boolean;
  /** Copies: replace an existing target. */
  overwrite?: boolean;
  /**
   * Source format; detected by magic when absent. Copies read qcow2 images through their tables;
   * in place, a qcow2 image is refused (unless 'raw' is forced: then its file is treated as raw bytes).
   */
  format?: 'raw' | 'qcow2';
  /** Copies of qcow2 sources: backing files to follow beyond the default (regular files inside the image's directory tree). */
  allowBacking?: boolean | string[];
  /**
   * Also reclaim the free blocks of the ext2/3/4 filesystems inside the image (whole image or MBR/GPT
   * partitions), read from their allocation bitmaps: free blocks are not read and become holes (their
   * old content is dropped; files are unchanged). Refuses dirty, mounted or not understood filesystems, and
   * those whose bitmaps call free a block that an inode or the filesystem's metadata uses.
   */
  fs?: boolean;
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

export interface NativeSparsifyReport extends ByteTotals {
  source: string;
  target?: string;
  kind: 'file' | 'block-device';
  size: number;
  allocatedBefore: number;
  allocatedAfter: number;
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
  /** Client id without "client." (qemu's id=). Default: admin / $CEPH_ARGS. */
  user?: string;
  /** ceph.conf path. Default: $CEPH_CONF or /etc/ceph/ceph.conf. */
  conf?: string;
  keyring?: string;
  /** Seconds before an unreachable cluster is an error (mon/osd ops, mount). Default: `defaults.rbdTarget.timeout`. */
  timeout?: number;
}

export interface NativeRbdImportOptions {
  /** Zero-detection block size. Default: `defaults.rbdImport.blockSize`. */
  blockSize?: number;
  seekHole?: boolean;
  /** Writes in flight. Default: `defaults.rbdImport.parallel`. */
  parallel?: number;
  /** RBD object size, a power of two; 0 (the default): librbd's. */
  objectSize?: number;
  /** Largest write, a power of two from 4 KiB to 32 MiB; never more than the object size. Default: `defaults.rbdImport.writeSize`. */
  writeSize?: number;
  /** Feature bits; 0 (the default): librbd's. */
  features?: number;
  dataPool?: string;
  overwrite?: boolean;
  /** Keep a half-written image after a failure (default: remove it). */
  keepPartial?: boolean;
  /** Read both back and compare every object-sized chunk. */
  verify?: boolean;
  /**
   * Copy a source that is in use anyway: a VM holding QEMU's write lock on it, another process with it open for
   * writing, a read-write loop device or mount. Refused by default (the image would be inconsistent); the report's
   * `warnings` say what was overridden.
   */
  force?: boolean;
  /** Source format; detected by magic when absent. */
  format?: 'raw' | 'qcow2';
  /** qcow2 sources: backing files to follow beyond the default (regular files inside the image's directory tree). */
  allowBacking?: boolean | string[];
}

export interface NativeRbdExportOptions {
  /** Zero-detection block size. Default: `defaults.rbdExport.blockSize`. */
  blockSize?: number;
  /** Replace an existing file. */
  overwrite?: boolean;
}

export interface NativeRbdImportReport extends ByteTotals {
  source: string;
  /** The source's format. */
  format: 'raw' | 'qcow2';
  /** The source's backing files, nearest first. */
  backingChain: import('../api/image-format.js').BackingLink[];
  image: string;
  size: number;
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

export interface NativeRbdExportReport extends ByteTotals {
  image: string;
  target: string;
  size: number;
  allocatedInImage: number;
  allocatedAfter: number;
  seconds: number;
}

export interface NativeRbdSparsifyOptions {
  /** Zero-detection block size (and Ceph's sparse size, at least 4 KiB). Default: `defaults.rbdSparsify.blockSize`. */
  blockSize?: number;
  /** Read and count; change nothing. */
  dryRun?: boolean;
  /**
   * How many other clients may have the image open (a running VM: 1). With none, zero runs are discarded under the
   * image's exclusive lock; with some, Ceph's own sparsify runs (atomic per object). More: EBUSY. Default 0.
   */
  allowWatchers?: number;
  /** Discards in flight. Default: `defaults.rbdSparsify.parallel`. */
  parallel?: number;
}

export interface NativeRbdSparsifyReport extends ByteTotals {
  image: string;
  size: number;
  objectSize: number;
  /** Bytes of existing objects before, and after (dry run: the estimate). */
  usedBefore: number;
  usedAfter: number;
  discards: number;
  discardedBytes: number;
  /** 'discard': read here, zero runs discarded under the exclusive lock; 'ceph-sparsify': Ceph's sparsify (other clients had it open; the byte totals are then not counted, except in a dry run). */
  method: 'discard' | 'ceph-sparsify';
  /** The other clients that had the image open: "ADDR (client.ID)". */
  watchers: string[];
  warnings: string[];
  seconds: number;
  dryRun: boolean;
}

export interface NativeRbdInfo {
  image: string;
  size: number;
  used: number;
  objectSize: number;
}

/** What a client learns of a cluster on connecting (rbdCluster). */
export interface NativeRbdCluster {
  /** The config's mon_host, as written. */
  monHost: string;
  /** `mon dump` as JSON ('' when the cluster refused it). */
  monmapJson: string;
  /** The config's keyring search path, metavariables expanded. */
  keyring: string;
  /** The id connected as, without "client.". */
  user: string;
  /** Of the image names asked about, those that exist in the pool. */
  existing: string[];
}

export interface NativeCarveOptions {
  /** Must exist (the caller creates it). */
  outDir: string;
  /** First byte where candidates are looked for. */
  offset?: number;
  /** Bytes to scan from offset; absent: to the end. */
  length?: number;
  /** Candidates only at multiples of this (foremost -s 512 / -q). Default: `defaults.carve.sectorSize` (every byte). */
  sectorSize?: number;
  /** Smaller files are not written. */
  minSize?: number;
  minWidth?: number;
  minHeight?: number;
  /** Longest JPEG followed before it is cut. Default: `defaults.carve.maxSize`. */
  maxSize?: number;
  /** The pipeline's pieces (read ahead, searched where they lie). */
  chunkSize?: number;
  /** Write identical files once (by sha256). */
  dedupe?: boolean;
  /** Also write the embedded JPEGs of complete files. */
  thumbnails?: boolean;
  /** Write partial files to outDir/partial (default true). */
  partials?: boolean;
  seekHole?: boolean;
  /** false: report only (dry runs, benchmarks of the scan). */
  write?: boolean;
  /**
   * Search for the continuation of a JPEG whose data stops decoding (default true): the next fragment starts on a
   * block boundary after the break and decodes on from the decoder's state there, to EOI.
   */
  reassemble?: boolean;
  /** Filesystem block (cluster) size fragments are aligned to; 0 (the default): from a FAT/ext superblock, else from the files' offsets. */
  blockSize?: number;
  /** Farthest a continuation may start after a fragment's end. Default: `defaults.carve.maxGap`. */
  maxGap?: number;
  /** Decodes tried per broken file before it is left partial. Default: `defaults.carve.maxAttempts`. */
  maxAttempts?: number;
  /**
   * Which bytes are scanned: 'free' (what no live file or filesystem structure owns), 'allocated', 'all', or 'auto'
   * (the default, `defaults.carve.scope`): free when the ext2/3/4, FAT or exFAT filesystems in the range are
   * recognised and consistent, else all. Bytes outside every recognised filesystem are scanned in every scope.
   */
  scope?: CarveScopeName;
  /** Scope free: byte ranges not to scan either (what an undelete already recovered). */
  exclude?: { offset: number; length: number }[];
  /** A resumed run: where the whole carve started (the scope's byte counts cover it from there). */
  rangeStart?: number;
  /** A resumed run: a file already there with the same bytes counts as written. */
  keepIdentical?: boolean;
  /** A resumed run: candidates held for the fragment search before `offset`, checked again. */
  held?: number[];
  /** A resumed run: files recovered before `offset` (the search's claims). */
  recovered?: { offset: number; length: number }[];
  /** A resumed run with dedupe: files written before. */
  known?: { sha256: string; offset: number }[];
}

export interface NativeUndeleteOptions {
  /** Must exist (the caller creates it); recovered/ is made in it. Not used with `list`. */
  outDir?: string;
  /** Only list the deleted files: nothing is written, no content is read. */
  list?: boolean;
  /** JPEGs longer than this are written but not validated by decoding. */
  maxJpegCheck?: number;
}

/** How a deleted file's bytes were located (carved-file.ts). */
export type UndeleteRule = import('../api/carved-file.js').UndeleteRule;

/** One FAT/exFAT/ext2/3/4 volume of the source (the whole source, or a partition). */
export interface UndeleteVolume {
  /** 1-based partition number; 0 for the whole source. */
  partition: number;
  partitionType?: string;
  offset: number;
  length: number;
  /** Its reader could read it; else `problem` says why (not FAT/exFAT/ext, or the reader's refusal). */
  read: boolean;
  problem?: string;
  errorCode?: string;
  filesystem?: 'fat12' | 'fat16' | 'fat32' | 'exfat' | 'ext2' | 'ext3' | 'ext4';
  label?: string;
  clusterSize?: number;
  clusterCount?: number;
  dataOffset?: number;
  allocatedBytes?: number;
  freeBytes?: number;
  liveFiles?: number;
  liveDirectories?: number;
  /** Deleted entries found (files and directories). */
  deleted?: number;
  /** Consistency problems that did not stop the walk. */
  problems?: string[];
}

/** A deleted file (or directory) and what became of it. */
export interface UndeletedFile {
  /** Index into the report's volumes. */
  volume: number;
  /** Its path in the volume, as stored ('/'-separated; long names where they survive). */
  path: string;
  /** Where it was written, relative to outDir ("recovered/DCIM/IMG_0001.JPG"); absent when not written. */
  writtenAs?: string;
  directory: boolean;
  /** Found inside a deleted directory. */
  parentDeleted: boolean;
  /** FAT 8.3 name whose first character (lost on delete) was taken from the live names of the same pattern around it. */
  nameGuessed?: boolean;
  size: number;
  /** ISO 8601; without a zone (local wall-clock time, as FAT stores it) when localTime. */
  times: { modified?: string; accessed?: string; created?: string };
  localTime: boolean;
  method: 'metadata';
  /** How its bytes were located (see UndeleteRule). */
  rule: UndeleteRule;
  /** FAT/exFAT: its first cluster; ext: its first block. */
  firstCluster: number;
  /** ext: its inode number. */
  inode?: number;
  /** ext: where the metadata that located its bytes came from ("the inode table", "journal transaction 4123"). */
  foundIn?: string;
  /**
   * recoverable: --list only (what recovery would try). reassembled: a JPEG whose planned bytes did not decode,
   * completed by the carver's fragment search in free clusters (`fragments` says where its bytes were found).
   */
  status: 'recovered' | 'reassembled' | 'partial' | 'overwritten' | 'empty' | 'unreadable' | 'recoverable';
  /** Set when status is reassembled. */
  recoveredBy?: 'reassembled';
  /** reassembled: where the bytes written lie in the source, in file order (the extents are the plan that did not decode). */
  fragments?: { offset: number; length: number }[];
  overwrittenBytes?: number;
  /** exFAT: bytes past this were never written (ValidDataLength) and are recovered as zeros. */
  validSize?: number;
  sha256?: string;
  /** JPEGs (by name or content) decoded after recovery. */
  jpeg?: 'complete' | 'partial' | 'rejected';
  /** partial / unreadable: why. */
  reason?: string;
  /** Where its bytes lie in the source, in file order. */
  extents: { offset: number; length: number }[];
}

export interface NativeUndeleteReport {
  source: string;
  size: number;
  scheme: 'none' | 'mbr' | 'gpt';
  tableProblem?: string;
  volumes: UndeleteVolume[];
  files: UndeletedFile[];
  recovered: number;
  /** JPEGs completed by the fragment search (not counted in recovered). */
  reassembled: number;
  partial: number;
  overwritten: number;
  empty: number;
  unreadable: number;
  directories: number;
  bytesWritten: number;
  seconds: number;
  cancelled: boolean;
}

/** The defaults of options JS may leave out: numbers, booleans and strings (formats and backing policies are said in words). */
export type OptionDefaults<T> = {
  readonly [K in keyof T as Exclude<T[K], undefined> extends number | boolean ? K : string extends Exclude<T[K], undefined> ? K : never]-?: Exclude<T[K], undefined>;
};

/** Every option default that crosses the seam, read from the core's default-constructed option structs. */
export interface NativeDefaults {
  scan: OptionDefaults<NativeScanOptions>;
  sparsify: OptionDefaults<NativeSparsifyOptions>;
  rbdTarget: OptionDefaults<NativeRbdTarget>;
  rbdImport: OptionDefaults<NativeRbdImportOptions>;
  rbdExport: OptionDefaults<NativeRbdExportOptions>;
  rbdSparsify: OptionDefaults<NativeRbdSparsifyOptions>;
  // scope: a string the core exports ("auto"), typed as its names.
  carve: OptionDefaults<Omit<NativeCarveOptions, 'outDir'>> & { scope: CarveScopeName };
}

export type CarveScopeName = 'auto' | 'free' | 'all' | 'allocated';

/** The scope a carve used (guest_fs/scan_scope.h). */
export interface NativeCarveScope {
  requested: CarveScopeName;
  used: Exclude<CarveScopeName, 'auto'>;
  /** Why `used` is 'all' although another scope was asked for (or 'auto' chose it). */
  reason?: string;
  /** Bytes of the carve's range the scope reads, and those it leaves out. */
  bytesInScope: number;
  bytesSkipped: number;
  /** The source's volumes (not listed for scope 'all'): filesystem null when not recognised (scanned whole). */
  volumes: {
    partition?: number;
    filesystem: string | null;
    offset: number;
    length: number;
    freeBytes?: number;
    allocatedBytes?: number;
    /** Why its maps are not trusted. */
    problem?: string;
  }[];
}

export interface NativeCarveReport {
  source: string;
  size: number;
  start: number;
  end: number;
  /** Where `resume` continues; equals `end` when the run finished. */
  nextOffset: number;
  bytesScanned: number;
  /** The scope used (absent in reports written before scopes existed: those scanned everything). */
  scope?: NativeCarveScope;
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
  /**
   * With onExtents, the extents go there in batches as they are found (flat: [offset, length, kind, ...]) and the
   * result's are empty; when it returns a promise, the next batch waits until it settles.
   */
  scanExtents(
    path: string,
    options: NativeScanOptions,
    onProgress?: NativeProgress,
    onExtents?: (flat: Float64Array, virtualSize: number) => Promise<unknown> | void,
  ): NativeJob<NativeScanResult>;
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
    options: NativeRbdExportOptions,
    onProgress?: NativeProgress,
  ): NativeJob<NativeRbdExportReport>;
  rbdInfo(target: NativeRbdTarget, onProgress?: NativeProgress): NativeJob<NativeRbdInfo>;
  /** Connects as `target` says (its image is not opened) and answers for the pool's `imageNames`. */
  rbdCluster(target: NativeRbdTarget, imageNames: string[], onProgress?: NativeProgress): NativeJob<NativeRbdCluster>;
  /** Creates an empty image of exactly `size` bytes; EEXIST if the name is taken. */
  rbdCreate(target: NativeRbdTarget, size: number, onProgress?: NativeProgress): NativeJob<void>;
  rbdRemove(target: NativeRbdTarget, onProgress?: NativeProgress): NativeJob<void>;
  rbdSparsify(target: NativeRbdTarget, options: NativeRbdSparsifyOptions, onProgress?: NativeProgress): NativeJob<NativeRbdSparsifyReport>;
  carve(
    source: string,
    options: NativeCarveOptions,
    onProgress: NativeProgress | undefined,
    /** (file) for each file written; (null, checkpoint) about once a second, after every file the checkpoint covers. */
    onEvent: (file: import('../api/carved-file.js').CarvedFile | null, checkpoint?: NativeCarveReport) => void,
  ): NativeJob<NativeCarveReport>;
  /** onFile(file, volumes?): each file as it is done, in order (the volumes with the first one). */
  undelete(
    source: string,
    options: NativeUndeleteOptions,
    onProgress?: NativeProgress,
    onFile?: (file: UndeletedFile, volumes?: UndeleteVolume[]) => void,
  ): NativeJob<NativeUndeleteReport>;
  /** Throws (EBUSY, one line) when a filesystem of the source is mounted read-write: undelete reads it as it is on disk. */
  checkUndeleteSource(source: string): void;
  /** Why writing under outDir could overwrite the source's sectors (native/core/host/same_storage.h), or null. */
  sameStorage(source: string, outDir: string): string | null;
  /** A block device's size in bytes from sysfs; undefined for anything else or when sysfs does not say. */
  blockDeviceSize(path: string): number | undefined;
  /** The mount point of the filesystem holding path (native/core/host/mountinfo.h), or undefined. */
  mountPointOf(path: string): string | undefined;
  /** The core's option defaults (an option passed as undefined takes these). */
  defaults: NativeDefaults;
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

// A source build's build/Release/blocksmith.node is node-gyp-build's first
// choice; taking it directly spares loading node-gyp-build and its probing
// (package.json, directory listings) on every start (bench/startup.bench.js).
// Its environment overrides (PREBUILDS_ONLY, BLOCKSMITH_PREBUILD) and every
// other case (build/Debug, prebuilds/) still go through it.
function addonPath(root: string, require: NodeJS.Require): string {
  const release = join(root, 'build', 'Release', 'blocksmith.node');
  if (!process.env.PREBUILDS_ONLY && !process.env.BLOCKSMITH_PREBUILD && existsSync(release)) return release;
  return (require('node-gyp-build') as NodeGypBuild).resolve(root);
}

function load(): NativeBinding {
  const root = packageRoot();
  const require = createRequire(import.meta.url);
  // npm rebuild runs the install script (node-gyp-build), which compiles when no
  // prebuild loads, even where npm skipped it at install time.
  const fromSource = "build it from source with 'npm rebuild blocksmith' (in a clone: 'npm install'), which needs python3, make and g++";
  let file: string;
  try {
    file = addonPath(root, require);
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
