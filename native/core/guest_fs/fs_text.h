// Text and dates as the FAT family stores them, for both readers (fat_dir,
// exfat_dir): UTF-16 names to UTF-8, and calendar dates to days since 1970.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace blocksmith::fs {

// Appends code point `cp` as UTF-8.
void append_utf8(std::string& s, uint32_t cp);

// UTF-16 code units (Windows stores surrogate pairs in long names) to UTF-8;
// a lone surrogate becomes U+FFFD.
std::string utf16_to_utf8(std::u16string_view u);

// Days from 1970-01-01 to y-m-d (proleptic Gregorian; Howard Hinnant's algorithm).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d);

}  // namespace blocksmith::fs
