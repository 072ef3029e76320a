// probe_exfat / read_exfat (volume_files.h): the boot region
// (exfat_boot.h), the allocation bitmap and FAT (exfat_clusters.h), then
// the live directories walked breadth-first from the root (exfat_dir.h),
// then the deleted directories found on the way (only once every live
// object's clusters are known can it be told which of theirs were reused),
// and for each deleted entry set the plan to read its bytes:
//   NoFatChain        -> contiguous from the first cluster;
//   FAT chain intact  -> fat_chain (every link valid, ends in the end mark,
//                        no cluster in use now);
//   otherwise         -> skip_live_clusters, as on FAT (exfat-fuse frees the
//                        chain's FAT entries when it deletes).
// Status: empty (size 0), unreadable (first cluster or size impossible),
// overwritten (a cluster the plan reads is in use now), else recoverable.
#include <algorithm>
#include <deque>
#include <string>
#include <vector>

#include "core/guest_fs/bytes.h"
#include "core/guest_fs/exfat_boot.h"
#include "core/guest_fs/exfat_clusters.h"
#include "core/guest_fs/exfat_dir.h"
#include "core/guest_fs/volume_files.h"

namespace blocksmith::fs {

namespace {

constexpr uint64_t kMaxDirectoryBytes = 256ull << 20;  // the specification's limit
constexpr size_t kMaxDepth = 64;
constexpr size_t kMaxDeleted = 1u << 20;
constexpr size_t kMaxProblems = 32;

struct PendingDir {
  std::vector<uint32_t> clusters;
  uint64_t bytes;  // of those clusters to parse
  std::string path;
  bool deleted;
  size_t depth;
};

class Walk {
 public:
  Walk(Reader& r, const ExfatBoot& b, VolumeFiles& v) : r_(r), b_(b), cl_(r, b), v_(v) {}

  void run();

 private:
  // The root directory's clusters (its chain as the FAT has it).
  PendingDir root_dir();
  // From the root: the allocation bitmap, the label, and the clusters the
  // root, the bitmap and the up-case table own.
  void load_metadata(const PendingDir& root);
  // One directory from the queue: each entry set taken as live or deleted.
  void walk_dir(PendingDir& d);
  // A live object: counted, its clusters owned, a directory queued.
  void take_live(const ExfatEntrySet& s, const std::string& path, size_t depth);
  // A deleted object (or any object in a deleted directory): listed, a
  // directory kept for queue_deleted_dirs.
  void take_deleted(const ExfatEntrySet& s, const std::string& path, const PendingDir& d);
  // Once the live tree is walked: the deleted directories still readable.
  void queue_deleted_dirs();
  void problem(const std::string& p) {
    if (v_.problems.size() < kMaxProblems) v_.problems.push_back(p);
    else if (v_.problems.size() == kMaxProblems) v_.problems.push_back("more problems not listed");
  }
  bool mark(std::vector<uint8_t>& bits, uint32_t c) {
    uint8_t& m = bits[(c - 2) >> 3];
    const uint8_t bit = static_cast<uint8_t>(1u << ((c - 2) & 7));
    const bool was = m & bit;
    m |= bit;
    return was;
  }
  bool marked(const std::vector<uint8_t>& bits, uint64_t c) const {
    return bits[(c - 2) >> 3] >> ((c - 2) & 7) & 1;
  }
  uint64_t clusters_for(uint64_t bytes) const { return (bytes + b_.cluster_size - 1) / b_.cluster_size; }
  // Clusters of a live object (its chain or contiguous run), as written.
  std::vector<uint32_t> live_clusters(const ExfatEntrySet& s, const std::string& path);
  void own(const std::vector<uint32_t>& clusters, const std::string& path);
  std::vector<uint8_t> read_dir(PendingDir& d);
  // The clusters a deleted object's bytes are read from, by its rule; empty
  // when its first cluster or size is impossible.
  std::vector<uint32_t> recovery_clusters(const ExfatEntrySet& s, Recovery& rule);
  void plan(DeletedFile& f, const ExfatEntrySet& s);
  void extents_of(DeletedFile& f, const std::vector<uint32_t>& clusters);
  void maps();

