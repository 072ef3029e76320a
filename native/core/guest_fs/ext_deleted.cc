// read_ext_files (volume_files.h): the deleted files of an ext2/3/4
// filesystem, from its inodes and its jbd2 journal.
//
// 1. read_ext validates the filesystem and gives the free blocks (the
//    block bitmaps, cross-checked against the live inodes).
// 2. The journal (inode 8) is read as a history (jbd2.h).
// 3. Every inode the inode bitmap calls free (reserved inodes and the
//    never-used itable_unused tail excepted) is looked up in its copies,
//    newest first: the journal's copies of its inode-table block, then the
//    inode table. A delete zeroes the size and the block pointers / extents
//    in the inode (the kernel's ext4 driver does so for ext2 and ext3 too),
//    so on a journaled filesystem it is usually an older journal copy that
//    still describes the file (ext_inode_copy.h).
// 4. Its blocks are mapped (ext_block_map.h) through tree blocks taken from
//    the journal copy at or before the inode copy, else the disk (the
//    kernel leaves the indirect and extent blocks on disk as they were:
//    the delete's zeroing of them is dropped with the freed buffer).
//    A live inode's journal copies that describe another file (another
//    i_generation or creation time) are its earlier incarnation: a deleted
//    file or directory whose number the kernel handed to a new one (ext4
//    reuses the lowest free inode: the files written after an `rm -r` take
//    the numbers of the tree's directories and files). The map becomes the
//    file's byte ranges (ext_file_plan.h).
// 5. Names: every live directory's blocks (deleted entries in rec_len
//    slack survive on kernels before 5.14), deleted directories' blocks,
//    and every journal copy that parses as a directory block
//    (ext_dirents.h); joined to the inodes, newest source first, with the
//    parent a directory we know (a deleted directory's own ".." wins),
//    and rebuilt into paths (ext_paths.h).
//    A reused number names the earlier incarnation in copies older than the
//    live one's first copy (its birth), the live one from then on.
//
// Bounded: one pass over the inode tables and bitmaps, each journal copy
// read at most twice, directory blocks read at most once per source (and
// ext_paths.h's bounds on names and paths).
#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include "core/base/error.h"
#include "core/guest_fs/bytes.h"
#include "core/guest_fs/checksum.h"
#include "core/guest_fs/ext.h"
#include "core/guest_fs/ext_block_map.h"
#include "core/guest_fs/ext_dirents.h"
#include "core/guest_fs/ext_file_plan.h"
#include "core/guest_fs/ext_inode_copy.h"
#include "core/guest_fs/ext_paths.h"
#include "core/guest_fs/jbd2.h"
#include "core/guest_fs/volume_files.h"

namespace blocksmith::fs {
namespace {

constexpr size_t kMaxProblems = 100;
// Journal copies of one block looked at: the newest this many (a hostile
// log may name one block in every tag).
constexpr size_t kMaxCopiesPerItableBlock = 512, kMaxCopiesPerTreeBlock = 64;
constexpr uint64_t kDiskRank = UINT64_MAX;  // what the disk says is newer than any journal copy
constexpr uint32_t kRootIno = ExtPaths::kRootIno;

// A file or directory (ext_paths.h).
using Node = ExtNode;

// A free inode whose copy still describes a file or directory.
struct Candidate {
  uint32_t ino = 0;
  Node node = 0;
  bool reused = false;       // an earlier incarnation of its number (another file held it since)
  bool number_live = false;  // ... and a live file holds it now
  std::vector<uint8_t> raw;
  InodeFields f;
  CopyVerdict verdict = CopyVerdict::no;
  bool journal = false;
  uint32_t sequence = 0;
  BlockMap map;
  bool guessed = false;
  uint64_t tree_bytes_in_use = 0;  // tree blocks read from disk that a live file owns now
};

class ExtDeleted {
 public:
  ExtDeleted(Reader& r, uint64_t offset, uint64_t length) : r_(r), offset_(offset), length_(length) {}

