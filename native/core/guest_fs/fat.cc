// probe_fat / read_fat (volume_files.h): the boot sector (fat_boot), the FAT
// (fat_table), then two walks of the directory tree (fat_dir):
// 1. the live tree from the root: every live file's and directory's chain
//    is followed (cut at a loop, a cross-link, a free or out-of-range entry,
//    each recorded in `problems`) and marked in the live bitmap; deleted
//    entries met on the way are collected;
// 2. the deleted directories (their entries too, recursively), once the live
//    bitmap is complete: from the first cluster, which must still hold '.'
//    and '..', on through the next clusters no live file owns while they
//    parse as directory entries, up to the end marker.
// Then every deleted file gets its recovery plan (fat_recover), and of
// deleted files sharing clusters only the last written stays recoverable.
// Paths are
// relative to the root ("DCIM/100CANON/IMG_0001.JPG").
//
// Bounds: one bit per cluster (live clusters; directory clusters walked, so
// a directory met twice is a cycle and walked once), at most 4 Mi directory
// entries in all, 128 directory levels, 65536 entries per directory (FAT's
// own limit), at most 100 problems listed.
#include <algorithm>
#include <deque>

#include "core/base/error.h"
#include "core/guest_fs/bytes.h"
#include "core/guest_fs/fat_boot.h"
#include "core/guest_fs/fat_dir.h"
#include "core/guest_fs/fat_recover.h"
#include "core/guest_fs/fat_short_names.h"
#include "core/guest_fs/fat_table.h"
#include "core/guest_fs/volume_files.h"

namespace blocksmith::fs {
namespace {

constexpr uint64_t kMaxEntries = uint64_t(4) << 20;
constexpr int kMaxDepth = 128;
constexpr uint64_t kMaxDirBytes = 65536 * 32;
constexpr size_t kMaxProblems = 100;

struct Dir {
  std::string path;  // "" for the root
  uint32_t first_cluster;
  int depth;
  size_t deleted_index;  // deleted directories: their entry in VolumeFiles::deleted
};

class FatWalk {
 public:
  FatWalk(Reader& r, const FatGeometry& g, VolumeFiles& v)
      : r_(r), g_(g), v_(v), fat_(r, g), live_(g.cluster_count), dirs_seen_(g.cluster_count) {}

  void run() {
    mark_bad_clusters();
    walk_root();
    while (!live_dirs_.empty()) {
      Dir d = live_dirs_.front();
      live_dirs_.pop_front();
      walk_live_dir(d);
    }
    while (!deleted_dirs_.empty()) {
      Dir d = deleted_dirs_.front();
      deleted_dirs_.pop_front();
      walk_deleted_dir(d);
    }
    names_.apply(v_.deleted);
    for (auto& f : v_.deleted) {
      if (!f.directory) plan_fat_recovery(g_, fat_, live_, f);
    }
    settle_shared_clusters(v_.deleted);
    build_maps();
    if (problems_dropped_ > 0) v_.problems.push_back("... and " + std::to_string(problems_dropped_) + " more problems");
  }

 private:
  void problem(const std::string& what) {
    if (v_.problems.size() < kMaxProblems) {
      v_.problems.push_back(what);
    } else {
      ++problems_dropped_;
    }
  }
  static std::string where(const std::string& path) { return path.empty() ? "/" : path; }

  // Bad clusters belong to no file but hold nothing to recover or carve:
  // counted as owned, so plans skip them and `free` leaves them out.
  void mark_bad_clusters() {
    for (uint64_t c = 2; c < g_.cluster_count + 2; ++c) {
      if (fat_.get(static_cast<uint32_t>(c)).kind == FatTable::Kind::bad) live_.set(c);
    }
  }

  // Follows a live chain, marking it live; returns its clusters when asked.
  uint64_t follow_live_chain(uint32_t first, const std::string& path, std::vector<uint32_t>* out) {
    uint64_t n = 0;
    uint32_t c = first;
    for (;;) {
      if (!g_.valid_cluster(c)) {
        problem(where(path) + ": chain reaches cluster " + std::to_string(c) + ", outside the data clusters");
        break;
      }
      if (live_.test(c)) {
        problem(where(path) + ": cluster " + std::to_string(c) + " is already in use (a chain loop or a cross-link)");
        break;
      }
      const FatTable::Entry e = fat_.get(c);
      if (e.kind == FatTable::Kind::free) {
        problem(where(path) + ": cluster " + std::to_string(c) + " of its chain is free in the FAT");
        break;
      }
      live_.set(c);
      ++n;
      if (out) out->push_back(c);
      if (e.kind == FatTable::Kind::end) break;
      if (e.kind != FatTable::Kind::next) {
        problem(where(path) + ": cluster " + std::to_string(c) + " has an invalid FAT entry " + std::to_string(fat_.raw(c)));
        break;
      }
      c = e.next;
    }
    return n;
  }