  Reader& r_;
  const ExfatBoot& b_;
  ExfatClusters cl_;
  VolumeFiles& v_;
  std::vector<uint8_t> owned_;     // clusters live files, directories and metadata own
  std::vector<uint8_t> dir_read_;  // directory clusters already parsed
  std::deque<PendingDir> queue_;
  struct DeletedDir {
    ExfatEntrySet set;
    std::string path;
    size_t depth;
  };
  std::vector<DeletedDir> pending_dirs_;  // deleted directories, walked after the live ones
  std::vector<ExfatEntrySet> sets_;        // the entry set of each v_.deleted[i]
  bool deleted_capped_ = false;
};

std::vector<uint32_t> Walk::live_clusters(const ExfatEntrySet& s, const std::string& path) {
  std::vector<uint32_t> out;
  if (s.data_length == 0) return out;
  const uint64_t n = clusters_for(s.data_length);
  if (!b_.valid_cluster(s.first_cluster) || n > b_.cluster_count) {
    problem("'" + path + "': first cluster " + std::to_string(s.first_cluster) + " or size " +
            std::to_string(s.data_length) + " does not fit the cluster heap");
    return out;
  }
  if (s.no_fat_chain) {
    if (s.first_cluster + n > uint64_t(b_.cluster_count) + 2) {
      problem("'" + path + "': contiguous run from cluster " + std::to_string(s.first_cluster) + " runs past the heap");
      return out;
    }
    for (uint64_t k = 0; k < n; ++k) out.push_back(static_cast<uint32_t>(s.first_cluster + k));
    return out;
  }
  std::string p;
  out = cl_.chain(s.first_cluster, n, &p);
  if (!p.empty()) problem("'" + path + "': " + p);
  else if (out.size() < n) problem("'" + path + "': FAT chain ends after " + std::to_string(out.size()) + " of " +
                                   std::to_string(n) + " clusters");
  return out;
}

void Walk::own(const std::vector<uint32_t>& clusters, const std::string& path) {
  bool cross = false, unmarked = false;
  for (uint32_t c : clusters) {
    if (mark(owned_, c) && !cross) {
      cross = true;
      problem("'" + path + "': cluster " + std::to_string(c) + " is owned twice (cross-linked)");
    }
    if (!cl_.in_use(c) && !unmarked) {
      unmarked = true;
      problem("'" + path + "': cluster " + std::to_string(c) + " is free in the allocation bitmap");
    }
  }
}

std::vector<uint8_t> Walk::read_dir(PendingDir& d) {
  std::vector<uint8_t> bytes;
  uint64_t left = std::min(d.bytes, kMaxDirectoryBytes);
  for (uint32_t c : d.clusters) {
    if (left == 0) break;
    if (mark(dir_read_, c)) {
      // A live directory met again is a cycle (or two directories sharing
      // clusters); a deleted one's clusters may well be a live one's now.
      if (!d.deleted) problem("'" + (d.path.empty() ? "/" : d.path) + "': directory cluster " + std::to_string(c) +
                              " was already read (directory cycle)");
      break;
    }
    const uint64_t n = std::min<uint64_t>(left, b_.cluster_size);
    auto part = read_checked(r_, b_.cluster_at(c), n, b_.offset + b_.length, "exFAT directory");
    bytes.insert(bytes.end(), part.begin(), part.end());
    left -= n;
  }
  return bytes;
}

void Walk::extents_of(DeletedFile& f, const std::vector<uint32_t>& clusters) {
  uint64_t left = f.size;
  for (uint32_t c : clusters) {
    if (left == 0) break;
    const uint64_t n = std::min<uint64_t>(left, b_.cluster_size);
    const uint64_t at = b_.cluster_at(c);
    if (cl_.in_use(c) || marked(owned_, c)) f.overwritten_bytes += n;
    if (!f.extents.empty() && f.extents.back().end == at) f.extents.back().end += n;
    else f.extents.push_back({at, at + n});
    left -= n;
  }
  f.status = f.overwritten_bytes ? DeletedStatus::overwritten : DeletedStatus::recoverable;
}

std::vector<uint32_t> Walk::recovery_clusters(const ExfatEntrySet& s, Recovery& rule) {
  std::vector<uint32_t> clusters;
  rule = s.no_fat_chain ? Recovery::contiguous : Recovery::skip_live_clusters;
  const uint64_t n = clusters_for(s.data_length);
  const uint64_t last = uint64_t(b_.cluster_count) + 1;
  if (n == 0 || !b_.valid_cluster(s.first_cluster) || n > b_.cluster_count ||
      (s.no_fat_chain && s.first_cluster + n - 1 > last)) {
    return clusters;
  }
  if (s.no_fat_chain) {
    for (uint64_t k = 0; k < n; ++k) clusters.push_back(static_cast<uint32_t>(s.first_cluster + k));
    return clusters;
  }
  // The chain as the FAT still has it, taken only when whole and free.
  std::string p;
  clusters = cl_.chain(s.first_cluster, n, &p);
  bool intact = p.empty() && clusters.size() == n && cl_.fat(clusters.back()) == 0xFFFFFFFFu;
  for (size_t k = 0; intact && k < clusters.size(); ++k) intact = !cl_.in_use(clusters[k]) && !marked(owned_, clusters[k]);
  if (intact) {
    rule = Recovery::fat_chain;
    return clusters;
  }
  // From the first cluster on, skipping clusters in use now.
  clusters.assign(1, s.first_cluster);
  for (uint64_t c = uint64_t(s.first_cluster) + 1; c <= last && clusters.size() < n; ++c) {
    if (!cl_.in_use(c) && !marked(owned_, c)) clusters.push_back(static_cast<uint32_t>(c));
  }
  if (clusters.size() < n) clusters.clear();
  return clusters;
}

void Walk::plan(DeletedFile& f, const ExfatEntrySet& s) {
  f.size = s.data_length;
  f.valid_size = std::min(s.valid_data_length, s.data_length);
  f.first_cluster = s.first_cluster;
  const auto clusters = recovery_clusters(s, f.rule);
  if (f.size == 0) f.status = DeletedStatus::empty;
  else if (clusters.empty()) f.status = DeletedStatus::unreadable;
  else extents_of(f, clusters);
}

void Walk::run() {
  owned_.assign((uint64_t(b_.cluster_count) + 7) / 8, 0);
  dir_read_.assign(owned_.size(), 0);
  PendingDir root = root_dir();
  load_metadata(root);
  queue_.push_back(std::move(root));
  while (!queue_.empty()) {
    PendingDir d = std::move(queue_.front());
    queue_.pop_front();
    walk_dir(d);
    if (queue_.empty()) queue_deleted_dirs();
  }
  for (size_t i = 0; i < v_.deleted.size(); ++i) plan(v_.deleted[i], sets_[i]);
  maps();
}

PendingDir Walk::root_dir() {
  // The root: always a FAT chain, its length whatever the chain says.
  std::string p;
  PendingDir root{cl_.chain(b_.root_cluster, kMaxDirectoryBytes / b_.cluster_size + 1, &p), kMaxDirectoryBytes, "",
                  false, 0};
  if (!p.empty()) problem("root directory: " + p);
  return root;
}

void Walk::load_metadata(const PendingDir& root) {
  // The root is read before the bitmap is known: parse it once for its
  // bitmap entry, then walk it like every other directory.
  ExfatDirectory top;
  {
    std::vector<uint8_t> bytes;
    for (uint32_t c : root.clusters) {
      auto part = read_checked(r_, b_.cluster_at(c), b_.cluster_size, b_.offset + b_.length, "exFAT root directory");
      bytes.insert(bytes.end(), part.begin(), part.end());
    }
    parse_exfat_directory(bytes.data(), bytes.size(), top);
  }
  const int which = b_.active_fat;
  if (!top.has_bitmap[which]) corrupt(r_.path(), "exFAT volume at byte " + std::to_string(b_.offset) +
                                                     ": no allocation bitmap entry in the root directory");
  cl_.load_bitmap(top.bitmap_cluster[which], top.bitmap_length[which]);
  v_.label = top.label;
  std::string q;
  own(root.clusters, "/");
  const auto bm = cl_.chain(top.bitmap_cluster[which], clusters_for(top.bitmap_length[which]), &q);
  own(bm, "allocation bitmap");
  if (top.has_upcase && top.upcase_length) {
    const auto up = cl_.chain(top.upcase_cluster, clusters_for(top.upcase_length), &q);
    if (!q.empty()) problem("up-case table: " + q);
    own(up, "up-case table");
  }
}

void Walk::walk_dir(PendingDir& d) {
  const auto bytes = read_dir(d);
  ExfatDirectory dir;
  parse_exfat_directory(bytes.data(), bytes.size(), dir);
  if (dir.bad_live && !d.deleted) {
    problem("'" + (d.path.empty() ? "/" : d.path) + "': " + std::to_string(dir.bad_live) +
            " live entry sets have a bad checksum");
  }
  for (const auto& s : dir.sets) {
    const std::string path = d.path.empty() ? s.name : d.path + "/" + s.name;
    if (s.in_use && !d.deleted) take_live(s, path, d.depth);
    else take_deleted(s, path, d);
  }
}

void Walk::take_live(const ExfatEntrySet& s, const std::string& path, size_t depth) {
  ++(s.directory ? v_.live_directories : v_.live_files);
  auto clusters = live_clusters(s, path);
  own(clusters, path);
  if (!s.directory) return;
  if (depth + 1 >= kMaxDepth) {
    problem("'" + path + "': directories nested deeper than " + std::to_string(kMaxDepth) + " not walked");
  } else {
    queue_.push_back({std::move(clusters), s.data_length, path, false, depth + 1});
  }
}

void Walk::take_deleted(const ExfatEntrySet& s, const std::string& path, const PendingDir& d) {
  if (v_.deleted.size() >= kMaxDeleted) {
    if (!deleted_capped_) problem("more than " + std::to_string(kMaxDeleted) + " deleted entries: the rest not listed");
    deleted_capped_ = true;
    return;
  }
  DeletedFile f;
  f.path = path;
  f.directory = s.directory;
  f.parent_deleted = d.deleted;
  f.times = s.times;
  v_.deleted.push_back(std::move(f));
  // Deleted directories are walked after every live one: only then is
  // it known which of their clusters live objects own now.
  if (s.directory && d.depth + 1 < kMaxDepth) pending_dirs_.push_back({s, path, d.depth + 1});
  sets_.push_back(s);
}

void Walk::queue_deleted_dirs() {
  // A deleted directory is read by the plan its files would get; one
  // whose clusters live objects own now holds something else.
  for (auto& pd : pending_dirs_) {
    Recovery rule;
    auto cl = recovery_clusters(pd.set, rule);
    bool reused = false;
    for (uint32_t c : cl) reused = reused || cl_.in_use(c) || marked(owned_, c);
    if (!cl.empty() && !reused) queue_.push_back({std::move(cl), pd.set.data_length, pd.path, true, pd.depth});
  }
  pending_dirs_.clear();
}

void Walk::maps() {
  v_.allocated.add(b_.offset, b_.offset + b_.heap_offset);
  uint64_t run_begin = 0;
  bool run_used = false;
  const uint64_t end = uint64_t(b_.cluster_count) + 2;
  for (uint64_t c = 2; c <= end; ++c) {
    const bool used = c < end && (cl_.in_use(c) || marked(owned_, c));
    if (c == 2) {
      run_begin = 2;
      run_used = used;
      continue;
    }
    if (c == end || used != run_used) {
      (run_used ? v_.allocated : v_.free).add(b_.cluster_at(run_begin), b_.cluster_at(c));
      run_begin = c;
      run_used = used;
    }
  }
  v_.allocated.normalize();
  v_.free.normalize();
}

}  // namespace

bool probe_exfat(Reader& reader, uint64_t offset, uint64_t length) {
  try {
    return looks_like_exfat(reader, offset, length);
  } catch (const Error&) {
    return false;
  }
}

VolumeFiles read_exfat(Reader& reader, uint64_t offset, uint64_t length) {
  if (offset > reader.size() || length > reader.size() - offset) {
    corrupt(reader.path(), "exFAT volume at byte " + std::to_string(offset) + " (" + std::to_string(length) +
                               " bytes) lies past the end of the source");
  }
  const ExfatBoot boot = read_exfat_boot(reader, offset, length);
  VolumeFiles v;
  v.filesystem = "exfat";
  v.offset = offset;
  v.length = length;
  v.cluster_size = boot.cluster_size;
  v.data_offset = offset + boot.heap_offset;
  v.cluster_count = boot.cluster_count;
  Walk(reader, boot, v).run();
  return v;
}

}  // namespace blocksmith::fs
