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

// The BPB fields the geometry comes from, as stored.
struct Bpb {
  uint32_t bps, spc, reserved, nfats, root_entries, fatsz16, fatsz;
  uint32_t total16, total32;
  uint64_t total;
  bool fat32_layout;  // BPB_FATSz16 == 0
};

// The jump instruction and the 0x55AA signature every FAT formatter writes.
bool has_boot_signature(const uint8_t* b) { return (b[0] == 0xEB || b[0] == 0xE9) && b[510] == 0x55 && b[511] == 0xAA; }

// The sector and cluster sizes, the reserved sectors and the FAT count.
FatBootCheck check_sizes(const uint8_t* b, Bpb& f) {
  f.bps = le16(b + 11);
  f.spc = b[13];
  f.reserved = le16(b + 14);
  f.nfats = b[16];
  if (!pow2(f.bps) || f.bps < 512 || f.bps > 4096) return corrupt_field("bytes per sector " + std::to_string(f.bps) + " is not 512, 1024, 2048 or 4096");
  if (!pow2(f.spc)) return corrupt_field("sectors per cluster " + std::to_string(f.spc) + " is not a power of two");
  if (uint64_t(f.bps) * f.spc > (32u << 20)) return corrupt_field("cluster size " + std::to_string(uint64_t(f.bps) * f.spc) + " exceeds 32 MiB");
  if (f.reserved == 0) return corrupt_field("reserved sector count 0 (the boot sector itself is reserved)");
  if (f.nfats == 0 || f.nfats > 16) return corrupt_field("number of FATs " + std::to_string(f.nfats) + " is not 1..16");
  return {};
}

// The FAT size and the root directory: the FAT12/16 or the FAT32 layout.
FatBootCheck check_layout(const uint8_t* b, Bpb& f) {
  f.root_entries = le16(b + 17);
  f.fatsz16 = le16(b + 22);
  f.fat32_layout = f.fatsz16 == 0;
  f.fatsz = f.fat32_layout ? le32(b + 36) : f.fatsz16;
  if (f.fatsz == 0) return corrupt_field("FAT size 0 sectors");
  if (f.fat32_layout && f.root_entries != 0) return corrupt_field("FAT32 layout with " + std::to_string(f.root_entries) + " fixed root entries (must be 0)");
  if (!f.fat32_layout && f.root_entries == 0) return corrupt_field("FAT12/16 layout with 0 root directory entries");
  return {};
}

// The total sector count: given once (or twice alike) and inside the volume.
FatBootCheck check_total(const uint8_t* b, uint64_t length, Bpb& f) {
  f.total16 = le16(b + 19);
  f.total32 = le32(b + 32);
  f.total = f.total16 ? f.total16 : f.total32;
  if (f.total == 0) return corrupt_field("total sectors 0");
  if (f.total16 && f.total32 && f.total16 != f.total32) return corrupt_field("total sectors given twice and different (" + std::to_string(f.total16) + ", " + std::to_string(f.total32) + ")");
  if (f.total * f.bps > length) {
    return corrupt_field("total sectors " + std::to_string(f.total) + " (" + std::to_string(f.total * f.bps) +
                         " bytes) extend past the end of the volume (" + std::to_string(length) + " bytes)");
  }
  return {};
}

// The FAT type the cluster count and the layout give (FAT32's own fields
// checked), and a FAT big enough for every cluster.
FatBootCheck check_fat_type(const uint8_t* b, const Bpb& f, uint64_t clusters, int& bits) {
  bits = fat_bits_for(clusters);
  if (f.fat32_layout) {
    bits = 32;
    if (clusters > 0x0FFFFFF5 - 2) return corrupt_field("cluster count " + std::to_string(clusters) + " exceeds FAT32's 268435443");
    const uint32_t version = le16(b + 42);
    if (version != 0) return bad("ERR_FS_UNSUPPORTED", "FAT32 version " + std::to_string(version >> 8) + "." + std::to_string(version & 0xff) + " (only 0.0 exists)");
  } else if (bits == 32) {
    return corrupt_field("cluster count " + std::to_string(clusters) + " needs FAT32 but the BPB has the FAT12/16 layout (FAT size " +
                         std::to_string(f.fatsz16) + " sectors)");
  }
  if (fat_bytes_needed(bits, clusters) > uint64_t(f.fatsz) * f.bps) {
    return corrupt_field("FAT size " + std::to_string(f.fatsz) + " sectors holds fewer than the " + std::to_string(clusters + 2) +
                         " entries of " + std::to_string(clusters) + " clusters");
  }
  return {};
}

