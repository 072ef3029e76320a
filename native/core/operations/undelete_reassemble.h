// A deleted JPEG whose planned bytes do not decode, handed to the carver's
// fragment search (carve/reassemble.h) before it is reported partial.
//
// FAT zeroes a deleted file's chain, so undelete plans its bytes from the
// first cluster on, skipping the clusters live files own. That plan is wrong
// when the file was fragmented around a file that is gone too (its clusters
// are free, so the plan takes them). The file's start is known (its first
// cluster) and where its data went bad (check_jpeg's break): the search runs
// from there on the volume's cluster grid, and a continuation may lie in
// FREE clusters only: everything outside the volume's free map is claimed,
// so are the bytes of the deleted JPEGs already verified, and every fragment
// of a result must lie in free clusters. The JPEG ends at its EOI; when the
// directory entry's size is larger (bytes after the EOI, e.g. a second
// picture), the rest is taken after the last fragment by the same rule as
// the plan (the next free clusters). A result of any other length is refused.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/carve/reassemble.h"
#include "core/guest_fs/volume_files.h"
#include "core/pipeline/reader.h"

namespace blocksmith::undelete {

class FreeSpaceReassembler {
 public:
  FreeSpaceReassembler(Reader& reader, const fs::VolumeFiles& volume);

  // Bytes verified as another file's (a deleted JPEG that decoded whole, or
  // one reassembled): never taken as a continuation.
  void claim(uint64_t offset, uint64_t length) { claims_.add(offset, length); }

  struct Result {
    bool ok = false;
    std::vector<carve::Fragment> fragments;  // in file order; their bytes joined are the file
    std::string why;                         // not ok: why, for the partial's reason ("" when nothing was found)
    uint64_t attempts = 0;
  };
  // `d`: a recoverable deleted file (d.extents from its first cluster);
  // `broke_at`: where check_jpeg found its planned bytes going bad, in file
  // coordinates. On success `bytes` holds the file (d.size bytes).
  Result run(const fs::DeletedFile& d, uint64_t broke_at, std::vector<uint8_t>& bytes);

 private:
  bool all_free(uint64_t begin, uint64_t end) const;
  Reader& reader_;
  const fs::VolumeFiles& volume_;
  carve::Claims claims_;
};

}  // namespace blocksmith::undelete
