#include "core/guest_fs/exfat_dir.h"

#include <algorithm>

#include "core/guest_fs/bytes.h"
#include "core/guest_fs/fs_text.h"

namespace blocksmith::fs {

namespace {

// exFAT names and labels as UTF-8, with NUL and '/' (which would cut or
// split a path) as '_'.
std::string exfat_text(const std::u16string& units) {
  std::string s = utf16_to_utf8(units);
  for (char& c : s) {
    if (c == '\0' || c == '/') c = '_';
  }
  return s;
}

// Takes the entry set starting at entry `e` (a File entry) when it is whole
// and its checksum matches; returns the number of entries it spans, 0 if not.
size_t take_set(const uint8_t* e, size_t left, ExfatEntrySet& set) {
  const bool in_use = e[0] & 0x80;
  const size_t secondaries = e[1];
  if (secondaries < 2 || secondaries > 18 || secondaries + 1 > left) return 0;
  for (size_t k = 1; k <= secondaries; ++k) {
    if (((e[k * 32] & 0x80) != 0) != in_use) return 0;
  }
  const uint8_t* st = e + 32;
  if ((st[0] & 0x7F) != 0x40) return 0;
  const size_t name_len = st[3];
  const size_t name_entries = (name_len + 14) / 15;
  if (name_len == 0 || name_entries + 1 > secondaries) return 0;
  for (size_t k = 0; k < name_entries; ++k) {
    if ((e[(2 + k) * 32] & 0x7F) != 0x41) return 0;
  }
  if (exfat_set_checksum(e, secondaries + 1) != le16(e + 2)) return 0;
  set.in_use = in_use;
  set.directory = le16(e + 4) & 0x10;
  set.times.created = exfat_time(le32(e + 8), e[20], e[22]);
  set.times.modified = exfat_time(le32(e + 12), e[21], e[23]);
  set.times.accessed = exfat_time(le32(e + 16), 0, e[24]);
  set.no_fat_chain = st[1] & 0x02;
  set.valid_data_length = le64(st + 8);
  set.first_cluster = le32(st + 20);
  set.data_length = le64(st + 24);
  std::u16string units;
  for (size_t i = 0; i < name_len; ++i) {
    const uint8_t* ne = e + (2 + i / 15) * 32 + 2 + (i % 15) * 2;
    units.push_back(static_cast<char16_t>(le16(ne)));
  }
  set.name = exfat_text(units);
  // "." and ".." are not names exFAT allows; keep them from meaning a path step.
  if (set.name == "." || set.name == "..") set.name = std::string(set.name.size(), '_');
  return secondaries + 1;
}

}  // namespace

uint16_t exfat_set_checksum(const uint8_t* entries, size_t count) {
  uint16_t sum = 0;
  for (size_t i = 0; i < count * 32; ++i) {
    if (i == 2 || i == 3) continue;
    uint8_t b = entries[i];
    if (i % 32 == 0) b |= 0x80;
    sum = static_cast<uint16_t>(((sum & 1) ? 0x8000 : 0) + (sum >> 1) + b);
  }
  return sum;
}

Timestamp exfat_time(uint32_t stamp, uint8_t ten_ms, uint8_t utc_offset) {
  Timestamp t;
  if (stamp == 0) return t;
  const unsigned sec = (stamp & 31) * 2, min = (stamp >> 5) & 63, hour = (stamp >> 11) & 31;
  const unsigned day = (stamp >> 16) & 31, month = (stamp >> 21) & 15, year = 1980 + (stamp >> 25);
  if (sec > 59 || min > 59 || hour > 23 || day < 1 || day > 31 || month < 1 || month > 12) return t;
  t.known = true;
  t.seconds = days_from_civil(year, month, day) * 86400 + hour * 3600 + min * 60 + sec;
  if (ten_ms <= 199) {
    t.seconds += ten_ms / 100;
    t.nanoseconds = (ten_ms % 100) * 10000000u;
  }
  if (utc_offset & 0x80) {
    // 7-bit two's complement, in 15-minute steps east of UTC.
    const int quarter_hours = (utc_offset & 0x40) ? static_cast<int>(utc_offset & 0x7F) - 128 : (utc_offset & 0x7F);
    t.seconds -= static_cast<int64_t>(quarter_hours) * 900;
  } else {
    t.local_time = true;
  }
  return t;
}

void parse_exfat_directory(const uint8_t* data, size_t n, ExfatDirectory& out) {
  const size_t count = n / 32;
  for (size_t i = 0; i < count;) {
    const uint8_t* e = data + i * 32;
    const uint8_t type = e[0];
    if ((type & 0x7F) == 0x05) {
      ExfatEntrySet set;
      if (const size_t span = take_set(e, count - i, set)) {
        out.sets.push_back(std::move(set));
        i += span;
        continue;
      }
      ++((type & 0x80) ? out.bad_live : out.rejected);
    } else if (type == 0x81) {
      const int which = e[1] & 1;
      if (!out.has_bitmap[which]) {
        out.has_bitmap[which] = true;
        out.bitmap_cluster[which] = le32(e + 20);
        out.bitmap_length[which] = le64(e + 24);
      }
    } else if (type == 0x82 && !out.has_upcase) {
      out.has_upcase = true;
      out.upcase_cluster = le32(e + 20);
      out.upcase_length = le64(e + 24);
    } else if (type == 0x83 && out.label.empty()) {
      std::u16string units;
      for (size_t k = 0; k < std::min<size_t>(e[1], 11); ++k) units.push_back(static_cast<char16_t>(le16(e + 2 + 2 * k)));
      out.label = exfat_text(units);
    }
    ++i;
  }
}

}  // namespace blocksmith::fs