  // Parses one piece of a directory; false once the end marker is met or
  // the entry budget is spent.
  bool parse(FatDirParser& p, const std::vector<uint8_t>& buf, uint64_t at, const Dir& d, bool dir_deleted) {
    for (size_t off = 0; off + 32 <= buf.size(); off += 32) {
      if (++entries_ > kMaxEntries) {
        if (!entry_cap_hit_) problem("more than " + std::to_string(kMaxEntries) + " directory entries: the walk stopped there");
        entry_cap_hit_ = true;
        return false;
      }
      FatDirEntry e;
      const auto step = p.feed(buf.data() + off, at + off, e);
      if (step == FatDirParser::Step::end) return false;
      if (step == FatDirParser::Step::entry) on_entry(e, d, dir_deleted);
    }
    return true;
  }

  void on_entry(const FatDirEntry& e, const Dir& d, bool dir_deleted) {
    const std::string path = d.path.empty() ? e.name : d.path + "/" + e.name;
    if (e.deleted || dir_deleted) {
      // Inside a deleted directory every entry is gone, whatever its first byte says.
      DeletedFile f;
      f.path = path;
      f.directory = e.directory;
      f.parent_deleted = dir_deleted;
      f.size = e.directory ? 0 : e.size;
      f.times = e.times;
      f.first_cluster = e.first_cluster;
      v_.deleted.push_back(std::move(f));
      if (e.first_char_lost) names_.add_lost(v_.deleted.size() - 1, d.path, e.name);
      if (e.directory) {
        if (d.depth + 1 > kMaxDepth) {
          problem(path + ": deleted directories nested deeper than " + std::to_string(kMaxDepth) + " levels: not walked");
        } else {
          deleted_dirs_.push_back({path, e.first_cluster, d.depth + 1, v_.deleted.size() - 1});
        }
      }
      return;
    }
    if (!e.long_name) names_.add_live(d.path, e.name);
    if (e.directory) {
      ++v_.live_directories;
      if (d.depth + 1 > kMaxDepth) {
        problem(path + ": directories nested deeper than " + std::to_string(kMaxDepth) + " levels: not walked");
      } else if (e.first_cluster == 0 || !g_.valid_cluster(e.first_cluster)) {
        problem(path + ": directory starts at cluster " + std::to_string(e.first_cluster) + ", not a data cluster");
      } else if (dirs_seen_.test(e.first_cluster) || live_.test(e.first_cluster)) {
        problem(path + ": directory cycle (cluster " + std::to_string(e.first_cluster) + " is already walked or in use)");
      } else {
        live_dirs_.push_back({path, e.first_cluster, d.depth + 1, 0});
      }
      return;
    }
    ++v_.live_files;
    if (e.first_cluster == 0) {
      if (e.size != 0) problem(path + ": " + std::to_string(e.size) + " bytes but no first cluster");
      return;
    }
    const uint64_t n = follow_live_chain(e.first_cluster, path, nullptr);
    const uint64_t need = (uint64_t(e.size) + g_.cluster_size - 1) / g_.cluster_size;
    if (n != need) {
      problem(path + ": size " + std::to_string(e.size) + " needs " + std::to_string(need) + " clusters, its chain has " +
              std::to_string(n));
    }
  }

  void walk_root() {
    FatDirParser p(g_.bits == 32);
    Dir root{"", 0, 0, 0};
    if (g_.bits != 32) {
      auto buf = read_checked(r_, g_.root_offset, g_.root_bytes, g_.offset + g_.length, "FAT root directory");
      parse(p, buf, g_.root_offset, root, false);
    } else {
      root.first_cluster = g_.root_cluster;
      walk_dir_chain(p, root);
    }
    v_.label = p.label().empty() ? g_.label : p.label();
  }

  void walk_live_dir(const Dir& d) {
    FatDirParser p(g_.bits == 32);
    walk_dir_chain(p, d);
  }