  VolumeFiles run() {
    where_ = "the ext filesystem at byte " + std::to_string(offset_);
    ExtReadOptions opt;
    opt.where = where_;
    info_ = read_ext(r_, offset_, length_, opt);
    g_ = &info_.layout;
    end_ = offset_ + g_->blocks_count * g_->bs;
    read_seed();
    describe_volume();
    read_journal_history();
    read_inode_bitmaps();
    choose_copies();
    for (auto& c : cands_) map_candidate(c);
    walk_live_tree();
    read_deleted_directories();
    read_journal_directories();
    emit();
    return std::move(v_);
  }

 private:
  Reader& r_;
  uint64_t offset_, length_, end_ = 0;
  std::string where_;
  ExtInfo info_;
  const ExtLayout* g_ = nullptr;
  uint32_t seed_ = 0;
  VolumeFiles v_;
  JournalHistory j_;
  // The journal's revoked copies by block, newest first: a freed tree
  // block's last copies (the old ext3 driver zeroed indirect blocks on
  // disk; their copies from before the delete were revoked by it).
  std::unordered_map<uint64_t, std::vector<const JournalCopy*>> revoked_;
  std::vector<uint8_t> inode_free_;  // 1 bit per inode (bit ino-1): free and once used
  std::vector<Candidate> cands_;
  std::unordered_map<Node, size_t> cand_index_;
  // Reused numbers: the sequence rank from which the newest incarnation's
  // copies start (older copies, and names in them, are the earlier one's),
  // and whether that newest one is live.
  struct Birth {
    uint64_t rank;
    bool live;
  };
  std::unordered_map<uint32_t, Birth> birth_;
  // Names: the live directories, the names directory blocks give the
  // candidates, the paths built from them.
  ExtPaths names_;
  std::unordered_map<uint64_t, uint32_t> owner_;        // live directory block -> directory inode
  std::unordered_map<uint64_t, Node> deleted_owner_;    // deleted directory block -> directory
  uint64_t dir_blocks_read_ = 0;
  size_t problems_dropped_ = 0;

  void problem(const std::string& p) {
    if (v_.problems.size() < kMaxProblems) v_.problems.push_back(p);
    else ++problems_dropped_;
  }

  bool filetype() const { return g_->incompat & kIncompatFiletype; }

  void read_seed() {
    if (!g_->csum) return;
    auto sb = read_checked(r_, offset_ + 1024, 1024, end_, "ext superblock");
    seed_ = (g_->incompat & kIncompatCsumSeed) ? le32(sb.data() + 0x270) : crc32c_update(~0u, sb.data() + 0x68, 16);
  }

  // Free: what the bitmaps call free; allocated: the rest of the filesystem.
  void describe_volume() {
    v_.filesystem = info_.type;
    v_.label = info_.label;
    v_.offset = offset_;
    v_.length = length_;
    v_.cluster_size = g_->bs;
    v_.data_offset = offset_;
    v_.cluster_count = g_->blocks_count;
    uint64_t pos = offset_;
    for (const auto& f : info_.free) {
      v_.free.add(f.begin, f.end);
      v_.allocated.add(pos, f.begin);
      pos = f.end;
    }
    v_.allocated.add(pos, end_);
    v_.free.normalize();
    v_.allocated.normalize();
  }

  bool block_in_use(uint64_t block) const {
    const uint64_t at = offset_ + block * g_->bs;
    const ByteRange* f = v_.free.next(at);
    return !(f && f->begin <= at && at + g_->bs <= f->end);
  }

  // Where inode `ino` lies: its inode-table block and the offset in it.
  std::pair<uint64_t, uint32_t> inode_location(uint32_t ino) const {
    const uint32_t grp = (ino - 1) / g_->ipg, idx = (ino - 1) % g_->ipg;
    const uint64_t byte = static_cast<uint64_t>(idx) * g_->inode_size;
    return {g_->inode_table(grp) + byte / g_->bs, static_cast<uint32_t>(byte % g_->bs)};
  }

  std::vector<uint8_t> read_block(uint64_t block, const char* what) {
    return read_checked(r_, offset_ + block * g_->bs, g_->bs, end_, what);
  }

  std::vector<uint8_t> disk_inode(uint32_t ino) {
    auto [block, off] = inode_location(ino);
    return read_checked(r_, offset_ + block * g_->bs + off, g_->inode_size, end_, "inode");
  }

