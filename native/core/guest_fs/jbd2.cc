#include "core/guest_fs/jbd2.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <unordered_map>

#include "core/base/error.h"
#include "core/guest_fs/bytes.h"
#include "core/guest_fs/checksum.h"

namespace blocksmith::fs {
namespace {

// The on-disk format (big-endian), as the kernel's include/linux/jbd2.h and
// e2fsprogs' kernel-jbd.h define it.
constexpr uint32_t kMagic = 0xC03B3998;
constexpr uint32_t kDescriptor = 1, kCommit = 2, kSuperV1 = 3, kSuperV2 = 4, kRevoke = 5;
constexpr uint32_t kInc64bit = 0x2, kIncCsumV2 = 0x8, kIncCsumV3 = 0x10, kIncFastCommit = 0x20;
constexpr uint32_t kIncKnown = 0x1 | kInc64bit | 0x4 | kIncCsumV2 | kIncCsumV3 | kIncFastCommit;
constexpr uint16_t kFlagEscape = 0x1, kFlagSameUuid = 0x2, kFlagLastTag = 0x8;
constexpr uint32_t kDefaultFastCommitBlocks = 256;  // JBD2_DEFAULT_FAST_COMMIT_BLOCKS
constexpr uint64_t kReadChunk = 1 << 20;
constexpr size_t kMaxProblems = 50;

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t be32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | p[3];
}
uint64_t be64(const uint8_t* p) { return (static_cast<uint64_t>(be32(p)) << 32) | be32(p + 4); }

// What a log block is, as the scan found it.
enum : uint8_t { kData = 0, kUnreadable = 0xFF };  // else the jbd2 block type

struct Tag {
  uint64_t block;
  bool escaped;
};

// A journal block with the magic: a descriptor, commit or revoke block.
struct Node {
  uint8_t type = 0;
  uint32_t seq = 0;
  bool broken = false;          // unusable: the transaction it is in does not count
  std::vector<Tag> tags;        // descriptor
  std::vector<uint64_t> revokes;  // revoke block
  uint64_t next = UINT64_MAX;   // log block of the next block of the same transaction (descriptor, revoke)
};

class Journal {
 public:
  Journal(Reader& r, const ExtLayout& g, const uint8_t* inode, const std::string& where)
      : r_(r), g_(g), inode_(inode), where_(where) {}

  JournalHistory run() {
    if (!(g_.compat & kCompatHasJournal) || g_.named_inodes[0] == 0) return h_;  // none, or an external one
    map_log();
    read_superblock();
    if (!h_.present || unknown_) return std::move(h_);
    scan();
    link();
    transactions();
    return std::move(h_);
  }

 private:
  [[noreturn]] void bad(const std::string& what) { corrupt(r_.path(), where_ + ": the journal " + what); }

  void problem(const std::string& what) {
    if (h_.problems.size() < kMaxProblems) h_.problems.push_back(what);
    else if (h_.problems.size() == kMaxProblems) h_.problems.push_back("more problems in the journal not listed");
  }

  // The journal inode's blocks (on disk: the journal is live metadata).
  void map_log() {
    const uint64_t size = le32(inode_ + 0x4) | (static_cast<uint64_t>(le32(inode_ + 0x6C)) << 32);
    const uint64_t blocks = size / g_.bs;
    if (blocks < 2) bad("inode has no log (" + std::to_string(size) + " bytes)");
    if (blocks > g_.blocks_count) {
      bad("inode claims " + std::to_string(blocks) + " blocks, more than the filesystem's " +
          std::to_string(g_.blocks_count));
    }
    const uint64_t end = g_.offset + g_.blocks_count * g_.bs;
    BlockFetch fetch = [this, end](uint64_t block, uint8_t* out) {
      const uint64_t off = g_.offset + block * g_.bs;
      return off + g_.bs <= end && r_.read_at(out, g_.bs, off) == g_.bs;
    };
    map_ = map_inode_blocks(inode_, g_, fetch, blocks);
    if (!map_.problem.empty()) problem("the journal inode's map: " + map_.problem);
    mapped_ = map_.known_blocks;
  }

  // Filesystem block of log block `pos`, or UINT64_MAX when the inode does not map it.
  uint64_t phys(uint64_t pos) const {
    const auto& runs = map_.runs;
    auto it = std::upper_bound(runs.begin(), runs.end(), pos, [](uint64_t v, const BlockRun& r) { return v < r.logical; });
    if (it == runs.begin()) return UINT64_MAX;
    --it;
    if (pos >= it->logical + it->count || it->uninitialized) return UINT64_MAX;
    return it->physical + (pos - it->logical);
  }