  void walk_dir_chain(FatDirParser& p, const Dir& d) {
    std::vector<uint32_t> chain;
    follow_live_chain(d.first_cluster, d.path, &chain);
    for (uint32_t c : chain) {
      if (dirs_seen_.test(c)) {
        problem(where(d.path) + ": directory cycle at cluster " + std::to_string(c));
        return;
      }
      dirs_seen_.set(c);
      auto buf = read_cluster(c);
      if (!parse(p, buf, g_.cluster_offset(c), d, false)) return;
    }
  }

  std::vector<uint8_t> read_cluster(uint64_t c) {
    return read_checked(r_, g_.cluster_offset(c), g_.cluster_size, g_.offset + g_.length, "FAT directory cluster");
  }

  // A deleted directory: walked only while its clusters still read as its own.
  void walk_deleted_dir(const Dir& d) {
    DeletedFile& self = v_.deleted[d.deleted_index];
    self.rule = Recovery::skip_live_clusters;
    const uint32_t first = d.first_cluster;
    if (!g_.valid_cluster(first)) {
      self.status = DeletedStatus::unreadable;
      return;
    }
    if (live_.test(first)) {
      self.status = DeletedStatus::overwritten;
      return;
    }
    if (dirs_seen_.test(first)) return;  // another deleted entry for the same directory: walked once
    auto buf = read_cluster(first);
    if (!starts_directory(buf.data(), buf.size(), first, g_.bits == 32)) {
      self.status = DeletedStatus::unreadable;  // its first cluster holds something else now
      return;
    }
    self.status = DeletedStatus::recoverable;
    FatDirParser p(g_.bits == 32);
    uint64_t c = first, bytes = 0;
    for (;;) {
      dirs_seen_.set(c);
      if (!parse(p, buf, g_.cluster_offset(c), d, true)) return;
      bytes += g_.cluster_size;
      if (bytes >= kMaxDirBytes) return;
      do {
        ++c;
      } while (c < g_.cluster_count + 2 && live_.test(c));
      if (c >= g_.cluster_count + 2 || dirs_seen_.test(c)) return;
      buf = read_cluster(c);
      if (!looks_like_directory(buf.data(), buf.size())) return;
    }
  }

  void build_maps() {
    v_.allocated.add(g_.offset, g_.data_offset);  // boot sector, reserved sectors, FATs, FAT12/16 root
    const uint64_t end = g_.cluster_count + 2;
    uint64_t c = 2;
    while (c < end) {
      const bool owned = live_.test(c);
      uint64_t e = c + 1;
      while (e < end && live_.test(e) == owned) ++e;
      (owned ? v_.allocated : v_.free).add(g_.cluster_offset(c), g_.cluster_offset(e));
      c = e;
    }
    v_.allocated.normalize();
    v_.free.normalize();
  }

  Reader& r_;
  const FatGeometry& g_;
  VolumeFiles& v_;
  FatTable fat_;
  ClusterBitmap live_, dirs_seen_;
  std::deque<Dir> live_dirs_, deleted_dirs_;
  ShortNameGuesser names_;
  uint64_t entries_ = 0;
  bool entry_cap_hit_ = false;
  uint64_t problems_dropped_ = 0;
};

uint64_t clamp_length(Reader& r, uint64_t offset, uint64_t length) {
  const uint64_t size = r.size();
  if (offset >= size) return 0;
  return std::min(length, size - offset);
}

}  // namespace

bool probe_fat(Reader& reader, uint64_t offset, uint64_t length) {
  length = clamp_length(reader, offset, length);
  if (length < 512) return false;
  uint8_t sector[512];
  if (reader.read_at(sector, sizeof sector, offset) != sizeof sector) return false;
  FatGeometry g;
  return check_fat_boot(sector, offset, length, g).message.empty();
}

VolumeFiles read_fat(Reader& reader, uint64_t offset, uint64_t length) {
  length = clamp_length(reader, offset, length);
  const FatGeometry g = read_fat_boot(reader, offset, length);
  VolumeFiles v;
  v.filesystem = "fat" + std::to_string(g.bits);
  v.offset = offset;
  v.length = length;
  v.cluster_size = g.cluster_size;
  v.data_offset = g.data_offset;
  v.cluster_count = g.cluster_count;
  FatWalk(reader, g, v).run();
  return v;
}

}  // namespace blocksmith::fs
