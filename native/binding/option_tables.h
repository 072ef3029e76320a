// The one field table of each core option struct that crosses the seam: JS
// name -> member, in the order they are read. Adding an option: a member
// (with its default) in the core struct, a line here, a line in the
// Native*Options interface of src/seam/native.ts. See option_fields.h.
#pragma once

#include "core/operations/carve.h"
#include "core/operations/image_scan.h"
#include "core/operations/rbd_copy.h"
#include "core/operations/rbd_sparsify.h"
#include "core/operations/sparsify.h"
#include "core/operations/undelete.h"

namespace blocksmith {

// Found by argument-dependent lookup from binding::read_options.

template <class F>
void fields(ImageScanOptions& o, F&& f) {
  f("blockSize", o.scan.block_size);
  f("chunkSize", o.scan.chunk_size);
  f("seekHole", o.use_seek_hole);
  f("extents", o.keep_extents);
  f("format", o.format);
  f("allowBacking", o.backing);
}

template <class F>
void fields(SparsifyOptions& o, F&& f) {
  f("blockSize", o.scan.block_size);
  f("chunkSize", o.scan.chunk_size);
  f("seekHole", o.use_seek_hole);
  f("dryRun", o.dry_run);
  f("force", o.force);
  f("overwrite", o.overwrite);
  f("format", o.format);
  f("allowBacking", o.backing);
  f("fs", o.fs);
}

namespace rbd {

template <class F>
void fields(Target& t, F&& f) {
  f("pool", t.pool);
  f("namespace", t.ns);
  f("image", t.image);
  f("user", t.user);
  f("conf", t.conf);
  f("keyring", t.keyring);
  f("timeout", t.timeout_seconds);
}

template <class F>
void fields(ImportOptions& o, F&& f) {
  f("blockSize", o.scan.block_size);
  f("seekHole", o.use_seek_hole);
  f("parallel", o.parallel);
  f("objectSize", o.object_size);
  f("writeSize", o.write_size);
  f("features", o.features);
  f("dataPool", o.data_pool);
  f("overwrite", o.overwrite);
  f("keepPartial", o.keep_partial);
  f("verify", o.verify);
  f("force", o.force);
  f("format", o.format);
  f("allowBacking", o.backing);
}

template <class F>
void fields(ExportOptions& o, F&& f) {
  f("blockSize", o.scan.block_size);
  f("overwrite", o.overwrite);
}

template <class F>
void fields(RbdSparsifyOptions& o, F&& f) {
  f("blockSize", o.scan.block_size);
  f("dryRun", o.dry_run);
  f("allowWatchers", o.allow_watchers);
  f("parallel", o.parallel);
}

}  // namespace rbd

namespace carve {

// outDir (required) and the resume state (held, recovered, known) are read
// by carve_binding.cc: they have no default.
template <class F>
void fields(CarveOptions& c, F&& f) {
  f("offset", c.offset);
  f("length", c.length);
  f("sectorSize", c.sector_size);
  f("minSize", c.min_size);
  f("minWidth", c.min_width);
  f("minHeight", c.min_height);
  f("maxSize", c.max_size);
  f("chunkSize", c.chunk_size);
  f("dedupe", c.dedupe);
  f("thumbnails", c.thumbnails);
  f("partials", c.partials);
  f("seekHole", c.use_seek_hole);
  f("write", c.write);
  f("reassemble", c.reassemble);
  f("blockSize", c.block_size);
  f("maxGap", c.max_gap);
  f("maxAttempts", c.max_attempts);
  f("keepIdentical", c.keep_identical);
  f("scope", c.scope);
}

}  // namespace carve
namespace undelete {

template <class F>
void fields(UndeleteOptions& o, F&& f) {
  f("outDir", o.out_dir);
  f("list", o.list);
  f("maxJpegCheck", o.max_jpeg_check);
}

}  // namespace undelete
}  // namespace blocksmith