  void read_superblock() {
    const uint64_t b = phys(0);
    if (b == UINT64_MAX) bad("superblock (log block 0) is not mapped by the journal inode");
    uint8_t sb[1024];
    if (r_.read_at(sb, sizeof sb, g_.offset + b * g_.bs) != sizeof sb) bad("superblock at block " + std::to_string(b) + " cannot be read (truncated image)");
    if (be32(sb) != kMagic) bad("superblock at block " + std::to_string(b) + " has no jbd2 magic");
    const uint32_t type = be32(sb + 4);
    if (type != kSuperV1 && type != kSuperV2) bad("superblock has block type " + std::to_string(type) + ", not 3 or 4");
    const uint32_t bs = be32(sb + 0xC), maxlen = be32(sb + 0x10), first = be32(sb + 0x14);
    if (bs != g_.bs) {
      bad("block size is " + std::to_string(bs) + ", not the filesystem's " + std::to_string(g_.bs));
    }
    if (type == kSuperV2) incompat_ = be32(sb + 0x28);
    if (incompat_ & (kIncCsumV2 | kIncCsumV3)) {
      uint8_t copy[1024];
      std::memcpy(copy, sb, sizeof copy);
      std::memset(copy + 0xFC, 0, 4);
      if (be32(sb + 0xFC) != crc32c_update(0xFFFFFFFF, copy, sizeof copy)) bad("superblock's checksum does not match");
    }
    uint64_t end = maxlen;
    if (incompat_ & kIncFastCommit) {
      const uint32_t fc = be32(sb + 0x54) ? be32(sb + 0x54) : kDefaultFastCommitBlocks;
      end = maxlen > fc ? maxlen - fc : 0;
    }
    if (first < 1 || end <= static_cast<uint64_t>(first) + 1 || maxlen > mapped_) {
      bad("log (s_first " + std::to_string(first) + ", s_maxlen " + std::to_string(maxlen) +
          (end != maxlen ? ", fast-commit blocks after " + std::to_string(end) : std::string()) +
          ") lies outside its inode's " + std::to_string(mapped_) + " blocks");
    }
    h_.present = true;
    h_.block_size = bs;
    h_.log_blocks = maxlen;
    first_ = first;
    end_ = end;
    sequence_ = be32(sb + 0x18);
    clean_ = be32(sb + 0x1C) == 0;
    if (incompat_ & ~kIncKnown) {
      char hex[16];
      std::snprintf(hex, sizeof hex, "0x%x", incompat_ & ~kIncKnown);
      problem(std::string("the journal has unknown incompatible features (") + hex + "); its log is not read");
      unknown_ = true;
      return;
    }
    const bool csum3 = incompat_ & kIncCsumV3, csum2 = incompat_ & kIncCsumV2;
    csum_ = csum2 || csum3;
    wide_ = incompat_ & kInc64bit;
    tag_bytes_ = csum3 ? 16 : 8 + (wide_ ? 4 : 0) + (csum2 ? 2 : 0);
    seed_ = crc32c_update(0xFFFFFFFF, sb + 0x30, 16);
  }

  uint64_t advance(uint64_t pos, uint64_t n) const {
    const uint64_t len = end_ - first_;
    return first_ + (pos - first_ + n % len) % len;
  }

  std::string at(uint64_t pos, const Node& n) const {
    return "at log block " + std::to_string(pos) + " (transaction " + std::to_string(n.seq) + ")";
  }

  // Reads the whole log in pieces of consecutive blocks and notes every
  // block that holds the jbd2 magic with a known type; parses those.
  void scan() {
    const uint64_t len = end_ - first_;
    kind_.assign(len, kData);
    std::vector<uint8_t> buf;
    const uint64_t max_run = std::max<uint64_t>(kReadChunk / g_.bs, 1);
    bool short_read = false;
    for (uint64_t pos = first_; pos < end_;) {
      const uint64_t b = phys(pos);
      if (b == UINT64_MAX) {
        kind_[pos - first_] = kUnreadable;
        ++pos;
        continue;
      }
      uint64_t n = 1;
      while (pos + n < end_ && n < max_run && phys(pos + n) == b + n) ++n;
      buf.resize(n * g_.bs);
      const size_t got = r_.read_at(buf.data(), buf.size(), g_.offset + b * g_.bs);
      for (uint64_t i = 0; i < n; ++i) {
        if ((i + 1) * g_.bs > got) {
          kind_[pos + i - first_] = kUnreadable;
          short_read = true;
          continue;
        }
        block(pos + i, buf.data() + i * g_.bs);
      }
      pos += n;
    }
    if (short_read) problem("the log runs past the end of the image (truncated)");
  }