  uint64_t seq_rank(uint32_t seq) const { return static_cast<uint32_t>(seq - j_.oldest_sequence); }

  void read_journal_history() {
    const uint32_t jino = g_->named_inodes[0];
    if (!(g_->compat & kCompatHasJournal) || jino == 0) return;
    try {
      auto raw = disk_inode(jino);
      j_ = read_journal(r_, *g_, raw.data(), where_);
    } catch (const Error& e) {
      problem(std::string("journal not used: ") + e.what());
      j_ = JournalHistory{};
    }
    // What the journal reader skipped (a hostile or torn log): said in the
    // report, a few lines at most. The carve scope of an ext volume comes
    // from its bitmaps (scan_scope.cc), so these do not widen it.
    constexpr size_t kShown = 8;
    for (size_t i = 0; i < j_.problems.size() && i < kShown; ++i) problem("journal: " + j_.problems[i]);
    if (j_.problems.size() > kShown)
      problem("journal: " + std::to_string(j_.problems.size() - kShown) + " more problems not shown");
    for (const auto& c : j_.revoked_copies) {
      if (revoked_.size() > j_.revoked_copies.size()) break;
      revoked_[c.fs_block].push_back(&c);
    }
    for (auto& [block, v] : revoked_) {
      std::sort(v.begin(), v.end(), [this](const JournalCopy* a, const JournalCopy* b) {
        return seq_rank(a->sequence) > seq_rank(b->sequence);
      });
    }
    // What the journal reader skipped (j_.problems) says nothing about the
    // live filesystem or its free blocks: not a problem of the volume (a
    // non-empty `problems` makes carving fall back to scanning everything).
  }

  bool inode_is_free(uint32_t ino) const {
    return ino >= 1 && ino <= g_->inodes_count && (inode_free_[(ino - 1) / 8] >> ((ino - 1) % 8) & 1);
  }

  // The inode bitmaps (checksummed with metadata_csum): free inodes that
  // may have been used (not in an INODE_UNINIT group, not in the tail
  // itable_unused says was never used).
  void read_inode_bitmaps() {
    inode_free_.assign((static_cast<uint64_t>(g_->inodes_count) + 7) / 8, 0);
    for (uint32_t grp = 0; grp < g_->groups; ++grp) {
      if (g_->group_desc_csum() && (g_->group_flags(grp) & kBgInodeUninit)) continue;
      const uint64_t ib = g_->inode_bitmap(grp);
      if (ib < g_->first_data_block || ib >= g_->blocks_count) {
        problem("group " + std::to_string(grp) + ": inode bitmap outside the filesystem");
        continue;
      }
      auto bm = read_block(ib, "inode bitmap");
      if (g_->csum) {
        uint32_t c = crc32c_update(seed_, bm.data(), g_->ipg / 8);
        uint32_t want = le16(g_->desc(grp) + 0x1A);
        if (g_->desc_size >= 0x3C) want |= static_cast<uint32_t>(le16(g_->desc(grp) + 0x3A)) << 16;
        else c &= 0xFFFF;
        if (c != want) {
          problem("group " + std::to_string(grp) + ": bad inode bitmap checksum; its inodes are not listed");
          continue;
        }
      }
      uint32_t used = g_->ipg;
      if (g_->group_desc_csum()) used = g_->ipg - std::min(g_->ipg, g_->itable_unused(grp));
      for (uint32_t i = 0; i < used; ++i) {
        if (bm[i / 8] >> (i % 8) & 1) continue;
        const uint64_t ino = static_cast<uint64_t>(grp) * g_->ipg + i + 1;
        inode_free_[(ino - 1) / 8] |= static_cast<uint8_t>(1u << ((ino - 1) % 8));
      }
    }
  }

  bool named_inode(uint32_t ino) const {
    for (uint32_t n : g_->named_inodes) {
      if (n == ino) return true;
    }
    return false;
  }

