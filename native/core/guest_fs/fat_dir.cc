#include "core/guest_fs/fat_dir.h"

#include <cstring>

#include "core/guest_fs/bytes.h"
#include "core/guest_fs/fs_text.h"

namespace blocksmith::fs {
namespace {

// OEM code page 437, bytes 0x80-0xFF (what DOS, Windows and mtools use by default).
constexpr char16_t kCp437High[128] = {
    0x00C7, 0x00FC, 0x00E9, 0x00E2, 0x00E4, 0x00E0, 0x00E5, 0x00E7, 0x00EA, 0x00EB, 0x00E8, 0x00EF, 0x00EE, 0x00EC, 0x00C4, 0x00C5,
    0x00C9, 0x00E6, 0x00C6, 0x00F4, 0x00F6, 0x00F2, 0x00FB, 0x00F9, 0x00FF, 0x00D6, 0x00DC, 0x00A2, 0x00A3, 0x00A5, 0x20A7, 0x0192,
    0x00E1, 0x00ED, 0x00F3, 0x00FA, 0x00F1, 0x00D1, 0x00AA, 0x00BA, 0x00BF, 0x2310, 0x00AC, 0x00BD, 0x00BC, 0x00A1, 0x00AB, 0x00BB,
    0x2591, 0x2592, 0x2593, 0x2502, 0x2524, 0x2561, 0x2562, 0x2556, 0x2555, 0x2563, 0x2551, 0x2557, 0x255D, 0x255C, 0x255B, 0x2510,
    0x2514, 0x2534, 0x252C, 0x251C, 0x2500, 0x253C, 0x255E, 0x255F, 0x255A, 0x2554, 0x2569, 0x2566, 0x2560, 0x2550, 0x256C, 0x2567,
    0x2568, 0x2564, 0x2565, 0x2559, 0x2558, 0x2552, 0x2553, 0x256B, 0x256A, 0x2518, 0x250C, 0x2588, 0x2584, 0x258C, 0x2590, 0x2580,
    0x03B1, 0x00DF, 0x0393, 0x03C0, 0x03A3, 0x03C3, 0x00B5, 0x03C4, 0x03A6, 0x0398, 0x03A9, 0x03B4, 0x221E, 0x03C6, 0x03B5, 0x2229,
    0x2261, 0x00B1, 0x2265, 0x2264, 0x2320, 0x2321, 0x00F7, 0x2248, 0x00B0, 0x2219, 0x00B7, 0x221A, 0x207F, 0x00B2, 0x25A0, 0x00A0,
};

void put_oem(std::string& s, uint8_t c) { append_utf8(s, c < 0x80 ? c : kCp437High[c - 0x80]); }

bool invalid_short_char(uint8_t c) {
  return c < 0x20 || std::strchr("\"*+,./:;<=>?[\\]|", c) != nullptr || (c >= 'a' && c <= 'z');
}

constexpr int kLfnOffsets[13] = {1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30};

std::u16string lfn_part(const uint8_t* e) {
  std::u16string s;
  for (int off : kLfnOffsets) s += static_cast<char16_t>(le16(e + off));
  return s;
}

bool has_terminator(const std::u16string& part) {
  for (char16_t c : part) {
    if (c == 0) return true;
  }
  return false;
}

// A live volume label entry's 11 bytes, trailing spaces off.
std::string volume_label(const uint8_t* e) {
  std::string label;
  for (int i = 0; i < 11; ++i) put_oem(label, e[i]);
  while (!label.empty() && label.back() == ' ') label.pop_back();
  return label;
}

// The long name from its parts (gathered in disk order, last part first),
// up to its terminator; "" when it has no characters.
std::string join_long_name(const std::vector<std::u16string>& parts) {
  std::u16string u;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) u += *it;
  const size_t end = u.find(char16_t(0));
  if (end != std::u16string::npos) u.resize(end);
  return u.empty() ? std::string() : utf16_to_utf8(u);
}

// An 8.3 entry's fields but its name.
FatDirEntry entry_fields(const uint8_t* e, uint64_t entry_offset, bool fat32) {
  FatDirEntry out;
  out.deleted = e[0] == 0xE5;
  out.attr = e[11];
  out.directory = (e[11] & kAttrDirectory) != 0;
  out.entry_offset = entry_offset;
  out.first_cluster = le16(e + 26) | (fat32 ? uint32_t(le16(e + 20)) << 16 : 0);
  out.size = le32(e + 28);
  out.times.created = fat_timestamp(le16(e + 16), le16(e + 14), e[13]);
  out.times.modified = fat_timestamp(le16(e + 24), le16(e + 22), 0);
  out.times.accessed = fat_timestamp(le16(e + 18), 0, 0);
  return out;
}

}  // namespace

