// FAT directory entries (32 bytes each): 8.3 names (OEM code page 437),
// VFAT long names (UCS-2 parts before the 8.3 entry, tied to it by a
// checksum), attributes, first cluster, size and times. Deleted entries
// (first byte 0xE5) are decoded too: their long-name parts have lost their
// sequence numbers, so they are taken in order back from the 8.3 entry
// while their checksums agree, and the checksum restores the 8.3 name's
// lost first character.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/guest_fs/volume_files.h"

namespace blocksmith::fs {

constexpr uint8_t kAttrReadOnly = 0x01, kAttrHidden = 0x02, kAttrSystem = 0x04, kAttrVolume = 0x08,
                  kAttrDirectory = 0x10, kAttrArchive = 0x20, kAttrLongName = 0x0F;

struct FatDirEntry {
  std::string name;  // long name, else the 8.3 name ('_' for a deleted entry's lost first byte
                     // when no long name restores it)
  bool deleted = false;
  bool directory = false;
  bool long_name = false;   // `name` came from VFAT long-name entries
  bool first_char_lost = false;  // deleted 8.3 name: its first character is '_' (lost)
  uint8_t attr = 0;
  uint32_t first_cluster = 0;  // FAT32: high word included
  uint32_t size = 0;
  FileTimes times;
  uint64_t entry_offset = 0;  // source byte offset of the 8.3 entry
};

// Feeds a directory's 32-byte entries in order (clusters one after another)
// and yields its files: everything but free slots, '.', '..', volume labels
// and orphan long-name parts.
class FatDirParser {
 public:
  explicit FatDirParser(bool fat32) : fat32_(fat32) {}
  enum class Step { none, entry, end };
  // Step::entry: `out` holds a file or directory; Step::end: the 0x00 marker
  // (no entries follow in this directory).
  Step feed(const uint8_t* e, uint64_t entry_offset, FatDirEntry& out);
  // A volume label entry seen (live), as stored.
  const std::string& label() const { return label_; }

 private:
  // A long-name part (attribute 0x0F) of a live or a deleted name.
  void add_live_part(const uint8_t* e);
  void add_deleted_part(const uint8_t* e);
  // Whether the parts gathered name the 8.3 entry `name` (11 bytes): all
  // there, deleted alike, and carrying its checksum. A deleted name gets its
  // lost first byte back in name[0].
  bool parts_name(uint8_t* name, bool deleted) const;

  bool fat32_;
  std::vector<std::u16string> parts_;  // long-name parts in disk order
  std::vector<uint8_t> part_ords_;
  uint8_t part_sum_ = 0;
  std::string label_;
};

// The VFAT checksum of an 8.3 name (its 11 bytes as stored), which every
// long-name part of the entry carries.
uint8_t lfn_checksum(const uint8_t* name11);

// The first byte of a deleted 8.3 name (a delete overwrites it with 0xE5):
// the one value that gives the long-name parts' checksum `sum`, if it is a
// character a short name can start with; else 0.
uint8_t restore_first_char(const uint8_t* name11, uint8_t sum);

// An 8.3 name (11 bytes as stored) in UTF-8: code page 437, padding off,
// "BASE.EXT" (no dot without an extension), a leading 0x05 read as 0xE5, and
// NT's lower-case flags (byte 12 of the entry: 0x08 base, 0x10 extension)
// applied. `first_lost`: the first character is shown as '_'.
std::string short_name(const uint8_t* name11, uint8_t nt_flags, bool first_lost);

// True when the `len` bytes at p read as directory entries up to the end
// marker (every entry before it has sane attributes and name bytes): a
// deleted directory's later clusters are taken while this holds.
bool looks_like_directory(const uint8_t* p, size_t len);

// True when the first two entries are '.' (pointing at `cluster`) and '..':
// the first cluster of a (deleted) subdirectory that is still intact.
bool starts_directory(const uint8_t* p, size_t len, uint32_t cluster, bool fat32);

// A FAT date (and time, and 10 ms units) as a local-time Timestamp;
// unknown when the date is 0 or any field is out of range.
Timestamp fat_timestamp(uint16_t date, uint16_t time, uint8_t tenths);

}  // namespace blocksmith::fs
