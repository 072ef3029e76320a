#include "core/carve/exif.h"

#include <cstring>

namespace blocksmith::carve {
namespace {

struct Tiff {
  const uint8_t* b;
  size_t n;
  bool le;
  bool u16(size_t off, uint32_t& v) const {
    if (off + 2 > n) return false;
    v = le ? (b[off] | b[off + 1] << 8) : (b[off] << 8 | b[off + 1]);
    return true;
  }
  bool u32(size_t off, uint32_t& v) const {
    if (off + 4 > n) return false;
    v = le ? (uint32_t(b[off]) | uint32_t(b[off + 1]) << 8 | uint32_t(b[off + 2]) << 16 | uint32_t(b[off + 3]) << 24)
           : (uint32_t(b[off]) << 24 | uint32_t(b[off + 1]) << 16 | uint32_t(b[off + 2]) << 8 | uint32_t(b[off + 3]));
    return true;
  }
  // An ASCII entry's text (type 2), trimmed of NULs and spaces.
  std::string ascii(size_t entry) const {
    uint32_t type = 0, count = 0, val = 0;
    if (!u16(entry + 2, type) || type != 2 || !u32(entry + 4, count) || count == 0 || count > 256) return "";
    size_t off = entry + 8;
    if (count > 4) {
      if (!u32(entry + 8, val)) return "";
      off = val;
    }
    if (off + count > n) return "";
    std::string s;
    for (size_t i = 0; i < count; i++) {
      uint8_t ch = b[off + i];
      if (ch == 0) break;
      s += (ch >= 0x20 && ch < 0x7f) ? char(ch) : '?';
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
  }
  // Calls f(tag, entry offset) for each entry of the IFD at `off`.
  template <class F>
  void ifd(uint32_t off, F f) const {
    uint32_t count = 0;
    if (!u16(off, count) || count > 512) return;
    for (uint32_t i = 0; i < count; i++) {
      size_t e = off + 2 + size_t(i) * 12;
      uint32_t tag = 0;
      if (!u16(e, tag) || e + 12 > n) return;
      f(tag, e);
    }
  }
};

}  // namespace

bool parse_exif(const uint8_t* p, size_t n, ExifFields& out) {
  if (n < 14 || std::memcmp(p, "Exif\0\0", 6) != 0) return false;
  Tiff t{p + 6, n - 6, false};
  if (t.b[0] == 'I' && t.b[1] == 'I') t.le = true;
  else if (!(t.b[0] == 'M' && t.b[1] == 'M')) return false;
  uint32_t magic = 0, ifd0 = 0;
  if (!t.u16(2, magic) || magic != 42 || !t.u32(4, ifd0)) return false;
  uint32_t exif_ifd = 0;
  std::string datetime;
  t.ifd(ifd0, [&](uint32_t tag, size_t e) {
    if (tag == 0x010F) out.make = t.ascii(e);
    else if (tag == 0x0110) out.model = t.ascii(e);
    else if (tag == 0x0132) datetime = t.ascii(e);
    else if (tag == 0x8769) t.u32(e + 8, exif_ifd);
  });
  if (exif_ifd && exif_ifd != ifd0) {
    t.ifd(exif_ifd, [&](uint32_t tag, size_t e) {
      if (tag == 0x9003) out.date = t.ascii(e);
    });
  }
  if (out.date.empty()) out.date = datetime;
  return true;
}

int exif_layout_score(const uint8_t* p, size_t n) {
  if (n < 14 || std::memcmp(p, "Exif\0\0", 6) != 0) return 0;
  Tiff t{p + 6, n - 6, false};
  if (t.b[0] == 'I' && t.b[1] == 'I') t.le = true;
  else if (!(t.b[0] == 'M' && t.b[1] == 'M')) return 0;
  uint32_t magic = 0, first = 0;
  if (!t.u16(2, magic) || magic != 42 || !t.u32(4, first)) return 0;
  static const uint8_t kSize[13] = {0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8};
  int score = 0;
  // IFDs to visit (a few: IFD0, IFD1, Exif, GPS, interop), each once.
  uint32_t todo[16] = {first}, seen[16] = {};
  size_t ntodo = 1, nseen = 0;
  while (ntodo > 0 && nseen < 16) {
    const uint32_t off = todo[--ntodo];
    bool again = false;
    for (size_t i = 0; i < nseen; i++) again = again || seen[i] == off;
    if (again) continue;
    seen[nseen++] = off;
    uint32_t count = 0;
    if (!t.u16(off, count) || count == 0 || count > 512 || off + 2 + size_t(count) * 12 + 4 > t.n) {
      score--;
      continue;
    }
    bool types_ok = true;
    for (uint32_t i = 0; i < count; i++) {
      const size_t e = off + 2 + size_t(i) * 12;
      uint32_t tag = 0, type = 0, cnt = 0, val = 0;
      t.u16(e, tag);
      t.u16(e + 2, type);
      t.u32(e + 4, cnt);
      t.u32(e + 8, val);
      if (type == 0 || type > 12) {
        types_ok = false;
        continue;
      }
      const uint64_t bytes = uint64_t(kSize[type]) * cnt;
      if ((tag == 0x8769 || tag == 0x8825 || tag == 0xA005) && ntodo < 16) todo[ntodo++] = val;
      if (tag == 0x0201 && val > 0) score += uint64_t(val) + 2 <= t.n && t.b[val] == 0xFF && t.b[val + 1] == 0xD8 ? 2 : -2;
      if (bytes <= 4) continue;
      if (uint64_t(val) + bytes > t.n) {
        score--;
        continue;
      }
      if (type == 2 && tag != 0x927C) {
        bool text = t.b[val + bytes - 1] == 0;
        for (uint64_t k = 0; text && k + 1 < bytes && t.b[val + k] != 0; k++) text = t.b[val + k] >= 0x20 && t.b[val + k] < 0x7F;
        score += text && t.b[val] != 0 ? 1 : -1;
      }
    }
    score += types_ok ? 1 : -1;
    uint32_t next = 0;
    if (t.u32(off + 2 + size_t(count) * 12, next) && next != 0 && ntodo < 16) todo[ntodo++] = next;
  }
  return score;
}

}  // namespace blocksmith::carve