Timestamp fat_timestamp(uint16_t date, uint16_t time, uint8_t tenths) {
  Timestamp t;
  if (date == 0) return t;
  const unsigned year = 1980 + (date >> 9), month = (date >> 5) & 15, day = date & 31;
  const unsigned hour = time >> 11, minute = (time >> 5) & 63, second = (time & 31) * 2;
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 58 || tenths > 199) return t;
  t.known = true;
  t.local_time = true;
  t.seconds = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second + tenths / 100;
  t.nanoseconds = (tenths % 100) * 10'000'000u;
  return t;
}

uint8_t lfn_checksum(const uint8_t* name11) {
  uint8_t sum = 0;
  for (int i = 0; i < 11; ++i) sum = static_cast<uint8_t>(((sum & 1) << 7) + (sum >> 1) + name11[i]);
  return sum;
}

uint8_t restore_first_char(const uint8_t* name11, uint8_t sum) {
  uint8_t name[11];
  std::memcpy(name, name11, 11);
  for (int c = 1; c < 256; ++c) {
    name[0] = static_cast<uint8_t>(c);
    if (lfn_checksum(name) == sum && c != 0xE5 && c != ' ' && (c == 0x05 || !invalid_short_char(c))) return name[0];
  }
  return 0;
}

std::string short_name(const uint8_t* name11, uint8_t nt_flags, bool first_lost) {
  const bool lower_base = nt_flags & 0x08, lower_ext = nt_flags & 0x10;
  std::string base, ext;
  for (int i = 0; i < 8; ++i) {
    uint8_t c = name11[i];
    if (i == 0 && first_lost) {
      base += '_';
      continue;
    }
    if (i == 0 && c == 0x05) c = 0xE5;  // 0xE5 is a real first character stored as 0x05
    if (lower_base && c >= 'A' && c <= 'Z') c += 32;
    put_oem(base, c);
  }
  for (int i = 8; i < 11; ++i) {
    uint8_t c = name11[i];
    if (lower_ext && c >= 'A' && c <= 'Z') c += 32;
    put_oem(ext, c);
  }
  while (!base.empty() && base.back() == ' ') base.pop_back();
  while (!ext.empty() && ext.back() == ' ') ext.pop_back();
  return ext.empty() ? base : base + "." + ext;
}

FatDirParser::Step FatDirParser::feed(const uint8_t* e, uint64_t entry_offset, FatDirEntry& out) {
  const uint8_t first = e[0], attr = e[11];
  if (first == 0x00) {
    parts_.clear();
    return Step::end;
  }
  const bool deleted = first == 0xE5;
  if ((attr & 0x3F) == kAttrLongName) {
    if (deleted) add_deleted_part(e);
    else add_live_part(e);
    return Step::none;
  }
  // The parts gathered so far name this entry or none.
  std::vector<std::u16string> parts;
  parts.swap(parts_);
  if (attr & kAttrVolume) {
    if (!deleted) label_ = volume_label(e);
    return Step::none;
  }
  if (first == '.') return Step::none;  // '.' and '..'
  uint8_t name[11];
  std::memcpy(name, e, 11);
  const bool long_ok = !parts.empty() && parts_name(name, deleted);
  out = entry_fields(e, entry_offset, fat32_);
  if (long_ok) {
    out.name = join_long_name(parts);
    if (!out.name.empty()) {
      out.long_name = true;
      return Step::entry;
    }
  }
  out.first_char_lost = deleted && !long_ok;
  out.name = short_name(name, e[12], out.first_char_lost);
  return Step::entry;
}