  bool csum_ok(const uint8_t* p, size_t field) const {
    std::vector<uint8_t> copy(p, p + g_.bs);
    std::memset(copy.data() + field, 0, 4);
    return be32(p + field) == crc32c_update(seed_, copy.data(), copy.size());
  }

  void block(uint64_t pos, const uint8_t* p) {
    parse(pos, p);
    auto it = nodes_.find(pos);
    if (it != nodes_.end() && it->second.broken && it->second.type != kCommit) tainted_.insert(it->second.seq);
  }

  // A block with the jbd2 magic and a known type becomes a node; its
  // checksum is checked, then its type's fields are read.
  void parse(uint64_t pos, const uint8_t* p) {
    if (be32(p) != kMagic) return;
    const uint32_t type = be32(p + 4);
    if (type != kDescriptor && type != kCommit && type != kRevoke) return;
    kind_[pos - first_] = static_cast<uint8_t>(type);
    Node& n = nodes_[pos];
    n.type = static_cast<uint8_t>(type);
    n.seq = be32(p + 8);
    if (type == kCommit) {
      if (csum_ && !csum_ok(p, 16)) {
        n.broken = true;
        problem("the commit block " + at(pos, n) + " fails its checksum");
      }
      return;
    }
    if (csum_ && !csum_ok(p, g_.bs - 4)) {
      n.broken = true;
      problem(std::string(type == kDescriptor ? "the descriptor block " : "the revoke block ") + at(pos, n) +
              " fails its checksum");
      return;
    }
    if (type == kRevoke) parse_revoke(pos, p, n);
    else parse_descriptor(pos, p, n);
  }

  // A revoke block's records: the filesystem blocks it revokes.
  void parse_revoke(uint64_t pos, const uint8_t* p, Node& n) {
    const size_t tail = csum_ ? 4 : 0;
    const uint32_t count = be32(p + 12);
    const uint32_t rec = wide_ ? 8 : 4;
    if (count < 16 || count > g_.bs - tail) {
      n.broken = true;
      problem("the revoke block " + at(pos, n) + " claims " + std::to_string(count) + " bytes of records, more than its block holds");
      return;
    }
    for (uint32_t off = 16; off + rec <= count; off += rec) n.revokes.push_back(wide_ ? be64(p + off) : be32(p + off));
    n.next = advance(pos, 1);
  }

  // A descriptor block's tags until the one with LAST_TAG; each without
  // SAME_UUID is followed by the 16-byte UUID.
  void parse_descriptor(uint64_t pos, const uint8_t* p, Node& n) {
    const size_t tail = csum_ ? 4 : 0;
    const size_t size = g_.bs - tail;
    bool last = false;
    for (size_t off = 12; off + tag_bytes_ <= size;) {
      const uint8_t* t = p + off;
      const uint16_t flags = be16(t + 6);  // v2's be16 t_flags; the low half of v3's be32
      uint64_t fs_block = be32(t);
      if (wide_) fs_block |= static_cast<uint64_t>(be32(t + 8)) << 32;
      if (fs_block >= g_.blocks_count) {
        n.broken = true;
        problem("the descriptor block " + at(pos, n) + " names block " + std::to_string(fs_block) +
                ", outside the filesystem's " + std::to_string(g_.blocks_count) + " blocks");
        return;
      }
      n.tags.push_back({fs_block, (flags & kFlagEscape) != 0});
      off += tag_bytes_ + ((flags & kFlagSameUuid) ? 0 : 16);
      if (flags & kFlagLastTag) {
        last = true;
        break;
      }
    }
    if (!last) {
      n.broken = true;
      problem("the descriptor block " + at(pos, n) + " has tags past the end of its block (no last tag)");
      return;
    }
    if (n.tags.size() + 1 >= end_ - first_) {
      n.broken = true;
      problem("the descriptor block " + at(pos, n) + " names " + std::to_string(n.tags.size()) +
              " copies, more than the log holds");
      return;
    }
    // Its copies must be in the log as data (not unreadable, not journal
    // blocks): checked when the transaction is walked, once all is scanned.
    n.next = advance(pos, n.tags.size() + 1);
  }

