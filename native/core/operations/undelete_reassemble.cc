#include "core/operations/undelete_reassemble.h"

#include <algorithm>

#include "core/base/error.h"

namespace blocksmith::undelete {

FreeSpaceReassembler::FreeSpaceReassembler(Reader& reader, const fs::VolumeFiles& volume) : reader_(reader), volume_(volume) {
  // Claimed: every byte of the source the volume does not call free (live
  // files, the filesystem's own structures, other volumes, the partition table).
  uint64_t at = 0;
  for (const auto& r : volume.free.ranges()) {
    if (r.begin > at) claims_.add(at, r.begin - at);
    at = std::max(at, r.end);
  }
  const uint64_t size = reader.size();
  if (size > at) claims_.add(at, size - at);
}

bool FreeSpaceReassembler::all_free(uint64_t begin, uint64_t end) const {
  while (begin < end) {
    const fs::ByteRange* r = volume_.free.next(begin);
    if (!r || r->begin > begin) return false;
    begin = r->end;
  }
  return true;
}

FreeSpaceReassembler::Result FreeSpaceReassembler::run(const fs::DeletedFile& d, uint64_t broke_at, std::vector<uint8_t>& bytes) {
  Result res;
  if (d.extents.empty() || volume_.cluster_size == 0 || d.size == 0) return res;
  const fs::ByteRange& first = d.extents.front();
  // The break in source coordinates: inside the first extent, or where the
  // plan left the clusters that follow the first one.
  const uint64_t broke = broke_at < first.end - first.begin ? first.begin + broke_at : first.end;
  carve::ReassembleOptions ro;
  ro.block_size = volume_.cluster_size;
  ro.block_phase = volume_.data_offset % volume_.cluster_size;
  ro.max_size = d.size;  // the file is no longer than its directory entry says
  carve::Reassembly ra = carve::reassemble(reader_, first.begin, broke, claims_, ro, &bytes);
  res.attempts = ra.attempts;
  if (!ra.ok) {
    res.why = ra.refused;
    return res;
  }
  std::vector<carve::Fragment> frags = std::move(ra.fragments);
  // Bytes after the EOI: the next free clusters after the last fragment.
  uint64_t rest = d.size - std::min<uint64_t>(d.size, bytes.size());
  uint64_t at = frags.back().offset + frags.back().length;
  while (rest > 0) {
    const fs::ByteRange* r = volume_.free.next(at);
    if (!r) {
      res.why = "a continuation decodes to its EOI, but the free space ends before the " + std::to_string(rest) +
                " bytes its size has after it";
      return res;
    }
    uint64_t b = std::max(at, r->begin), n = std::min(rest, r->end - b);
    if (frags.back().offset + frags.back().length == b) frags.back().length += n;
    else frags.push_back({b, n});
    size_t old = bytes.size();
    bytes.resize(old + size_t(n));
    size_t got = 0;
    try {
      got = reader_.read_at(bytes.data() + old, size_t(n), b);
    } catch (const Error& e) {
      res.why = std::string("its bytes after the EOI cannot be read: ") + e.what();
      return res;
    }
    if (got != n) {
      res.why = "its bytes after the EOI lie past the end of the source";
      return res;
    }
    rest -= n;
    at = b + n;
  }
  for (const auto& f : frags)
    if (!all_free(f.offset, f.offset + f.length)) {
      res.why = "a continuation decodes to its EOI, but runs into clusters live files own (at " + std::to_string(f.offset) + ")";
      return res;
    }
  for (const auto& f : frags) claims_.add(f.offset, f.length);
  res.ok = true;
  res.fragments = std::move(frags);
  return res;
}

}  // namespace blocksmith::undelete