// The geometry in source bytes; FAT32's root cluster and active FAT.
FatBootCheck fill_geometry(const uint8_t* b, const Bpb& f, uint64_t offset, uint64_t length, uint64_t meta,
                           uint64_t clusters, int bits, FatGeometry& g) {
  g = FatGeometry{};
  g.bits = bits;
  g.offset = offset;
  g.length = length;
  g.bytes_per_sector = f.bps;
  g.sectors_per_cluster = f.spc;
  g.cluster_size = f.bps * f.spc;
  g.reserved_sectors = f.reserved;
  g.num_fats = f.nfats;
  g.fat_sectors = f.fatsz;
  g.root_entries = f.root_entries;
  g.total_sectors = f.total;
  g.cluster_count = clusters;
  if (bits == 32) {
    const uint32_t ext_flags = le16(b + 40);
    // Bit 7: mirroring off, bits 0-3 name the one FAT in use.
    if ((ext_flags & 0x80) && (ext_flags & 0xF) < f.nfats) g.active_fat = ext_flags & 0xF;
    g.root_cluster = le32(b + 44);
    if (!g.valid_cluster(g.root_cluster)) return corrupt_field("root cluster " + std::to_string(g.root_cluster) + " is not a data cluster (2.." + std::to_string(clusters + 1) + ")");
  }
  g.fat_offset = offset + (uint64_t(f.reserved) + uint64_t(g.active_fat) * f.fatsz) * f.bps;
  g.fat_bytes = fat_bytes_needed(bits, clusters);
  g.root_offset = offset + (uint64_t(f.reserved) + uint64_t(f.nfats) * f.fatsz) * f.bps;
  g.root_bytes = uint64_t(f.root_entries) * 32;
  g.data_offset = offset + meta * f.bps;
  // Extended boot signature 0x29: the label follows the serial number.
  const uint8_t* ext = b + (bits == 32 ? 64 : 36);
  if (ext[2] == 0x29) g.label = bpb_label(ext + 7);
  return {};
}

}  // namespace

int fat_bits_for(uint64_t clusters) { return clusters < 4085 ? 12 : clusters < 65525 ? 16 : 32; }

uint64_t fat_bytes_needed(int bits, uint64_t clusters) {
  const uint64_t entries = clusters + 2;
  return bits == 12 ? (entries * 3 + 1) / 2 : entries * (bits / 8);
}

FatBootCheck check_fat_boot(const uint8_t* b, uint64_t offset, uint64_t length, FatGeometry& g) {
  if (!has_boot_signature(b)) {
    return bad("ERR_FS_UNSUPPORTED", "no FAT boot sector (jump instruction or 0x55AA signature missing)");
  }
  Bpb f{};
  FatBootCheck c = check_sizes(b, f);
  if (c.message.empty()) c = check_layout(b, f);
  if (c.message.empty()) c = check_total(b, length, f);
  if (!c.message.empty()) return c;
  // Reserved sectors, the FATs and the FAT12/16 root come before cluster 2.
  const uint64_t root_sectors = (uint64_t(f.root_entries) * 32 + f.bps - 1) / f.bps;
  const uint64_t meta = uint64_t(f.reserved) + uint64_t(f.nfats) * f.fatsz + root_sectors;
  if (meta >= f.total) {
    return corrupt_field("FAT size " + std::to_string(f.fatsz) + " sectors x " + std::to_string(f.nfats) +
                         " FATs (+ reserved and root) reaches past the total sectors " + std::to_string(f.total));
  }
  const uint64_t clusters = (f.total - meta) / f.spc;
  if (clusters == 0) return corrupt_field("no data clusters (total sectors " + std::to_string(f.total) + ")");
  int bits = 0;
  c = check_fat_type(b, f, clusters, bits);
  if (!c.message.empty()) return c;
  return fill_geometry(b, f, offset, length, meta, clusters, bits, g);
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
