#include "core/guest_fs/ext_paths.h"

#include <algorithm>
#include <tuple>

namespace blocksmith::fs {
namespace {

constexpr size_t kMaxRefsPerInode = 32;
constexpr int kMaxDepth = 4096;
// Paths longer than this (PATH_MAX) are not rebuilt: lost+found/#N.
constexpr size_t kMaxPath = 4096;

}  // namespace

bool ExtPaths::add_live_dir(uint32_t ino, uint32_t parent, const std::string& name) {
  return live_dirs_.emplace(ino, std::make_pair(parent, name)).second;
}

void ExtPaths::add_deleted(ExtNode node, bool directory) { deleted_[node] = directory; }

void ExtPaths::add_name(ExtNode node, ExtNode parent, const std::string& name, uint64_t rank) {
  if (deleted_.find(node) == deleted_.end() || node == parent) return;
  auto& v = refs_[node];
  for (auto& r : v) {
    if (r.parent == parent && r.name == name) {
      r.rank = std::max(r.rank, rank);
      return;
    }
  }
  // Full: the oldest name gives way to a newer one.
  if (v.size() >= kMaxRefsPerInode) {
    auto oldest = std::min_element(v.begin(), v.end(), [](const NameRef& a, const NameRef& b) { return a.rank < b.rank; });
    if (oldest->rank >= rank) return;
    *oldest = {parent, name, rank};
    return;
  }
  v.push_back({parent, name, rank});
}

void ExtPaths::add_dotdot(ExtNode dir, ExtNode parent, uint64_t rank) {
  auto& dd = dotdot_[dir];
  if (dd.first == 0 || rank >= dd.second) dd = {parent, rank};
}

bool ExtPaths::known_dir(ExtNode n) const {
  if (n < kEarlier && live_dirs_.count(ino_of(n))) return true;
  auto it = deleted_.find(n);
  return it != deleted_.end() && it->second;
}

// The best name of a candidate: a parent we know as a directory first,
// for a directory the parent its own ".." names, then the newest.
const NameRef* ExtPaths::best_ref(ExtNode n) const {
  auto it = refs_.find(n);
  if (it == refs_.end() || it->second.empty()) return nullptr;
  auto dd = dotdot_.find(n);
  const NameRef* best = nullptr;
  auto score = [&](const NameRef& r) {
    int s = 0;
    if (r.parent != 0 && known_dir(r.parent)) s += 2;
    if (dd != dotdot_.end() && dd->second.first == r.parent) s += 1;
    return s;
  };
  for (const auto& r : it->second) {
    if (!best || score(r) > score(*best) || (score(r) == score(*best) && r.rank > best->rank)) best = &r;
  }
  return best;
}

// Path of directory `dir` ("" for the root), and whether it or a parent
// of it is deleted; "lost+found/#N" when it cannot be named.
std::string ExtPaths::dir_path(ExtNode dir, bool& deleted, std::unordered_set<ExtNode>& visiting, int depth) {
  if (dir == kRootIno) return "";
  if (dir == 0) return "lost+found";  // a name from a journal copy of a block no directory owns now
  auto cached = paths_.find(dir);
  if (cached != paths_.end()) {
    deleted = deleted || cached->second.second;
    return cached->second.first;
  }
  const std::string lost = "lost+found/#" + std::to_string(ino_of(dir));
  ExtNode parent = 0;
  std::string name;
  bool here_deleted = false;
  auto live = dir < kEarlier ? live_dirs_.find(ino_of(dir)) : live_dirs_.end();
  if (live != live_dirs_.end()) {
    std::tie(parent, name) = live->second;
  } else {
    auto ci = deleted_.find(dir);
    if (ci == deleted_.end() || !ci->second) return lost;
    here_deleted = true;
    const NameRef* r = best_ref(dir);
    if (!r) {
      deleted = true;
      return lost;
    }
    parent = r->parent;
    name = r->name;
  }
  if (depth >= kMaxDepth || !visiting.insert(dir).second) {
    deleted = deleted || here_deleted;
    return lost;
  }
  bool above_deleted = false;
  const std::string up = dir_path(parent, above_deleted, visiting, depth + 1);
  visiting.erase(dir);
  std::string path = up.empty() ? name : up + "/" + name;
  if (path.size() > kMaxPath) path = lost;
  paths_[dir] = {path, here_deleted || above_deleted};
  deleted = deleted || here_deleted || above_deleted;
  return path;
}

std::string ExtPaths::path(ExtNode node, bool& parent_deleted) {
  const NameRef* r = best_ref(node);
  if (!r) return "lost+found/#" + std::to_string(ino_of(node));
  bool deleted = false;
  std::unordered_set<ExtNode> visiting{node};
  const std::string parent = dir_path(r->parent, deleted, visiting, 0);
  parent_deleted = deleted;
  return parent.empty() ? r->name : parent + "/" + r->name;
}

}  // namespace blocksmith::fs
