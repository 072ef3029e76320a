// blocksmith: low-level disk work from TypeScript.
export { isZero, classifyBlocks, cpuFeatures, BLOCK_ZERO, BLOCK_DATA } from './api/zero.js';
export type { CpuFeatures, ZeroKernel } from './api/zero.js';
export { forEachExtent, info, mapExtents } from './api/extents.js';
export type { Extent, ExtentKind, ExtentMap, ImageInfo, ScanOptions } from './api/extents.js';
export type { JobOptions, Progress } from './seam/job.js';
export type { ByteTotals } from './seam/native.js';
export { renderExtentSvg } from './render/svg.js';
export type { SvgOptions } from './render/svg.js';
export { AbortError, BlocksmithError, InvalidArgumentError } from './api/errors.js';
export { parseSize, parseBlockSize, formatBytes } from './api/units.js';
export { defaults } from './api/defaults.js';
export type { OptionDefaults } from './api/defaults.js';
export { sparsify, sparseCopy } from './api/sparsify.js';
export { inspectFilesystems } from './api/sparsify.js';
export type { SparsifyOptions, InPlaceOptions, CopyOptions, SparsifyReport } from './api/sparsify.js';
export { parseImageFormat } from './api/image-format.js';
export type { ImageFormat, ImageDescription, BackingLink, AllowBacking } from './api/image-format.js';
export type { VolumeReport, FsInspection } from './api/sparsify.js';
export { copyToRbd, copyFromRbd, rbdInfo, sparsifyRbd, parseRbdSpec, formatRbdSpec, isRbdSpec, parseMonHosts } from './api/rbd.js';
export { libvirtDiskXml } from './libvirt/domain-xml.js';
export type { RbdTarget, CopyToRbdOptions, RbdImportReport, RbdInfo, SparsifyRbdOptions, RbdSparsifyReport } from './api/rbd.js';
export { carve } from './api/carve.js';
export { sameStorage } from './host/same-storage.js';
export type {
  CarveOptions,
  CarveReport,
  CarveSummary,
  CarvedFile,
  CarveReportFile,
  RecoveredByName,
  CarveUndeletePart,
  CarveAbortError,
  UnreadableRange,
  CarveScope,
  CarveScopeName,
} from './api/carve.js';
export { renderGallery, writeGallery } from './render/gallery.js';
export type { GalleryReport, GalleryFile, GalleryFragment } from './render/gallery.js';
export { migrate, rollbackMigration } from './api/migrate.js';
export type { MigrateOptions, MigrateReport, MigrateProgress, MigratedDisk, DiskLeftAlone, RollbackReport } from './api/migrate.js';
export { undelete } from './api/undelete.js';
export type { UndeleteOptions, UndeleteReport, UndeleteAbortError, UndeletedFile, UndeleteVolume } from './api/undelete.js';
