#include "core/guest_fs/fat_table.h"

#include <algorithm>

#include "core/guest_fs/bytes.h"

namespace blocksmith::fs {

FatTable::FatTable(Reader& reader, const FatGeometry& g) : bits_(g.bits), clusters_(g.cluster_count) {
  const uint64_t limit = g.offset + g.length;
  bytes_.resize(g.fat_bytes);
  constexpr uint64_t kPiece = 16u << 20;
  for (uint64_t done = 0; done < g.fat_bytes;) {
    const uint64_t n = std::min(kPiece, g.fat_bytes - done);
    auto piece = read_checked(reader, g.fat_offset + done, n, limit, "FAT");
    std::copy(piece.begin(), piece.end(), bytes_.begin() + done);
    done += n;
  }
}

uint32_t FatTable::raw(uint32_t c) const {
  switch (bits_) {
    case 12: {
      const uint8_t* p = bytes_.data() + c + c / 2;
      const uint32_t v = p[0] | (p[1] << 8);
      return (c & 1) ? v >> 4 : v & 0xFFF;
    }
    case 16:
      return le16(bytes_.data() + uint64_t(c) * 2);
    default:
      return le32(bytes_.data() + uint64_t(c) * 4) & 0x0FFFFFFF;
  }
}

FatTable::Entry FatTable::get(uint32_t c) const {
  if (c < 2 || c >= clusters_ + 2) return {Kind::invalid, 0};
  const uint32_t v = raw(c);
  const uint32_t bad = bits_ == 12 ? 0xFF7 : bits_ == 16 ? 0xFFF7 : 0x0FFFFFF7;
  if (v == 0) return {Kind::free, 0};
  if (v == bad) return {Kind::bad, 0};
  if (v > bad) return {Kind::end, 0};
  if (v < 2 || v >= clusters_ + 2) return {Kind::invalid, 0};
  return {Kind::next, v};
}

}  // namespace blocksmith::fs