  // Whether two copies of one inode describe the same file: a new inode
  // gets a new i_generation (random since Linux 2.6.x; a counter before)
  // and, on inodes large enough, a new creation time.
  bool same_incarnation(const InodeFields& a, const InodeFields& b) const {
    if (a.generation != b.generation) return false;
    if (a.times.created.known && b.times.created.known) {
      return a.times.created.seconds == b.times.created.seconds &&
             a.times.created.nanoseconds == b.times.created.nanoseconds;
    }
    return true;
  }

  void add_candidate(Candidate&& cand) {
    cand.f = inode_fields(cand.raw.data(), *g_);
    cand_index_[cand.node] = cands_.size();
    names_.add_deleted(cand.node, cand.f.directory);
    cands_.push_back(std::move(cand));
  }

  // Per inode-table block holding free inodes: its journal copies newest
  // first, then the block itself; each free inode takes the first copy
  // that still describes a file. Each live inode in a block the journal
  // holds copies of: the newest copy of an earlier incarnation that still
  // describes a file.
  void choose_copies() {
    const uint32_t per_block = g_->bs / g_->inode_size;
    std::vector<uint8_t> buf(g_->bs);
    for (uint32_t grp = 0; grp < g_->groups; ++grp) {
      for (uint64_t b = 0; b < g_->itable_blocks; ++b) {
        const uint64_t first_ino = static_cast<uint64_t>(grp) * g_->ipg + b * per_block + 1;
        const uint64_t block = g_->inode_table(grp) + b;
        const bool logged = j_.present && !j_.copies_of(block).empty();
        std::vector<uint32_t> wanted, live;
        for (uint32_t k = 0; k < per_block && first_ino + k <= static_cast<uint64_t>(grp + 1) * g_->ipg; ++k) {
          const uint32_t ino = static_cast<uint32_t>(first_ino + k);
          if (ino < g_->first_ino || named_inode(ino)) continue;
          if (inode_is_free(ino)) wanted.push_back(ino);
          else if (logged) live.push_back(ino);
        }
        if (wanted.empty() && live.empty()) continue;
        std::vector<std::pair<const JournalCopy*, std::vector<uint8_t>>> copies;
        if (logged) {
          for (const JournalCopy* c : j_.copies_of(block)) {
            if (copies.size() >= kMaxCopiesPerItableBlock) break;
            if (!read_copy(r_, j_, *c, buf.data())) continue;
            copies.emplace_back(c, buf);
          }
        }
        const auto disk = read_block(block, "inode table");
        for (uint32_t ino : wanted) {
          const uint32_t off = static_cast<uint32_t>((ino - first_ino) * g_->inode_size);
          Candidate cand;
          cand.ino = ino;
          cand.node = ino;
          size_t from = 0;
          for (; from < copies.size(); ++from) {
            const auto& [jc, bytes] = copies[from];
            CopyVerdict v = judge_copy(bytes.data() + off, *g_, ino, seed_);
            if (v == CopyVerdict::no) continue;
            cand.verdict = v;
            cand.journal = true;
            cand.sequence = jc->sequence;
            cand.raw.assign(bytes.begin() + off, bytes.begin() + off + g_->inode_size);
            break;
          }
          uint64_t birth = UINT64_MAX;
          if (cand.verdict == CopyVerdict::no) {
            from = 0;
            CopyVerdict v = judge_copy(disk.data() + off, *g_, ino, seed_);
            if (v == CopyVerdict::no) continue;
            cand.verdict = v;
            cand.raw.assign(disk.begin() + off, disk.begin() + off + g_->inode_size);
          } else {
            birth = seq_rank(cand.sequence);
            ++from;
          }
          const InodeFields newest = inode_fields(cand.raw.data(), *g_);
          add_candidate(std::move(cand));
          // The number may have held another file before this one.
          earlier_incarnation(ino, off, copies, newest, from, birth, false);
        }
        for (uint32_t ino : live) {
          const uint32_t off = static_cast<uint32_t>((ino - first_ino) * g_->inode_size);
          const InodeFields now = inode_fields(disk.data() + off, *g_);
          if ((!now.regular && !now.directory) || now.links == 0) continue;
          earlier_incarnation(ino, off, copies, now, 0, UINT64_MAX, true);
        }
      }
    }
  }

