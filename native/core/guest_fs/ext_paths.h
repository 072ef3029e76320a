// Names and paths of the deleted files of an ext2/3/4 filesystem
// (ext_deleted.cc gathers them): each name a directory block gives a
// deleted file or directory, kept with how new its source is, and the path
// rebuilt from the best name up through the live tree and the deleted
// directories. Paths are built on demand and cached per directory: a
// hostile tree's paths could not all be held.
//
// Bounded: name references per node capped (the newest kept), parent
// chains cut at loops and at kMaxDepth levels, paths longer than PATH_MAX
// given as lost+found/#N.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace blocksmith::fs {

// A file or directory: its inode number, with kEarlier set for the earlier
// incarnation of a number a live inode holds now.
using ExtNode = uint64_t;
constexpr ExtNode kEarlier = uint64_t(1) << 32;
constexpr uint32_t ino_of(ExtNode n) { return static_cast<uint32_t>(n); }

// A name for an inode: the directory that held it (0: unknown), and how new the source is.
struct NameRef {
  ExtNode parent = 0;
  std::string name;
  uint64_t rank = 0;
};

class ExtPaths {
 public:
  static constexpr uint32_t kRootIno = 2;

  // Live directory `ino`, named `name` in live directory `parent`; false
  // when it is known already (a second name, or a loop).
  bool add_live_dir(uint32_t ino, uint32_t parent, const std::string& name);
  // A deleted file or directory (a candidate): only these take names.
  void add_deleted(ExtNode node, bool directory);
  // Name `name` for `node` in directory `parent` from a source of rank `rank`.
  void add_name(ExtNode node, ExtNode parent, const std::string& name, uint64_t rank);
  // Directory `dir`'s ".." names `parent` in a source of rank `rank`: the newest source wins.
  void add_dotdot(ExtNode dir, ExtNode parent, uint64_t rank);
  // The path of deleted `node` from its best name ("lost+found/#N" when it
  // has none); `parent_deleted` set to whether a directory on the way is deleted.
  std::string path(ExtNode node, bool& parent_deleted);

 private:
  bool known_dir(ExtNode n) const;
  const NameRef* best_ref(ExtNode n) const;
  std::string dir_path(ExtNode dir, bool& deleted, std::unordered_set<ExtNode>& visiting, int depth);

  std::unordered_map<uint32_t, std::pair<uint32_t, std::string>> live_dirs_;  // inode -> (parent, name)
  std::unordered_map<ExtNode, bool> deleted_;                                 // candidate -> is a directory
  std::unordered_map<ExtNode, std::vector<NameRef>> refs_;
  std::unordered_map<ExtNode, std::pair<ExtNode, uint64_t>> dotdot_;  // directory -> (parent, rank)
  std::unordered_map<ExtNode, std::pair<std::string, bool>> paths_;   // directory -> (path, deleted on the way)
};

}  // namespace blocksmith::fs
