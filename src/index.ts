// blocksmith: low-level disk work from TypeScript.
export { isZero, classifyBlocks, cpuFeatures, BLOCK_ZERO, BLOCK_DATA } from './zero.js';
export type { CpuFeatures, ZeroKernel } from './zero.js';
export { info, mapExtents } from './extents.js';
export type { Extent, ExtentKind, ExtentMap, ImageInfo, ScanOptions } from './extents.js';
export type { JobOptions, Progress } from './job.js';
export { renderExtentSvg } from './svg.js';
export type { SvgOptions } from './svg.js';
export { AbortError, BlocksmithError, InvalidArgumentError } from './errors.js';
export { parseSize, parseBlockSize, formatBytes } from './units.js';
export { sparsify, sparseCopy } from './sparsify.js';
export { inspectFilesystems } from './sparsify.js';
export type { SparsifyOptions, InPlaceOptions, CopyOptions, SparsifyReport } from './sparsify.js';
export type { VolumeReport, FsInspection } from './sparsify.js';
export { copyToRbd, copyFromRbd, rbdInfo, parseRbdSpec, formatRbdSpec, isRbdSpec, libvirtDiskXml, parseMonHosts } from './rbd.js';
export type { RbdTarget, CopyToRbdOptions, RbdImportReport, RbdInfo } from './rbd.js';