  // The newest journal copy of inode `ino` (at `off` in its block's
  // copies, from copies[from] on) that describes another file than
  // `newest` (the live inode, or the deleted one already chosen): that
  // number's earlier incarnation, a candidate of its own. `birth`: the
  // rank of the oldest copy known to be `newest`'s so far.
  void earlier_incarnation(uint32_t ino, uint32_t off,
                           const std::vector<std::pair<const JournalCopy*, std::vector<uint8_t>>>& copies,
                           const InodeFields& newest, size_t from, uint64_t birth, bool number_live) {
    Candidate cand;
    for (size_t i = from; i < copies.size(); ++i) {
      const auto& [jc, bytes] = copies[i];
      const uint8_t* p = bytes.data() + off;
      if (same_incarnation(inode_fields(p, *g_), newest)) {
        birth = seq_rank(jc->sequence);
        continue;
      }
      CopyVerdict v = judge_copy(p, *g_, ino, seed_);
      if (v == CopyVerdict::no) continue;
      cand.verdict = v;
      cand.journal = true;
      cand.sequence = jc->sequence;
      cand.raw.assign(p, p + g_->inode_size);
      break;
    }
    if (cand.verdict == CopyVerdict::no) return;
    cand.ino = ino;
    cand.node = ino | kEarlier;
    cand.reused = true;
    cand.number_live = number_live;
    birth_[ino] = {birth != UINT64_MAX ? birth : seq_rank(cand.sequence) + 1, number_live};
    add_candidate(std::move(cand));
  }

  // A tree block for a candidate's map: the newest journal copy not newer
  // than the inode copy, else the disk (the disk first for an inode-table
  // copy: it is newer than the journal's). A block of zeros is no tree
  // block (what a delete leaves where it cleared one).
  BlockFetch fetch_for(Candidate& c, std::set<uint64_t>& from_disk) {
    return [this, &c, &from_disk](uint64_t block, uint8_t* out) -> bool {
      if (block < g_->first_data_block || block >= g_->blocks_count) return false;
      auto nonzero = [&](const uint8_t* p) {
        for (uint32_t i = 0; i < g_->bs; ++i) {
          if (p[i]) return true;
        }
        return false;
      };
      auto from_journal = [&](bool any_sequence, bool revoked) {
        if (!j_.present) return false;
        size_t tried = 0;
        std::vector<const JournalCopy*> none;
        auto rv = revoked_.find(block);
        const auto& list = revoked ? (rv == revoked_.end() ? none : rv->second) : j_.copies_of(block);
        for (const JournalCopy* jc : list) {
          if (!any_sequence && seq_rank(jc->sequence) > seq_rank(c.sequence)) continue;
          if (++tried > kMaxCopiesPerTreeBlock) break;
          if (read_copy(r_, j_, *jc, out) && nonzero(out)) return true;
        }
        return false;
      };
      auto from_disk_block = [&]() {
        if (r_.read_at(out, g_->bs, offset_ + block * g_->bs) != g_->bs || !nonzero(out)) return false;
        from_disk.insert(block);
        return true;
      };
      if (c.journal) return from_journal(false, false) || from_disk_block() || from_journal(false, true);
      return from_disk_block() || from_journal(true, false) || from_journal(true, true);
    };
  }

  void map_candidate(Candidate& c) {
    if (c.verdict != CopyVerdict::file) return;
    const uint64_t nblocks = c.f.size / g_->bs + (c.f.size % g_->bs ? 1 : 0);
    std::set<uint64_t> from_disk;
    c.map = map_inode_blocks(c.raw.data(), *g_, fetch_for(c, from_disk), nblocks);
    for (uint64_t b : from_disk) {
      if (block_in_use(b)) c.tree_bytes_in_use += g_->bs;
    }
    if (c.map.problem.empty() || (c.f.flags & kExtentsFl) || c.f.directory) return;
    // ext3: the map ends at an indirect block that is gone (ext_file_plan.h).
    if (guess_indirect_runs(c.map, nblocks, g_->bs, g_->blocks_count)) c.guessed = true;
  }

