// What the carver reports for each file it found: a plain description with no
// imports, shared by the seam (native.ts hands them over one by one) and the
// API (carve.ts), so neither imports the other for it.
export interface CarvedFile {
  /** How it was found: by carving, from one run of bytes or from fragments (absent in reports older than carve --undelete). */
  method?: 'carved' | 'reassembled';
  /** Byte offset of the file's SOI in the source. */
  offset: number;
  length: number;
  status: 'complete' | 'reassembled' | 'partial' | 'thumbnail' | 'duplicate';
  /** Relative to outDir (absent for a duplicate, which is not written). */
  path?: string;
  sha256: string;
  duplicateOf?: string;
  width: number;
  height: number;
  components: number;
  progressive: boolean;
  /** 'decoded': entropy data decoded against the file's Huffman tables; 'structure': arithmetic/lossless, markers only. */
  validated: 'decoded' | 'structure';
  /** partial: about where the data went bad, and why. */
  brokeAt?: number;
  reason?: string;
  /** thumbnail: offset of the file it is embedded in. */
  parent?: number;
  /** reassembled: where the file's bytes lie in the source, in file order (their concatenation is the file). */
  fragments?: FileFragment[];
  make?: string;
  model?: string;
  date?: string;
}

export interface FileFragment {
  offset: number;
  length: number;
  /**
   * reassembled on ext2/ext3: a hole of a sparse file, `length` zero bytes the source does not hold (a block of zeros
   * the filesystem never stored), put in where the stored bytes reach `offset`.
   */
  zeros?: true;
}

export interface UnreadableRange {
  offset: number;
  length: number;
}

/**
 * A deleted file carve --undelete recovered by its filesystem's metadata
 * (the entries `blocksmith undelete` reports), as listed among report.json's
 * files: by name, under OUTDIR/recovered/<original path>.
 */
/**
 * How a deleted file's bytes were located: exFAT NoFatChain (contiguous), FAT from its first cluster skipping live
 * ones, a surviving FAT chain; ext2/3 block pointers (block-map), an ext4 extent tree, or ext3 data taken as resuming
 * right after an indirect block that is gone (indirect-guess).
 */
export type UndeleteRule = 'contiguous' | 'skip-live-clusters' | 'fat-chain' | 'block-map' | 'extent-tree' | 'indirect-guess';

export interface RecoveredByName {
  method: 'metadata';
  /**
   * recovered: written whole; reassembled: a JPEG whose planned bytes did not decode, written from the fragments the
   * carver's search found in free clusters; partial: written, a JPEG that does not decode; overwritten, unreadable: not
   * written; empty: size 0.
   */
  status: 'recovered' | 'reassembled' | 'partial' | 'overwritten' | 'empty' | 'unreadable';
  /** reassembled: where the bytes written lie in the source, in file order. */
  fragments?: FileFragment[];
  /** Its original name (the last component of originalPath). */
  name: string;
  /** Its path in its volume ('/'-separated, from the root; long names where they survive). */
  originalPath: string;
  /** Index into report.undelete.volumes. */
  volume: number;
  /** Where it was written, relative to outDir ("recovered/DCIM/IMG_0001.JPG"); absent when not written. */
  path?: string;
  /** Source offset of its first byte (0 when no cluster of it is known). */
  offset: number;
  /** Its size. */
  length: number;
  sha256?: string;
  /** ISO 8601; without a zone (local wall-clock time, as FAT stores it) when localTime. */
  times: { modified?: string; accessed?: string; created?: string };
  localTime: boolean;
  /** How its bytes were located (exFAT contiguous, FAT from its first cluster skipping live ones, a surviving chain; ext block map, extent tree, indirect guess). */
  rule: UndeleteRule;
  firstCluster: number;
  /** ext: its inode number. */
  inode?: number;
  /** ext: where the metadata that located its bytes came from ("the inode table", "journal transaction 4123"). */
  foundIn?: string;
  /** JPEGs (by name or content): the decode check. */
  jpeg?: 'complete' | 'partial' | 'rejected';
  reason?: string;
  overwrittenBytes?: number;
  validSize?: number;
  /** Where its bytes lie in the source, in file order. */
  extents: FileFragment[];
}

/** An entry of a carve report's files. */
export type CarveReportFile = CarvedFile | RecoveredByName;
