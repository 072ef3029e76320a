#include "core/guest_fs/exfat_boot.h"

#include <cstring>
#include <string>
#include <vector>

#include "core/guest_fs/bytes.h"

namespace blocksmith::fs {

namespace {

[[noreturn]] void bad(Reader& r, uint64_t offset, const std::string& what) {
  corrupt(r.path(), "exFAT volume at byte " + std::to_string(offset) + ": " + what);
}

// The signature, and the sector and cluster sizes from their shifts.
std::string exfat_sizes(const uint8_t* s, ExfatBoot& b) {
  if (std::memcmp(s + 3, "EXFAT   ", 8) != 0) return "no \"EXFAT   \" signature";
  const uint8_t bps_shift = s[108], spc_shift = s[109];
  if (bps_shift < 9 || bps_shift > 12) return "BytesPerSectorShift " + std::to_string(bps_shift) + " is not 9..12";
  // Clusters of at most 32 MiB (2^25), as the specification allows.
  if (spc_shift > 25 - bps_shift) return "SectorsPerClusterShift " + std::to_string(spc_shift) + " makes clusters over 32 MiB";
  b.sector_size = 1u << bps_shift;
  b.cluster_size = 1u << (bps_shift + spc_shift);
  return "";
}

// The whole main boot region (12 sectors): sector 11 repeats the checksum of
// the 11 before it.
void verify_boot_checksum(Reader& reader, uint64_t offset, uint64_t limit, uint32_t sector_size) {
  const auto region = read_checked(reader, offset, uint64_t(sector_size) * 12, limit, "exFAT boot region");
  const uint32_t sum = exfat_boot_checksum(region.data(), sector_size);
  for (uint32_t i = 0; i < sector_size; i += 4) {
    const uint32_t stored = le32(region.data() + 11 * sector_size + i);
    if (stored != sum) {
      bad(reader, offset, "boot checksum " + std::to_string(stored) + " in sector 11 does not match the boot region (" +
                              std::to_string(sum) + ")");
    }
  }
}

}  // namespace

bool looks_like_exfat(Reader& reader, uint64_t offset, uint64_t length) {
  uint8_t s[512];
  if (length < sizeof s || offset > reader.size() || reader.size() - offset < sizeof s) return false;
  if (reader.read_at(s, sizeof s, offset) != sizeof s) return false;
  return std::memcmp(s + 3, "EXFAT   ", 8) == 0 && s[108] >= 9 && s[108] <= 12 && s[108] + s[109] <= 25;
}

uint32_t exfat_boot_checksum(const uint8_t* sectors, uint32_t sector_size) {
  uint32_t sum = 0;
  for (uint64_t i = 0; i < uint64_t(sector_size) * 11; ++i) {
    if (i == 106 || i == 107 || i == 112) continue;
    sum = ((sum & 1) ? 0x80000000u : 0) + (sum >> 1) + sectors[i];
  }
  return sum;
}

std::string check_exfat_geometry(const uint8_t* p, uint64_t length, ExfatBoot& b) {
  const uint64_t volume_sectors = le64(p + 72);
  const uint32_t fat_off = le32(p + 80), fat_len = le32(p + 84), heap_off = le32(p + 88);
  b.cluster_count = le32(p + 92);
  b.root_cluster = le32(p + 96);
  b.number_of_fats = p[110];
  const uint64_t ss = b.sector_size;
  if (ss == 0 || b.cluster_size == 0) return "sector or cluster size unknown (BytesPerSectorShift not read)";
  if (volume_sectors > length / ss) {
    return "VolumeLength " + std::to_string(volume_sectors) + " sectors is past the end of the volume (" +
           std::to_string(length) + " bytes)";
  }
  const uint64_t vol_bytes = volume_sectors * ss;
  if (b.number_of_fats != 1 && b.number_of_fats != 2) return "NumberOfFats " + std::to_string(b.number_of_fats) + " is not 1 or 2";
  if (fat_off < 24) return "FatOffset " + std::to_string(fat_off) + " lies inside the boot regions";
  if (fat_len == 0) return "FatLength 0";
  const uint64_t fats_end = uint64_t(fat_off) * ss + uint64_t(fat_len) * ss * b.number_of_fats;
  if (fats_end > vol_bytes) {
    return "FatOffset " + std::to_string(fat_off) + " + FatLength " + std::to_string(fat_len) +
           " sectors is past the end of the volume";
  }
  if (uint64_t(heap_off) * ss < fats_end || uint64_t(heap_off) * ss > vol_bytes) {
    return "ClusterHeapOffset " + std::to_string(heap_off) + " overlaps the FAT or lies past the volume";
  }
  if (b.cluster_count == 0 || b.cluster_count > 0xFFFFFFF5u) {
    return "ClusterCount " + std::to_string(b.cluster_count) + " is out of range";
  }
  if (uint64_t(heap_off) * ss + uint64_t(b.cluster_count) * b.cluster_size > vol_bytes) {
    return "ClusterCount " + std::to_string(b.cluster_count) + " clusters of " + std::to_string(b.cluster_size) +
           " bytes run past the end of the volume";
  }
  if ((uint64_t(b.cluster_count) + 2) * 4 > uint64_t(fat_len) * ss) {
    return "FatLength " + std::to_string(fat_len) + " sectors is too small for " + std::to_string(b.cluster_count) +
           " clusters";
  }
  if (!b.valid_cluster(b.root_cluster)) {
    return "FirstClusterOfRootDirectory " + std::to_string(b.root_cluster) + " is not a cluster of the heap";
  }
  const uint16_t flags = le16(p + 106);
  b.active_fat = (flags & 1) && b.number_of_fats == 2 ? 1 : 0;
  b.fat_bytes = uint64_t(fat_len) * ss;
  b.fat_offset = uint64_t(fat_off) * ss + b.active_fat * b.fat_bytes;
  b.heap_offset = uint64_t(heap_off) * ss;
  return "";
}

ExfatBoot read_exfat_boot(Reader& reader, uint64_t offset, uint64_t length) {
  uint64_t limit = 0;
  if (__builtin_add_overflow(offset, length, &limit)) bad(reader, offset, "volume length overflows");
  const auto s = read_checked(reader, offset, 512, limit, "exFAT boot sector");
  ExfatBoot b;
  b.offset = offset;
  b.length = length;
  const std::string sizes = exfat_sizes(s.data(), b);
  if (!sizes.empty()) bad(reader, offset, sizes);
  verify_boot_checksum(reader, offset, limit, b.sector_size);
  const std::string geometry = check_exfat_geometry(s.data(), length, b);
  if (!geometry.empty()) bad(reader, offset, geometry);
  return b;
}

}  // namespace blocksmith::fs