void FatDirParser::add_live_part(const uint8_t* e) {
  const uint8_t first = e[0], ord = first & 0x3F, sum = e[13];
  if (ord == 0 || ord > 20 || (first & 0x80)) {
    parts_.clear();
  } else if (first & 0x40) {  // the name's last part, stored first: a new name starts
    parts_.assign(1, lfn_part(e));
    part_ords_.assign(1, ord);
    part_sum_ = sum;
  } else if (!parts_.empty() && part_ords_.back() != 0xE5 && part_ords_.back() == ord + 1 && sum == part_sum_) {
    parts_.push_back(lfn_part(e));
    part_ords_.push_back(ord);
  } else {
    parts_.clear();  // an orphan part: its start was overwritten
  }
}

void FatDirParser::add_deleted_part(const uint8_t* e) {
  // The sequence numbers are gone: a part holding the name's terminator
  // (or a checksum change) starts a new name.
  std::u16string part = lfn_part(e);
  const uint8_t sum = e[13];
  const bool continues = !parts_.empty() && part_ords_.back() == 0xE5 && sum == part_sum_ && !has_terminator(part) &&
                         parts_.size() < 20;
  if (!continues) {
    parts_.clear();
    part_ords_.clear();
    part_sum_ = sum;
  }
  parts_.push_back(std::move(part));
  part_ords_.push_back(0xE5);
}

bool FatDirParser::parts_name(uint8_t* name, bool deleted) const {
  if (part_ords_.empty()) return false;
  const bool parts_deleted = part_ords_.back() == 0xE5;
  const bool parts_complete = part_ords_.back() == 1 || parts_deleted;
  if (!parts_complete || parts_deleted != deleted) return false;
  if (!deleted) return lfn_checksum(name) == part_sum_;
  const uint8_t c = restore_first_char(name, part_sum_);
  if (c != 0) name[0] = c;
  return c != 0;
}

bool looks_like_directory(const uint8_t* p, size_t len) {
  for (size_t off = 0; off + 32 <= len; off += 32) {
    const uint8_t* e = p + off;
    if (e[0] == 0x00) return true;
    const uint8_t attr = e[11];
    if ((attr & 0x3F) == kAttrLongName) {
      if (e[12] != 0 || le16(e + 26) != 0) return false;
      const uint8_t ord = e[0] & ~0x40;
      if (e[0] != 0xE5 && (ord == 0 || ord > 20)) return false;
      continue;
    }
    if (attr & 0xC0) return false;
    const bool dot = e[0] == '.';
    for (int i = 0; i < 11; ++i) {
      const uint8_t c = e[i];
      if (i == 0 && (c == 0xE5 || c == 0x05 || c == '.')) continue;
      if (i == 1 && dot && c == '.') continue;
      if (i == 0 && c == ' ') return false;
      if (invalid_short_char(c)) return false;
    }
  }
  return true;
}

bool starts_directory(const uint8_t* p, size_t len, uint32_t cluster, bool fat32) {
  if (len < 64) return false;
  if (std::memcmp(p, ".          ", 11) != 0 || std::memcmp(p + 32, "..         ", 11) != 0) return false;
  if (!(p[11] & kAttrDirectory) || !(p[32 + 11] & kAttrDirectory)) return false;
  const uint32_t self = le16(p + 26) | (fat32 ? uint32_t(le16(p + 20)) << 16 : 0);
  return self == cluster;
}

}  // namespace blocksmith::fs
