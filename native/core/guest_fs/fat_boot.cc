#include "core/guest_fs/fat_boot.h"

#include "core/base/error.h"
#include "core/guest_fs/bytes.h"

namespace blocksmith::fs {
namespace {

bool pow2(uint64_t v) { return v && !(v & (v - 1)); }

FatBootCheck bad(const char* code, std::string message) { return {code, std::move(message)}; }
FatBootCheck corrupt_field(const std::string& what) { return bad("ERR_FS_CORRUPT", "FAT boot sector: " + what); }

// Trailing spaces off an 11-byte space-padded label; "NO NAME" means none.
std::string bpb_label(const uint8_t* p) {
  std::string s;
  for (int i = 0; i < 11; ++i) s += (p[i] >= 0x20 && p[i] < 0x7f) ? static_cast<char>(p[i]) : '?';
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s == "NO NAME" ? "" : s;
}

}  // namespace

FatBootCheck check_fat_boot(const uint8_t* b, uint64_t offset, uint64_t length, FatGeometry& g) {
  // The jump instruction and the 0x55AA signature every FAT formatter writes.
  if (!(b[0] == 0xEB || b[0] == 0xE9) || b[510] != 0x55 || b[511] != 0xAA) {
    return bad("ERR_FS_UNSUPPORTED", "no FAT boot sector (jump instruction or 0x55AA signature missing)");
  }
  const uint32_t bps = le16(b + 11), spc = b[13], reserved = le16(b + 14), nfats = b[16];
  const uint32_t root_entries = le16(b + 17), fatsz16 = le16(b + 22);
  const uint32_t total16 = le16(b + 19), total32 = le32(b + 32);
  if (!pow2(bps) || bps < 512 || bps > 4096) return corrupt_field("bytes per sector " + std::to_string(bps) + " is not 512, 1024, 2048 or 4096");
  if (!pow2(spc)) return corrupt_field("sectors per cluster " + std::to_string(spc) + " is not a power of two");
  if (uint64_t(bps) * spc > (32u << 20)) return corrupt_field("cluster size " + std::to_string(uint64_t(bps) * spc) + " exceeds 32 MiB");
  if (reserved == 0) return corrupt_field("reserved sector count 0 (the boot sector itself is reserved)");
  if (nfats == 0 || nfats > 16) return corrupt_field("number of FATs " + std::to_string(nfats) + " is not 1..16");
  const bool fat32_layout = fatsz16 == 0;
  const uint32_t fatsz = fat32_layout ? le32(b + 36) : fatsz16;
  if (fatsz == 0) return corrupt_field("FAT size 0 sectors");
  if (fat32_layout && root_entries != 0) return corrupt_field("FAT32 layout with " + std::to_string(root_entries) + " fixed root entries (must be 0)");
  if (!fat32_layout && root_entries == 0) return corrupt_field("FAT12/16 layout with 0 root directory entries");
  const uint64_t total = total16 ? total16 : total32;
  if (total == 0) return corrupt_field("total sectors 0");
  if (total16 && total32 && total16 != total32) return corrupt_field("total sectors given twice and different (" + std::to_string(total16) + ", " + std::to_string(total32) + ")");
  if (total * bps > length) {
    return corrupt_field("total sectors " + std::to_string(total) + " (" + std::to_string(total * bps) +
                         " bytes) extend past the end of the volume (" + std::to_string(length) + " bytes)");
  }
  const uint64_t root_sectors = (uint64_t(root_entries) * 32 + bps - 1) / bps;
  const uint64_t meta = uint64_t(reserved) + uint64_t(nfats) * fatsz + root_sectors;
  if (meta >= total) {
    return corrupt_field("FAT size " + std::to_string(fatsz) + " sectors x " + std::to_string(nfats) +
                         " FATs (+ reserved and root) reaches past the total sectors " + std::to_string(total));
  }
  const uint64_t clusters = (total - meta) / spc;
  if (clusters == 0) return corrupt_field("no data clusters (total sectors " + std::to_string(total) + ")");
  int bits = clusters < 4085 ? 12 : clusters < 65525 ? 16 : 32;
  if (fat32_layout) {
    bits = 32;
    if (clusters > 0x0FFFFFF5 - 2) return corrupt_field("cluster count " + std::to_string(clusters) + " exceeds FAT32's 268435443");
    const uint32_t version = le16(b + 42);
    if (version != 0) return bad("ERR_FS_UNSUPPORTED", "FAT32 version " + std::to_string(version >> 8) + "." + std::to_string(version & 0xff) + " (only 0.0 exists)");
  } else if (bits == 32) {
    return corrupt_field("cluster count " + std::to_string(clusters) + " needs FAT32 but the BPB has the FAT12/16 layout (FAT size " +
                         std::to_string(fatsz16) + " sectors)");
  }
  // The FAT must hold an entry for every cluster (and the two reserved ones).
  const uint64_t entries = clusters + 2;
  const uint64_t need = bits == 12 ? (entries * 3 + 1) / 2 : entries * (bits / 8);
  if (need > uint64_t(fatsz) * bps) {
    return corrupt_field("FAT size " + std::to_string(fatsz) + " sectors holds fewer than the " + std::to_string(entries) +
                         " entries of " + std::to_string(clusters) + " clusters");
  }
  g = FatGeometry{};
  g.bits = bits;
  g.offset = offset;
  g.length = length;
  g.bytes_per_sector = bps;
  g.sectors_per_cluster = spc;
  g.cluster_size = bps * spc;
  g.reserved_sectors = reserved;
  g.num_fats = nfats;
  g.fat_sectors = fatsz;
  g.root_entries = root_entries;
  g.total_sectors = total;
  g.cluster_count = clusters;
  if (bits == 32) {
    const uint32_t ext_flags = le16(b + 40);
    // Bit 7: mirroring off, bits 0-3 name the one FAT in use.
    if ((ext_flags & 0x80) && (ext_flags & 0xF) < nfats) g.active_fat = ext_flags & 0xF;
    g.root_cluster = le32(b + 44);
    if (!g.valid_cluster(g.root_cluster)) return corrupt_field("root cluster " + std::to_string(g.root_cluster) + " is not a data cluster (2.." + std::to_string(clusters + 1) + ")");
  }
  g.fat_offset = offset + (uint64_t(reserved) + uint64_t(g.active_fat) * fatsz) * bps;
  g.fat_bytes = need;
  g.root_offset = offset + (uint64_t(reserved) + uint64_t(nfats) * fatsz) * bps;
  g.root_bytes = uint64_t(root_entries) * 32;
  g.data_offset = offset + meta * bps;
  // Extended boot signature 0x29: the label follows the serial number.
  const uint8_t* ext = b + (bits == 32 ? 64 : 36);
  if (ext[2] == 0x29) g.label = bpb_label(ext + 7);
  return {};
}

FatGeometry read_fat_boot(Reader& reader, uint64_t offset, uint64_t length) {
  auto sector = read_checked(reader, offset, 512, offset + length, "FAT boot sector");
  FatGeometry g;
  FatBootCheck c = check_fat_boot(sector.data(), offset, length, g);
  if (!c.message.empty()) {
    throw Error(0, c.code, "read", reader.path(),
                "'" + reader.path() + "' at byte " + std::to_string(offset) + ": " + c.message);
  }
  return g;
}

}  // namespace blocksmith::fs
