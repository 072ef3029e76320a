#include "core/guest_fs/scan_scope.h"

#include <algorithm>
#include <cerrno>

#include "core/base/error.h"
#include "core/guest_fs/volumes.h"

namespace blocksmith::fs {
namespace {

// A recognised filesystem's two maps, in source coordinates.
struct Maps {
  FreeMap free, allocated;
};

// [v.offset, v.offset + v.length) minus `free` (sorted, disjoint): what the
// filesystem owns.
void complement(const ScopeVolume& v, const std::vector<ByteRange>& free, FreeMap& out) {
  uint64_t at = v.offset;
  const uint64_t end = v.offset + v.length;
  for (const auto& r : free) {
    const uint64_t b = std::clamp(r.begin, v.offset, end), e = std::clamp(r.end, v.offset, end);
    if (e <= b) continue;
    if (b > at) out.add(at, b);
    at = std::max(at, e);
  }
  if (end > at) out.add(at, end);
  out.normalize();
}

// What the scope needs of one volume volumes.h found: its filesystem, its
// extent, and its maps or why they are not trusted.
void from_found(FoundVolume& f, ScopeVolume& s, Maps& m) {
  s.partition = f.partition;
  s.offset = f.offset;
  s.length = f.length;
  if (!f.ext.empty()) {
    s.filesystem = f.ext;
    if (!f.ext_problem.empty()) {
      s.problem = f.ext_problem;
      return;
    }
    s.length = f.ext_length;
    m.free = std::move(f.ext_free);
    complement(s, m.free.ranges(), m.allocated);
  } else if (f.read) {
    VolumeFiles& vf = f.files;
    s.filesystem = vf.filesystem;
    if (!vf.problems.empty()) {
      s.problem = vf.problems.front();
      if (vf.problems.size() > 1) s.problem += " (and " + std::to_string(vf.problems.size() - 1) + " more problems)";
      return;
    }
    m.free = std::move(vf.free);
    m.allocated = std::move(vf.allocated);
    m.free.normalize();
    m.allocated.normalize();
  } else if (!f.fat_family.empty()) {
    // The boot sector is there but its reader refused the volume.
    s.filesystem = f.fat_family;
    s.problem = f.problem;
    return;
  } else {
    return;  // not recognised: scanned whole in every scope
  }
  s.free_bytes = m.free.total();
  s.allocated_bytes = m.allocated.total();
}

std::string where(const ScopeVolume& v) {
  return v.partition ? "partition " + std::to_string(v.partition) + " (at byte " + std::to_string(v.offset) + ")"
                     : "the filesystem at byte " + std::to_string(v.offset);
}

// Counts what the scope skips and reads of [begin, end), and hands it out.
ScanScope finish(ScanScope& out, uint64_t begin, uint64_t end) {
  ScopeReport& rep = out.report;
  out.skip.normalize();
  for (const auto& r : out.skip.ranges()) {
    const uint64_t b = std::max(r.begin, begin), e = std::min(r.end, end);
    if (e > b) rep.bytes_skipped += e - b;
  }
  rep.bytes_in_scope = (end > begin ? end - begin : 0) - rep.bytes_skipped;
  return std::move(out);
}

// Why the volumes' maps cannot decide the scope of [begin, end), or "" when
// they can: only the volumes the range touches count; a damaged one wins.
std::string distrust(const std::vector<ScopeVolume>& volumes, uint64_t begin, uint64_t end) {
  const ScopeVolume* damaged = nullptr;
  bool trusted = false;
  for (const auto& v : volumes) {
    if (v.filesystem.empty() || v.offset >= end || v.offset + v.length <= begin) continue;
    if (!v.problem.empty()) {
      if (!damaged) damaged = &v;
    } else {
      trusted = true;
    }
  }
  if (damaged) {
    return "the " + damaged->filesystem + " filesystem in " + where(*damaged) +
           " cannot be trusted, so neither can its free map: " + damaged->problem;
  }
  if (!trusted) return "no recognised filesystem (ext2/3/4, FAT12/16/32, exFAT) in the scanned range";
  return "";
}

// The ranges scope `used` skips: what the filesystems own ("free", plus
// `exclude`) or what they leave free ("allocated").
void add_skipped(ScanScope& out, const std::vector<Maps>& maps, const std::vector<ByteRange>& exclude) {
  const bool free_scope = out.report.used == "free";
  for (const auto& m : maps) {
    for (const auto& r : (free_scope ? m.allocated : m.free).ranges()) out.skip.add(r.begin, r.end);
  }
  if (free_scope)
    for (const auto& r : exclude) out.skip.add(r.begin, r.end);
}

}  // namespace

bool valid_scope(const std::string& s) { return s == "auto" || s == "free" || s == "all" || s == "allocated"; }

ScanScope plan_scan_scope(Reader& reader, const std::string& requested, uint64_t begin, uint64_t end,
                          const std::vector<ByteRange>& exclude) {
  if (!valid_scope(requested))
    throw Error(EINVAL, "EINVAL", "", "", "scope must be auto, free, all or allocated, not '" + requested + "'");
  ScanScope out;
  ScopeReport& rep = out.report;
  rep.requested = requested;
  rep.used = "all";
  // Today's whole-source scan: no filesystem is read.
  if (requested == "all") return finish(out, begin, end);

  SourceVolumes found = find_volumes(reader, FindVolumesOptions{.ext = true});
  if (!found.table_problem.empty()) {
    rep.reason = "the partition table cannot be trusted: " + found.table_problem;
    return finish(out, begin, end);
  }
  std::vector<Maps> maps;
  for (auto& f : found.volumes) {
    ScopeVolume s;
    Maps m;
    from_found(f, s, m);
    rep.volumes.push_back(std::move(s));
    maps.push_back(std::move(m));
  }
  rep.reason = distrust(rep.volumes, begin, end);
  if (!rep.reason.empty()) return finish(out, begin, end);
  rep.used = requested == "auto" ? "free" : requested;
  add_skipped(out, maps, exclude);
  return finish(out, begin, end);
}

}  // namespace blocksmith::fs
