#include "core/guest_fs/ext_file_plan.h"

#include <algorithm>

namespace blocksmith::fs {
namespace {

// ext3's allocator put each indirect block right before the data it
// maps: how many tree blocks precede logical block `l` on disk.
uint64_t tree_blocks_before(uint64_t l, uint32_t bs) {
  const uint64_t ppb = bs / 4, ppb2 = ppb * ppb;
  if (l == 12) return 1;
  if (l < 12 + ppb) return 0;
  uint64_t d = l - 12 - ppb;
  if (d == 0) return 2;
  if (d < ppb2) return d % ppb == 0 ? 1 : 0;
  d -= ppb2;
  if (d == 0) return 3;
  if (d % ppb2 == 0) return 2;
  return d % ppb == 0 ? 1 : 0;
}

// Bytes of [begin, end) (source offsets) that no free range covers.
uint64_t bytes_in_use(const FreeMap& free, uint64_t begin, uint64_t end) {
  uint64_t used = end - begin, pos = begin;
  for (const ByteRange* f = free.next(pos); f && f->begin < end; f = free.next(pos)) {
    used -= std::min(end, f->end) - std::max(begin, f->begin);
    pos = f->end;
  }
  return used;
}

}  // namespace

bool guess_indirect_runs(BlockMap& map, uint64_t nblocks, uint32_t bs, uint64_t blocks_count) {
  const uint64_t known = map.known_blocks;
  if (known == 0 || known >= nblocks || map.runs.empty()) return false;
  const BlockRun& last = map.runs.back();
  if (last.logical + last.count != known || last.uninitialized) return false;
  std::vector<BlockRun> guessed;
  uint64_t cur = last.physical + last.count - 1;
  for (uint64_t l = known; l < nblocks; ++l) {
    cur += 1 + tree_blocks_before(l, bs);
    if (cur >= blocks_count) return false;  // runs off the filesystem: no guess
    if (!guessed.empty() && guessed.back().physical + guessed.back().count == cur) {
      ++guessed.back().count;
    } else {
      guessed.push_back({l, cur, 1, false});
    }
  }
  map.runs.insert(map.runs.end(), guessed.begin(), guessed.end());
  return true;
}

void plan_ext_file(const BlockMap& map, bool guessed, uint64_t size, uint64_t tree_bytes_in_use, uint32_t bs,
                   uint64_t offset, const FreeMap& free, DeletedFile& f) {
  const uint64_t nblocks = size / bs + (size % bs ? 1 : 0);
  bool gaps = false;
  uint64_t covered = 0, next_offset = 0;
  for (const auto& run : map.runs) {
    if (run.logical >= nblocks) break;
    const uint64_t count = std::min(run.count, nblocks - run.logical);
    if (run.uninitialized) {
      gaps = true;
      continue;
    }
    const uint64_t file_off = run.logical * bs;
    const uint64_t len = std::min<uint64_t>(count * bs, size - file_off);
    if (file_off != next_offset) gaps = true;
    const uint64_t begin = offset + run.physical * bs;
    if (!f.extents.empty() && f.extents.back().end == begin && f.file_offsets.back() + (f.extents.back().end - f.extents.back().begin) == file_off) {
      f.extents.back().end = begin + len;
    } else {
      f.extents.push_back({begin, begin + len});
      f.file_offsets.push_back(file_off);
    }
    f.overwritten_bytes += bytes_in_use(free, begin, begin + len);
    covered += len;
    next_offset = file_off + len;
  }
  if (next_offset != size) gaps = true;
  if (!gaps) f.file_offsets.clear();
  if (!f.extents.empty()) f.first_cluster = (f.extents.front().begin - offset) / bs;
  f.overwritten_bytes += tree_bytes_in_use;
  // A live file owns some of its blocks, or a tree block its map needs
  // (which then holds that file's bytes, not this map): overwritten,
  // whether or not the rest of the map could be read. Else a tree block
  // that is gone makes this file unreadable, not the volume inconsistent:
  // no entry in `problems`.
  if (f.overwritten_bytes > 0) {
    f.status = DeletedStatus::overwritten;
  } else if ((!map.problem.empty() && !guessed) || covered == 0) {
    f.status = DeletedStatus::unreadable;
  }
}

bool mark_claimed_by_newer(std::vector<DeletedFile>& files, const std::vector<uint64_t>& ranks, uint32_t bs,
                           uint64_t offset) {
  struct Claim {
    uint64_t begin, end;
    size_t file;
  };
  std::vector<Claim> claims;
  for (size_t i = 0; i < files.size(); ++i) {
    // Whole blocks: a file's last block is its own past its size too.
    for (const auto& e : files[i].extents) {
      claims.push_back({e.begin, e.end + (bs - (e.end - offset) % bs) % bs, i});
    }
  }
  std::sort(claims.begin(), claims.end(), [](const Claim& a, const Claim& b) { return a.begin < b.begin; });
  std::vector<uint64_t> lost(files.size(), 0);
  bool all_checked = true;
  uint64_t budget = uint64_t(1) << 24;  // pairs compared: hostile copies may all claim one range
  for (size_t i = 0; i < claims.size() && all_checked; ++i) {
    for (size_t k = i + 1; k < claims.size() && claims[k].begin < claims[i].end; ++k) {
      if (budget-- == 0) {
        all_checked = false;
        break;
      }
      const Claim &a = claims[i], &b = claims[k];
      if (a.file == b.file || ranks[a.file] == ranks[b.file]) continue;
      const uint64_t overlap = std::min(a.end, b.end) - b.begin;
      lost[ranks[a.file] < ranks[b.file] ? a.file : b.file] += overlap;
    }
  }
  for (size_t i = 0; i < files.size(); ++i) {
    DeletedFile& f = files[i];
    if (lost[i] == 0) continue;
    f.overwritten_bytes = std::min(f.size, f.overwritten_bytes + lost[i]);  // its own last block counts to its size
    if (f.status == DeletedStatus::recoverable) f.status = DeletedStatus::overwritten;
  }
  return all_checked;
}

}  // namespace blocksmith::fs
