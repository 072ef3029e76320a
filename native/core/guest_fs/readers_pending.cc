// TEMPORARY (branch undel-op only): the FAT and exFAT readers are written on
// their own branches (undel-fat, undel-exfat); until they are merged these
// refuse every volume, so the rest links. Removed by the merge.
#include "core/base/error.h"
#include "core/guest_fs/volume_files.h"

namespace blocksmith::fs {
bool probe_fat(Reader&, uint64_t, uint64_t) { return false; }
bool probe_exfat(Reader&, uint64_t, uint64_t) { return false; }
VolumeFiles read_fat(Reader& r, uint64_t, uint64_t) { throw Error(0, "ERR_FS_UNSUPPORTED", "", r.path(), "no FAT reader yet"); }
VolumeFiles read_exfat(Reader& r, uint64_t, uint64_t) { throw Error(0, "ERR_FS_UNSUPPORTED", "", r.path(), "no exFAT reader yet"); }
}  // namespace blocksmith::fs