  // Which incarnation number `ino` names in a source of rank `rank`: the
  // earlier one in a source older than the newest one's birth; with
  // `earlier` (a deleted entry, a deleted directory's freed block: names of
  // deleted files) also when the newest one is live.
  Node node_of(uint32_t ino, uint64_t rank, bool earlier) const {
    auto b = birth_.find(ino);
    if (b == birth_.end()) return ino;
    return (rank < b->second.rank || (earlier && b->second.live)) ? (ino | kEarlier) : ino;
  }

  // The names in directory block `d` of directory `dir` (0: unknown) from
  // a source of rank `rank` (`earlier`: see node_of).
  void add_block_names(const DirBlock& d, Node dir, uint64_t rank, bool earlier) {
    if (d.self != 0) {
      dir = node_of(d.self, rank, earlier);
      if (d.parent != 0) {
        names_.add_dotdot(dir, node_of(d.parent, rank, earlier), rank);
      }
    }
    for (const auto& e : d.entries) names_.add_name(node_of(e.inode, rank, earlier || e.deleted), dir, e.name, rank);
  }

  // The blocks of a directory inode (through the disk), logical order.
  std::vector<uint64_t> directory_blocks(const uint8_t* raw, const InodeFields& f) {
    const uint64_t nblocks = f.size / g_->bs + (f.size % g_->bs ? 1 : 0);
    BlockFetch disk = [this](uint64_t block, uint8_t* out) {
      return block >= g_->first_data_block && block < g_->blocks_count &&
             r_.read_at(out, g_->bs, offset_ + block * g_->bs) == g_->bs;
    };
    BlockMap m = map_inode_blocks(raw, *g_, disk, nblocks);
    std::vector<uint64_t> out;
    for (const auto& run : m.runs) {
      if (run.uninitialized) continue;
      for (uint64_t i = 0; i < run.count; ++i) out.push_back(run.physical + i);
    }
    return out;
  }

  // Live directories from the root: their paths, their blocks (owners for
  // journal copies), their names (deleted entries in the slack), and the
  // live counts.
  void walk_live_tree() {
    std::vector<uint32_t> queue{kRootIno};
    names_.add_live_dir(kRootIno, 0, "");
    for (size_t qi = 0; qi < queue.size(); ++qi) {
      const uint32_t dir = queue[qi];
      const auto raw = disk_inode(dir);
      const InodeFields f = inode_fields(raw.data(), *g_);
      if (!f.directory) {
        problem("inode " + std::to_string(dir) + " is named as a directory but is not one");
        continue;
      }
      for (uint64_t block : directory_blocks(raw.data(), f)) {
        if (++dir_blocks_read_ > g_->blocks_count) {
          problem("more directory blocks than the filesystem has: the walk stopped");
          return;
        }
        owner_.emplace(block, dir);
        const auto bytes = read_block(block, "directory block");
        const DirBlock d = parse_dir_block(bytes.data(), g_->bs, filetype(), g_->inodes_count);
        if (!d.valid) {
          problem("directory inode " + std::to_string(dir) + ": block " + std::to_string(block) + " is corrupt");
          continue;
        }
        for (const auto& e : d.entries) {
          if (e.deleted) {
            names_.add_name(node_of(e.inode, kDiskRank, true), dir, e.name, kDiskRank);
            continue;
          }
          if (inode_is_free(e.inode)) {  // a live entry to a free inode: a name, not a live file
            names_.add_name(e.inode, dir, e.name, kDiskRank);
            continue;
          }
          bool is_dir = e.file_type == 2;
          if (!filetype()) is_dir = inode_fields(disk_inode(e.inode).data(), *g_).directory;
          if (!is_dir) {
            ++v_.live_files;
          } else if (names_.add_live_dir(e.inode, dir, e.name)) {
            ++v_.live_directories;
            queue.push_back(e.inode);
          }
        }
      }
    }
  }

