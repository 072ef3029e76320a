#include "core/guest_fs/scan_scope.h"

#include <algorithm>
#include <cerrno>

#include "core/base/error.h"
#include "core/guest_fs/inspect.h"
#include "core/guest_fs/volume_files.h"

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

// The reader's message without its leading "'path': " (the report names the source).
std::string reason_of(const Error& e, const std::string& path) {
  std::string m = e.what();
  const std::string prefix = "'" + path + "': ";
  if (m.rfind(prefix, 0) == 0) m.erase(0, prefix.size());
  return m;
}

// A FAT12/16/32 or exFAT filesystem at [s.offset, s.offset + s.length):
// false when neither boot sector is there. Recognised: its maps, or the
// reason they are not trusted (the reader refused it, or found problems).
bool read_fat_family(Reader& reader, ScopeVolume& s, Maps& m) {
  bool fat = false, exfat = false;
  try {
    exfat = probe_exfat(reader, s.offset, s.length);
    fat = !exfat && probe_fat(reader, s.offset, s.length);
  } catch (const Error& e) {
    if (e.code().rfind("ERR_FS_", 0) != 0) throw;  // I/O errors are the source's
  }
  if (!fat && !exfat) return false;
  s.filesystem = exfat ? "exfat" : "fat";
  try {
    VolumeFiles vf = exfat ? read_exfat(reader, s.offset, s.length) : read_fat(reader, s.offset, s.length);
    s.filesystem = vf.filesystem;
    if (!vf.problems.empty()) {
      s.problem = vf.problems.front();
      if (vf.problems.size() > 1) s.problem += " (and " + std::to_string(vf.problems.size() - 1) + " more problems)";
      return true;
    }
    m.free = std::move(vf.free);
    m.allocated = std::move(vf.allocated);
    m.free.normalize();
    m.allocated.normalize();
    s.free_bytes = m.free.total();
    s.allocated_bytes = m.allocated.total();
  } catch (const Error& e) {
    if (e.code().rfind("ERR_FS_", 0) != 0) throw;
    s.problem = reason_of(e, reader.path());
  }
  return true;
}

bool whole_source_is_fat_family(Reader& reader) {
  try {
    return probe_exfat(reader, 0, reader.size()) || probe_fat(reader, 0, reader.size());
  } catch (const Error& e) {
    if (e.code().rfind("ERR_FS_", 0) != 0) throw;
    return false;
  }
}

// The ext volumes the sparsify --fs inspection found (its free map is
// merged over all volumes: each takes its own part), the refused ones with
// their reason; the others are tried as FAT/exFAT, else unrecognised.
void from_inspection(Reader& reader, const Inspection& in, std::vector<ScopeVolume>& volumes, std::vector<Maps>& maps) {
  for (const auto& v : in.volumes) {
    ScopeVolume s;
    s.partition = v.number;
    s.offset = v.offset;
    s.length = v.length;
    Maps m;
    if (v.action == "free-blocks") {
      s.filesystem = v.filesystem;
      // A filesystem smaller than its partition: the tail is not its own.
      s.length = std::min<uint64_t>(v.length, v.blocks_count * v.block_size);
      for (const auto& r : in.free.ranges()) {
        const uint64_t b = std::max(r.begin, s.offset), e = std::min(r.end, s.offset + s.length);
        if (e > b) m.free.add(b, e);
      }
      m.free.normalize();
      complement(s, m.free.ranges(), m.allocated);
      s.free_bytes = m.free.total();
      s.allocated_bytes = m.allocated.total();
    } else if (v.action == "refused") {
      s.filesystem = v.filesystem;
      s.problem = v.reason;
    } else if (v.type != "0xee") {
      read_fat_family(reader, s, m);
    }
    volumes.push_back(std::move(s));
    maps.push_back(std::move(m));
  }
}

std::string where(const ScopeVolume& v) {
  return v.partition ? "partition " + std::to_string(v.partition) + " (at byte " + std::to_string(v.offset) + ")"
                     : "the filesystem at byte " + std::to_string(v.offset);
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
  auto finish = [&]() -> ScanScope {
    out.skip.normalize();
    for (const auto& r : out.skip.ranges()) {
      const uint64_t b = std::max(r.begin, begin), e = std::min(r.end, end);
      if (e > b) rep.bytes_skipped += e - b;
    }
    rep.bytes_in_scope = (end > begin ? end - begin : 0) - rep.bytes_skipped;
    return std::move(out);
  };
  // Today's whole-source scan: no filesystem is read.
  if (requested == "all") return finish();

  std::vector<Maps> maps;
  // A FAT boot sector ends in 0x55AA like an MBR and keeps boot code where an
  // MBR keeps its entries: it is asked first (its checks are far stricter).
  if (whole_source_is_fat_family(reader)) {
    ScopeVolume s;
    s.length = reader.size();
    Maps m;
    read_fat_family(reader, s, m);
    rep.volumes.push_back(std::move(s));
    maps.push_back(std::move(m));
  } else {
    Inspection in = inspect_filesystems(reader);
    if (!in.error_code.empty()) {
      rep.reason = "the partition table cannot be trusted: " + in.reason;
      return finish();
    }
    from_inspection(reader, in, rep.volumes, maps);
  }

  // Only the volumes the scanned range touches decide.
  const ScopeVolume* damaged = nullptr;
  bool trusted = false;
  for (const auto& v : rep.volumes) {
    if (v.filesystem.empty() || v.offset >= end || v.offset + v.length <= begin) continue;
    if (!v.problem.empty()) {
      if (!damaged) damaged = &v;
    } else {
      trusted = true;
    }
  }
  if (damaged) {
    rep.reason = "the " + damaged->filesystem + " filesystem in " + where(*damaged) +
                 " cannot be trusted, so neither can its free map: " + damaged->problem;
    return finish();
  }
  if (!trusted) {
    rep.reason = "no recognised filesystem (ext2/3/4, FAT12/16/32, exFAT) in the scanned range";
    return finish();
  }
  rep.used = requested == "auto" ? "free" : requested;
  for (size_t i = 0; i < rep.volumes.size(); i++) {
    const FreeMap& m = rep.used == "free" ? maps[i].allocated : maps[i].free;
    for (const auto& r : m.ranges()) out.skip.add(r.begin, r.end);
  }
  if (rep.used == "free")
    for (const auto& r : exclude) out.skip.add(r.begin, r.end);
  return finish();
}

}  // namespace blocksmith::fs
