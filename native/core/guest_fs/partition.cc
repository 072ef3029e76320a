#include "core/guest_fs/partition.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "core/guest_fs/bytes.h"
#include "core/guest_fs/checksum.h"

namespace blocksmith::fs {
namespace {

bool is_extended(uint8_t t) { return t == 0x05 || t == 0x0F || t == 0x85; }

std::string hex8(uint8_t t) {
  char b[8];
  std::snprintf(b, sizeof b, "0x%02x", t);
  return b;
}

std::string guid(const uint8_t* p) {
  char b[40];
  std::snprintf(b, sizeof b, "%08X-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X", le32(p), le16(p + 4), le16(p + 6), p[8],
                p[9], p[10], p[11], p[12], p[13], p[14], p[15]);
  return b;
}

void add_partition(Reader& r, PartitionTable& t, uint32_t number, std::string type, uint64_t first_sector,
                   uint64_t sectors, uint32_t ss) {
  Partition p;
  p.number = number;
  p.type = std::move(type);
  uint64_t off = 0, len = 0;
  if (__builtin_mul_overflow(first_sector, static_cast<uint64_t>(ss), &off) ||
      __builtin_mul_overflow(sectors, static_cast<uint64_t>(ss), &len)) {
    corrupt(r.path(), "partition " + std::to_string(number) + " has an impossible extent");
  }
  p.offset = off;
  if (off >= r.size()) {
    p.truncated = true;
    p.length = 0;
  } else if (len > r.size() - off) {
    p.truncated = true;
    p.length = r.size() - off;
  } else {
    p.length = len;
  }
  t.partitions.push_back(std::move(p));
}

void check_overlaps(Reader& r, const PartitionTable& t) {
  std::vector<std::pair<uint64_t, uint64_t>> v;
  for (const auto& p : t.partitions) v.push_back({p.offset, p.offset + p.length});
  std::sort(v.begin(), v.end());
  for (size_t i = 1; i < v.size(); ++i) {
    if (v[i].first < v[i - 1].second) corrupt(r.path(), "the partition table lists overlapping partitions");
  }
}

struct GptHeader {
  bool ok = false;
  uint64_t entries_lba = 0;
  uint32_t count = 0, entry_size = 0, entries_crc = 0;
  uint64_t first_usable = 0, last_usable = 0;
};

GptHeader read_gpt_header(Reader& r, uint64_t lba, uint32_t ss) {
  GptHeader h;
  if (lba == 0 || (lba + 1) * ss > r.size()) return h;
  std::vector<uint8_t> b(ss);
  if (r.read_at(b.data(), ss, lba * ss) != ss) return h;
  if (std::memcmp(b.data(), "EFI PART", 8) != 0) return h;
  uint32_t hsize = le32(b.data() + 12);
  if (hsize < 92 || hsize > ss) return h;
  uint32_t want = le32(b.data() + 16);
  std::memset(b.data() + 16, 0, 4);
  if (crc32(b.data(), hsize) != want) return h;
  if (le64(b.data() + 24) != lba) return h;
  h.entries_lba = le64(b.data() + 72);
  h.count = le32(b.data() + 80);
  h.entry_size = le32(b.data() + 84);
  h.entries_crc = le32(b.data() + 88);
  h.first_usable = le64(b.data() + 40);
  h.last_usable = le64(b.data() + 48);
  if (h.entry_size < 128 || (h.entry_size & (h.entry_size - 1)) || h.entry_size > 4096 || h.count > 16384) return h;
  h.ok = true;
  return h;
}

}  // namespace

PartitionTable read_mbr(Reader& r, uint32_t ss) {
  PartitionTable t;
  t.scheme = "none";
  if (r.size() < ss || ss < 512) return t;
  auto mbr = read_checked(r, 0, 512, r.size(), "MBR");
  if (mbr[510] != 0x55 || mbr[511] != 0xAA) return t;
  const uint8_t* e = mbr.data() + 446;
  bool any = false;
  // Sanity as blkid does: boot flags 0x00/0x80 only.
  for (int i = 0; i < 4; ++i) {
    if (e[i * 16] != 0 && e[i * 16] != 0x80) return t;
    if (e[i * 16 + 4] != 0) any = true;
  }
  if (!any) return t;
  t.scheme = "mbr";
  uint64_t ext_start = 0;
  int extended = 0;
  std::vector<uint64_t> ebrs;
  for (int i = 0; i < 4; ++i) {
    const uint8_t* p = e + i * 16;
    uint8_t type = p[4];
    uint64_t start = le32(p + 8), count = le32(p + 12);
    if (type == 0 || count == 0) continue;
    if (is_extended(type)) {
      if (++extended > 1) corrupt(r.path(), "the MBR lists more than one extended partition");
      ext_start = start;
      if (start == 0) corrupt(r.path(), "the MBR's extended partition starts at sector 0");
      continue;  // the container itself is not a filesystem
    }
    if (start == 0 && type != 0xEE) corrupt(r.path(), "MBR partition " + std::to_string(i + 1) + " starts at sector 0 (over the MBR)");
    add_partition(r, t, static_cast<uint32_t>(i + 1), hex8(type), start, count, ss);
  }
  if (ext_start != 0) {
    std::set<uint64_t> seen;
    uint64_t ebr = ext_start;
    uint32_t number = 5;
    while (ebr != 0) {
      if (!seen.insert(ebr).second || seen.size() > 256) corrupt(r.path(), "the MBR's logical partition chain loops");
      auto b = read_checked(r, ebr * ss, 512, r.size(), "extended boot record");
      ebrs.push_back(ebr);
      if (b[510] != 0x55 || b[511] != 0xAA) corrupt(r.path(), "bad extended boot record at sector " + std::to_string(ebr));
      const uint8_t* l = b.data() + 446;
      if (l[4] != 0 && le32(l + 12) != 0 && !is_extended(l[4])) {
        if (le32(l + 8) == 0) corrupt(r.path(), "a logical partition starts on its own extended boot record");
        add_partition(r, t, number++, hex8(l[4]), ebr + le32(l + 8), le32(l + 12), ss);
      }
      const uint8_t* n = l + 16;
      ebr = (n[4] != 0 && is_extended(n[4]) && le32(n + 8) != 0) ? ext_start + le32(n + 8) : 0;
    }
  }
  // A protective (or hybrid) MBR overlaps by design: the GPT decides.
  bool protective = false;
  for (const auto& p : t.partitions) protective |= p.type == "0xee";
  if (!protective) {
    check_overlaps(r, t);
    for (uint64_t ebr_sector : ebrs) {
      for (const auto& p : t.partitions) {
        if (ebr_sector * ss >= p.offset && ebr_sector * ss < p.offset + p.length) {
          corrupt(r.path(), "partition " + std::to_string(p.number) + " covers an extended boot record");
        }
      }
    }
  }
  return t;
}

PartitionTable read_gpt(Reader& r, uint32_t ss) {
  PartitionTable t;
  t.scheme = "gpt";
  const uint64_t last_lba = r.size() / ss - 1;
  for (int attempt = 0; attempt < 2; ++attempt) {
    GptHeader h = read_gpt_header(r, attempt == 0 ? 1 : last_lba, ss);
    if (!h.ok) continue;
    uint64_t bytes = static_cast<uint64_t>(h.count) * h.entry_size;
    if (h.entries_lba == 0 || h.entries_lba > last_lba || bytes > r.size() - h.entries_lba * ss) continue;
    auto entries = read_checked(r, h.entries_lba * ss, bytes, r.size(), "GPT entry array");
    if (crc32(entries.data(), entries.size()) != h.entries_crc) continue;
    t.gpt_backup_used = attempt == 1;
    for (uint32_t i = 0; i < h.count; ++i) {
      const uint8_t* p = entries.data() + static_cast<size_t>(i) * h.entry_size;
      static const uint8_t zero[16] = {};
      if (std::memcmp(p, zero, 16) == 0) continue;
      uint64_t first = le64(p + 32), last = le64(p + 40);
      if (last < first) corrupt(r.path(), "GPT partition " + std::to_string(i + 1) + " ends before it starts");
      // Never over the GPT's own headers and entry arrays.
      if (first < h.first_usable || last > h.last_usable || h.first_usable < 2) {
        corrupt(r.path(), "GPT partition " + std::to_string(i + 1) + " lies outside the usable LBAs " +
                              std::to_string(h.first_usable) + ".." + std::to_string(h.last_usable));
      }
      add_partition(r, t, i + 1, guid(p), first, last - first + 1, ss);
      std::string name;
      for (int k = 0; k < 36; ++k) {
        uint16_t c = le16(p + 56 + 2 * k);
        if (c == 0) break;
        name.push_back(c < 128 ? static_cast<char>(c) : '?');
      }
      t.partitions.back().name = name;
    }
    check_overlaps(r, t);
    return t;
  }
  corrupt(r.path(), "the GPT is corrupt: neither the primary nor the backup header (with its entry array) is valid");
}

PartitionTable read_partition_table(Reader& r, uint32_t ss) {
  PartitionTable mbr = read_mbr(r, ss);
  if (mbr.scheme == "mbr") {
    bool protective = false;
    for (const auto& p : mbr.partitions) protective |= p.type == "0xee";
    if (protective) return read_gpt(r, ss);
  }
  return mbr;
}

}  // namespace blocksmith::fs