  // A descriptor's copies are all readable data blocks (escaped ones hold
  // no magic either), else newer journal blocks overwrote them.
  bool copies_there(uint64_t pos, const Node& n) const {
    for (size_t i = 0; i < n.tags.size(); ++i) {
      if (kind_[advance(pos, 1 + i) - first_] != kData) return false;
    }
    return true;
  }

  // Which nodes follow which: a descriptor or revoke block points at the
  // next block of its transaction when that is a journal block of the same
  // sequence.
  void link() {
    for (auto& [pos, n] : nodes_) {
      if (n.broken || n.type == kCommit) continue;
      auto it = nodes_.find(n.next);
      if (it == nodes_.end() || it->second.seq != n.seq || (n.type == kDescriptor && !copies_there(pos, n))) {
        n.next = UINT64_MAX;
        continue;
      }
      ++preds_[n.next];
    }
  }

  struct Txn {
    uint32_t seq;
    uint64_t start;  // log block of its first block
    std::vector<uint64_t> blocks;  // its descriptor and revoke blocks, in order
  };

  // The committed transactions, their copies sorted, revokes applied.
  void transactions() {
    const std::vector<Txn> found = committed();
    report_cycles();
    const std::vector<const Txn*> good = trusted(found);
    record_copies(good, revoked_by(good));
  }

  // From each transaction's first block along its links: those that reach
  // their commit block.
  std::vector<Txn> committed() {
    std::vector<Txn> found;
    std::unordered_map<uint64_t, bool> visited;
    for (auto& [pos, n] : nodes_) {
      if (preds_.count(pos)) continue;  // not a transaction's first block
      Txn t{n.seq, pos, {}};
      uint64_t p = pos;
      bool committed = false;
      while (true) {
        if (visited.count(p)) {
          problem("the transaction " + std::to_string(t.seq) + " starting at log block " + std::to_string(pos) +
                  " runs into log block " + std::to_string(p) + ", already read; ignored");
          break;
        }
        visited[p] = true;
        const Node& c = nodes_.at(p);
        if (c.broken) break;
        if (tainted_.count(c.seq)) break;  // a block of it is unusable: the rest is not trusted either
        if (c.type == kCommit) {
          committed = true;
          break;
        }
        t.blocks.push_back(p);
        if (c.next == UINT64_MAX) break;  // no commit: unfinished or overwritten by newer transactions
        p = c.next;
      }
      if (committed) found.push_back(std::move(t));
    }
    return found;
  }

  // Blocks that link to each other but that no first block reaches: a cycle.
  void report_cycles() {
    std::unordered_map<uint64_t, bool> reached;
    for (auto& [pos, n] : nodes_) {
      if (preds_.count(pos)) continue;
      for (uint64_t p = pos; p != UINT64_MAX && !reached.count(p); p = nodes_.at(p).next) reached[p] = true;
    }
    for (auto& [pos, n] : nodes_) {
      if (reached.count(pos) || !preds_.count(pos)) continue;
      problem("the journal blocks from log block " + std::to_string(pos) + " (transaction " + std::to_string(n.seq) +
              ") form a cycle; ignored");
      for (uint64_t p = pos; p != UINT64_MAX && !reached.count(p); p = nodes_.at(p).next) reached[p] = true;
    }
  }

  // A sequence found twice: neither can be trusted. A sequence the
  // journal has not reached yet is left over from an earlier journal.
  std::vector<const Txn*> trusted(const std::vector<Txn>& found) {
    std::map<uint32_t, int> seen;
    for (const auto& t : found) ++seen[t.seq];
    std::vector<const Txn*> good;
    const uint64_t len = end_ - first_;
    for (const auto& t : found) {
      const int64_t k = key(t.seq);
      if (seen[t.seq] > 1) {
        problem("the transaction " + std::to_string(t.seq) + " is in the log twice (one at log block " +
                std::to_string(t.start) + "); ignored");
      } else if (clean_ ? k >= 0 : k >= static_cast<int64_t>(len)) {
        problem("the transaction " + std::to_string(t.seq) + " at log block " + std::to_string(t.start) +
                " is newer than the journal's next, " + std::to_string(sequence_) + " (left from an earlier journal); ignored");
      } else {
        good.push_back(&t);
      }
    }
    return good;
  }

