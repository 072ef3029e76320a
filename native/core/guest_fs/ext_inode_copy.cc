#include "core/guest_fs/ext_inode_copy.h"

#include <cstring>
#include <vector>

#include "core/guest_fs/bytes.h"
#include "core/guest_fs/checksum.h"

namespace blocksmith::fs {
namespace {

// A time field with its ext4 extra field (2 epoch bits, 30 bits of
// nanoseconds) when the inode is large enough to hold it.
Timestamp stamp(const uint8_t* raw, int at, int extra_at, uint32_t extra_isize) {
  Timestamp t;
  t.known = true;
  t.seconds = static_cast<int32_t>(le32(raw + at));
  if (extra_at >= 0 && static_cast<uint32_t>(extra_at + 4) <= 128 + extra_isize) {
    const uint32_t extra = le32(raw + extra_at);
    t.seconds += static_cast<int64_t>(extra & 3) << 32;
    t.nanoseconds = extra >> 2;
    if (t.nanoseconds >= 1000000000u) t.nanoseconds = 0;
  }
  return t;
}

uint32_t extra_isize_of(const uint8_t* raw, const ExtLayout& g) {
  if (g.inode_size <= 128) return 0;
  uint32_t e = le16(raw + 0x80);
  return (e % 4 == 0 && 128 + e <= g.inode_size) ? e : 0;
}

// Blocks the inode can address at most: 12 direct, then 1, 2, 3 levels of
// indirection; 2^32 logical blocks with extents.
uint64_t max_file_blocks(const ExtLayout& g, bool extents) {
  if (extents) return uint64_t(1) << 32;
  const uint64_t ppb = g.bs / 4;
  return 12 + ppb + ppb * ppb + ppb * ppb * ppb;
}

}  // namespace

InodeFields inode_fields(const uint8_t* raw, const ExtLayout& g) {
  InodeFields f;
  f.mode = le16(raw);
  f.regular = (f.mode & 0xF000) == 0x8000;
  f.directory = (f.mode & 0xF000) == 0x4000;
  f.size = le32(raw + 0x04) | (static_cast<uint64_t>(le32(raw + 0x6C)) << 32);
  f.links = le16(raw + 0x1A);
  f.dtime = le32(raw + 0x14);
  f.flags = le32(raw + 0x20);
  f.generation = le32(raw + 0x64);
  const uint32_t extra = extra_isize_of(raw, g);
  f.times.modified = stamp(raw, 0x10, 0x88, extra);
  f.times.accessed = stamp(raw, 0x08, 0x8C, extra);
  // The creation time (ext4's crtime) only where the inode has one.
  if (extra >= 0x18) f.times.created = stamp(raw, 0x90, 0x94, extra);
  return f;
}

bool inode_checksum_ok(const uint8_t* raw, const ExtLayout& g, uint32_t ino, uint32_t seed) {
  if (!g.csum) return true;
  std::vector<uint8_t> copy(raw, raw + g.inode_size);
  const uint32_t extra = extra_isize_of(raw, g);
  const bool has_hi = g.inode_size > 128 && extra >= 4;
  const uint32_t want = le16(raw + 0x7C) | (has_hi ? static_cast<uint32_t>(le16(raw + 0x82)) << 16 : 0);
  copy[0x7C] = copy[0x7D] = 0;
  if (has_hi) copy[0x82] = copy[0x83] = 0;
  uint8_t le[4] = {static_cast<uint8_t>(ino), static_cast<uint8_t>(ino >> 8), static_cast<uint8_t>(ino >> 16),
                   static_cast<uint8_t>(ino >> 24)};
  uint32_t c = crc32c_update(seed, le, 4);
  c = crc32c_update(c, raw + 0x64, 4);  // the generation
  c = crc32c_update(c, copy.data(), g.inode_size);
  if (!has_hi) c &= 0xFFFF;
  return c == want;
}

CopyVerdict judge_copy(const uint8_t* raw, const ExtLayout& g, uint32_t ino, uint32_t seed) {
  const InodeFields f = inode_fields(raw, g);
  if (!f.regular && !f.directory) return CopyVerdict::no;
  if (f.flags & (kInlineDataFl | kEaInodeFl)) return CopyVerdict::no;
  if (le32(raw + 0x0C) == 0 || le32(raw + 0x10) == 0) return CopyVerdict::no;  // ctime, mtime never set: not a file
  if (!inode_checksum_ok(raw, g, ino, seed)) return CopyVerdict::no;
  const bool extents = f.flags & kExtentsFl;
  bool mapped = false;
  if (extents) {
    const uint16_t entries = le16(raw + 0x28 + 2), max = le16(raw + 0x28 + 4);
    mapped = le16(raw + 0x28) == kExtentMagic && entries > 0 && entries <= max && max <= 4;
  } else {
    for (int i = 0; i < 15 && !mapped; ++i) mapped = le32(raw + 0x28 + 4 * i) != 0;
  }
  const bool live_then = f.links > 0 && f.dtime == 0;
  if (f.regular && f.size == 0) return (live_then && !mapped) ? CopyVerdict::empty : CopyVerdict::no;
  if (!mapped || f.size == 0) return CopyVerdict::no;
  if (f.size / g.bs >= max_file_blocks(g, extents)) return CopyVerdict::no;
  return CopyVerdict::file;
}

}  // namespace blocksmith::fs
