// What the carver reports for each file it found: a plain description with no
// imports, shared by the seam (native.ts hands them over one by one) and the
// API (carve.ts), so neither imports the other for it.
export interface CarvedFile {
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
}

export interface UnreadableRange {
  offset: number;
  length: number;
}
