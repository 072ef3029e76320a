// Where a deleted FAT file's bytes lie, from its first cluster, its size,
// the FAT and the bitmap of clusters live files own now:
// - size 0: status empty, no extents.
// - first cluster not a data cluster, or a size larger than the data
//   region (or not coverable before the volume ends): unreadable.
// - the FAT still chains from the first cluster to an end-of-chain mark in
//   exactly the clusters the size needs, none of them live (the delete left
//   the chain, e.g. an unclean delete): fat_chain, followed as written.
// - otherwise skip_live_clusters (a delete zeroes the chain; files are
//   written into the first free clusters, so the content continues in the
//   next clusters no live file owns): from the first cluster on, the clusters
//   not live, as many as the size needs.
// Overwritten: when the first cluster is live now. The skip rule cannot see
// any other overwrite (a live cluster is skipped by definition), but the
// first cluster is certain: the file started there. Then `extents` hold the
// contiguous run of clusters from the first one (what the file most likely
// occupied, clipped at the volume's end) and overwritten_bytes the bytes of
// that run that lie in live clusters: the content is not to be presented as
// recovered.
#pragma once

#include "core/guest_fs/fat_boot.h"
#include "core/guest_fs/fat_table.h"
#include "core/guest_fs/volume_files.h"

namespace blocksmith::fs {

// Fills f.rule, f.status, f.extents and f.overwritten_bytes from
// f.first_cluster and f.size (a file, not a directory).
void plan_fat_recovery(const FatGeometry& g, const FatTable& fat, const ClusterBitmap& live, DeletedFile& f);

}  // namespace blocksmith::fs