  // Revoke records: a block revoked by transaction R is not to be replayed
  // from any transaction up to R (the kernel's jbd2_journal_test_revoke).
  // Block -> key of the newest transaction revoking it.
  std::unordered_map<uint64_t, int64_t> revoked_by(const std::vector<const Txn*>& good) const {
    std::unordered_map<uint64_t, int64_t> revoked;
    for (const Txn* t : good) {
      for (uint64_t p : t->blocks) {
        for (uint64_t b : nodes_.at(p).revokes) {
          auto [it, fresh] = revoked.emplace(b, key(t->seq));
          if (!fresh) it->second = std::max(it->second, key(t->seq));
        }
      }
    }
    return revoked;
  }

  // Every copy the good transactions logged, into the history's copies or
  // (revoked by the same or a later transaction) its revoked copies; then
  // both sorted by block, newest first.
  void record_copies(const std::vector<const Txn*>& good, const std::unordered_map<uint64_t, int64_t>& revoked) {
    for (const Txn* t : good) {
      const int64_t k = key(t->seq);
      if (h_.transactions == 0 || k < key(h_.oldest_sequence)) h_.oldest_sequence = t->seq;
      if (h_.transactions == 0 || k > key(h_.newest_sequence)) h_.newest_sequence = t->seq;
      ++h_.transactions;
      for (uint64_t p : t->blocks) {
        const Node& n = nodes_.at(p);
        for (size_t i = 0; i < n.tags.size(); ++i) {
          const uint64_t at = advance(p, 1 + i);
          JournalCopy c{n.tags[i].block, t->seq, g_.offset + phys(at) * g_.bs, n.tags[i].escaped};
          auto r = revoked.find(c.fs_block);
          if (r != revoked.end() && r->second >= k) {
            ++h_.revoked;
            h_.revoked_copies.push_back(c);
          } else {
            h_.copies.push_back(c);
          }
        }
      }
    }
    auto order = [this](const JournalCopy& a, const JournalCopy& b) {
      if (a.fs_block != b.fs_block) return a.fs_block < b.fs_block;
      if (a.sequence != b.sequence) return key(a.sequence) > key(b.sequence);
      return a.source_offset > b.source_offset;
    };
    std::sort(h_.copies.begin(), h_.copies.end(), order);
    std::sort(h_.revoked_copies.begin(), h_.revoked_copies.end(), order);
  }

  // Sequence numbers as distances from the journal's next one (modulo 2^32):
  // older transactions are negative.
  int64_t key(uint32_t seq) const { return static_cast<int32_t>(seq - sequence_); }

  Reader& r_;
  const ExtLayout& g_;
  const uint8_t* inode_;
  const std::string& where_;
  JournalHistory h_;
  BlockMap map_;
  uint64_t mapped_ = 0, first_ = 0, end_ = 0;
  uint32_t sequence_ = 0, incompat_ = 0, seed_ = 0;
  size_t tag_bytes_ = 8;
  bool csum_ = false, wide_ = false, clean_ = true, unknown_ = false;
  std::vector<uint8_t> kind_;  // per log block from first_: kData, kUnreadable or the jbd2 type
  std::map<uint64_t, Node> nodes_;
  std::unordered_map<uint64_t, int> preds_;
  std::set<uint32_t> tainted_;  // sequences with an unusable descriptor or revoke block
};

}  // namespace

std::vector<const JournalCopy*> JournalHistory::copies_of(uint64_t block) const {
  std::vector<const JournalCopy*> out;
  auto it = std::lower_bound(copies.begin(), copies.end(), block,
                             [](const JournalCopy& c, uint64_t b) { return c.fs_block < b; });
  for (; it != copies.end() && it->fs_block == block; ++it) out.push_back(&*it);
  return out;
}

bool read_copy(Reader& reader, const JournalHistory& journal, const JournalCopy& c, uint8_t* out) {
  if (journal.block_size == 0 || reader.read_at(out, journal.block_size, c.source_offset) != journal.block_size) {
    return false;
  }
  if (c.escaped) {
    out[0] = 0xC0, out[1] = 0x3B, out[2] = 0x39, out[3] = 0x98;
  }
  return true;
}

JournalHistory read_journal(Reader& reader, const ExtLayout& layout, const uint8_t* journal_inode,
                            const std::string& where) {
  return Journal(reader, layout, journal_inode, where).run();
}

}  // namespace blocksmith::fs