  // Deleted directories: their blocks are theirs (for journal copies), and
  // those still free hold their last entries.
  void read_deleted_directories() {
    for (const auto& c : cands_) {
      if (!c.f.directory || c.verdict != CopyVerdict::file) continue;
      for (const auto& run : c.map.runs) {
        for (uint64_t i = 0; i < run.count; ++i) {
          const uint64_t block = run.physical + i;
          if (++dir_blocks_read_ > g_->blocks_count) {
            problem("more directory blocks than the filesystem has: deleted directories not all read");
            return;
          }
          if (owner_.count(block) || !deleted_owner_.emplace(block, c.node).second || block_in_use(block)) continue;
          const auto bytes = read_block(block, "directory block");
          const DirBlock d = parse_dir_block(bytes.data(), g_->bs, filetype(), g_->inodes_count);
          // A freed block holds the directory's last entries, from before
          // any number in it was reused.
          if (d.valid && (d.self == 0 || d.self == c.ino)) add_block_names(d, c.node, kDiskRank, true);
        }
      }
    }
  }

  // Whose block `block` was in a source of rank `rank` (0: unknown): a live
  // directory's once it was born, before that a deleted directory's whose
  // map holds it, else unknown.
  Node owner_at(uint64_t block, uint64_t rank) const {
    auto live = owner_.find(block);
    if (live != owner_.end()) {
      auto b = birth_.find(live->second);
      if (b == birth_.end() || rank >= b->second.rank) return live->second;
    }
    auto dead = deleted_owner_.find(block);
    if (dead != deleted_owner_.end()) return dead->second;
    return 0;
  }

  // Every journal copy that is a directory block: older versions of live
  // and deleted directories, with the names deletes have wiped since.
  void read_journal_directories() {
    if (!j_.present) return;
    std::vector<uint8_t> buf(g_->bs);
    // Revoked copies too: a deleted directory's blocks are revoked when
    // freed, and their last copies hold the names of what was in it.
    std::vector<const JournalCopy*> all;
    for (const auto& jc : j_.copies) all.push_back(&jc);
    for (const auto& jc : j_.revoked_copies) all.push_back(&jc);
    for (const JournalCopy* p : all) {
      const JournalCopy& jc = *p;
      if (!read_copy(r_, j_, jc, buf.data())) continue;
      const DirBlock d = parse_dir_block(buf.data(), g_->bs, filetype(), g_->inodes_count);
      if (!d.valid || d.index) continue;
      add_block_names(d, owner_at(jc.fs_block, seq_rank(jc.sequence)), seq_rank(jc.sequence), false);
    }
  }

  void emit() {
    std::vector<uint64_t> ranks;
    for (const auto& c : cands_) {
      DeletedFile f;
      f.inode = c.ino;
      f.directory = c.f.directory;
      f.times = c.f.times;
      f.found_in = c.journal ? "journal transaction " + std::to_string(c.sequence) : "the inode table";
      if (c.reused) f.found_in += c.number_live ? " (the inode is a new file's now)" : " (the inode held another file since)";
      f.rule = c.guessed ? Recovery::indirect_guess : (c.f.flags & kExtentsFl) ? Recovery::extent_tree : Recovery::block_map;
      f.path = names_.path(c.node, f.parent_deleted);
      if (c.f.directory) {
        f.size = 0;
      } else if (c.verdict == CopyVerdict::empty) {
        f.status = DeletedStatus::empty;
      } else {
        f.size = c.f.size;
        plan_ext_file(c.map, c.guessed, c.f.size, c.tree_bytes_in_use, g_->bs, offset_, v_.free, f);
      }
      v_.deleted.push_back(std::move(f));
      ranks.push_back(c.journal ? seq_rank(c.sequence) : kDiskRank);
    }
    // An inode deleted long ago whose blocks another, later deleted file
    // took: its content must not be presented as recovered.
    if (!mark_claimed_by_newer(v_.deleted, ranks, g_->bs, offset_)) {
      problem("too many deleted files claim the same blocks: not all overlaps were checked");
    }
    std::sort(v_.deleted.begin(), v_.deleted.end(), [](const DeletedFile& a, const DeletedFile& b) {
      return a.path != b.path ? a.path < b.path : a.inode < b.inode;
    });
    if (problems_dropped_ > 0) v_.problems.push_back("... and " + std::to_string(problems_dropped_) + " more problems");
  }
};

}  // namespace

VolumeFiles read_ext_files(Reader& reader, uint64_t offset, uint64_t length) {
  return ExtDeleted(reader, offset, length).run();
}

}  // namespace blocksmith::fs
