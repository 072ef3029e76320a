#include "core/guest_fs/ext_dirents.h"

#include "core/guest_fs/bytes.h"

namespace blocksmith::fs {
namespace {

constexpr uint32_t align4(uint32_t n) { return (n + 3) & ~3u; }

// ext4_rec_len_from_disk: 64 KiB blocks store 65536 as 0 or 65535.
uint32_t rec_len_at(const uint8_t* p, uint32_t bs) {
  uint32_t len = le16(p + 4);
  if (bs >= 65536 && (len == 0 || len == 65535)) return 65536;
  return len;
}

uint32_t name_len_at(const uint8_t* p, bool filetype) { return filetype ? p[6] : le16(p + 6); }

bool name_ok(const uint8_t* name, uint32_t len, bool strict) {
  for (uint32_t i = 0; i < len; ++i) {
    if (name[i] == 0 || name[i] == '/') return false;
    if (strict && name[i] < 0x20) return false;
  }
  return true;
}

bool is_dot(const uint8_t* name, uint32_t len) {
  return (len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.');
}

// dx_root (htree): "." with rec_len 12, ".." covering the rest of the block,
// then dx_root_info (reserved_zero, hash_version, info_length 8, levels).
bool is_dx_root(const uint8_t* b, uint32_t bs) {
  if (bs < 0x28 || rec_len_at(b, bs) != 12 || rec_len_at(b + 12, bs) != bs - 12) return false;
  return le32(b + 0x18) == 0 && b[0x1C] <= 6 && b[0x1D] == 8 && b[0x1E] <= 3;
}

// Deleted entries in [from, to): an entry whose inode, lengths, type and
// name are plausible and that fits the slack; else the next 4-byte step.
void scan_slack(const uint8_t* b, uint32_t bs, uint32_t from, uint32_t to, bool filetype, uint32_t inodes_count,
                std::vector<DirEntry>& out) {
  uint32_t p = from;
  while (p + 8 < to) {
    const uint8_t* e = b + p;
    const uint32_t ino = le32(e), rec = rec_len_at(e, bs), nl = name_len_at(e, filetype);
    const uint8_t ft = filetype ? e[7] : 0;
    const bool plausible = ino != 0 && ino <= inodes_count && nl > 0 && p + 8 + nl <= to && rec >= align4(8 + nl) &&
                           rec % 4 == 0 && p + rec <= bs && ft <= 7 && (!filetype || ft != 0) &&
                           name_ok(e + 8, nl, true) && !is_dot(e + 8, nl);
    if (!plausible) {
      p += 4;
      continue;
    }
    out.push_back({ino, ft, true, std::string(reinterpret_cast<const char*>(e + 8), nl)});
    p += align4(8 + nl);
  }
}

}  // namespace

DirBlock parse_dir_block(const uint8_t* b, uint32_t bs, bool filetype, uint32_t inodes_count, bool want_deleted) {
  DirBlock d;
  if (bs < 12 || bs % 4 != 0) return d;
  if (le32(b) != 0 && is_dx_root(b, bs) && name_len_at(b, filetype) == 1 && b[8] == '.' &&
      name_len_at(b + 12, filetype) == 2 && b[20] == '.' && b[21] == '.') {
    d.valid = d.index = true;
    d.self = le32(b);
    d.parent = le32(b + 12);
    if (d.self > inodes_count || d.parent > inodes_count) d = DirBlock{};
    return d;
  }
  std::vector<DirEntry> entries;
  uint32_t off = 0;
  while (off < bs) {
    if (off + 8 > bs) return d;
    const uint8_t* e = b + off;
    const uint32_t ino = le32(e), rec = rec_len_at(e, bs), nl = name_len_at(e, filetype);
    const uint8_t ft = filetype ? e[7] : 0;
    if (rec < 8 || rec % 4 != 0 || rec > bs - off || 8 + nl > rec) return d;
    // The metadata_csum tail: a fake entry holding the block's checksum.
    if (ino == 0 && rec == 12 && nl == 0 && e[7] == 0xDE && off == bs - 12) break;
    if (ino == 0) {
      // An htree dx_node: one fake entry over the whole block, then hashes.
      if (off == 0 && nl == 0 && rec == bs) {
        d.valid = d.index = true;
        return d;
      }
      // A block's first entry, deleted: its inode is gone, so its name is
      // no use; later deleted ones may follow in its slack.
      if (want_deleted) scan_slack(b, bs, off + align4(8 + nl), off + rec, filetype, inodes_count, entries);
      off += rec;
      continue;
    }
    if (ino > inodes_count || nl == 0 || ft > 7 || !name_ok(e + 8, nl, false)) return d;
    if (is_dot(e + 8, nl)) {
      if (off == 0 && nl == 1) d.self = ino;
      else if (nl == 2 && d.self != 0 && off == 12) d.parent = ino;
    } else {
      entries.push_back({ino, ft, false, std::string(reinterpret_cast<const char*>(e + 8), nl)});
    }
    if (want_deleted) scan_slack(b, bs, off + align4(8 + nl), off + rec, filetype, inodes_count, entries);
    off += rec;
  }
  d.valid = true;
  d.entries = std::move(entries);
  return d;
}

}  // namespace blocksmith::fs
