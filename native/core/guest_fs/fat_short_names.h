// The first character of a deleted FAT 8.3 name: a delete overwrites it with
// 0xE5, and without long-name entries nothing on disk says what it was. A
// camera names its files on a pattern (IMG_0001.JPG, DSC_0042.JPG), so when
// the live short names of the same shape (same length, same extension, the
// same next three characters) in the same directory, or else anywhere on the
// volume, all begin with one character, that character is taken, and the
// file says the name was guessed. Where they disagree or none exist, the
// character stays '_' (what sleuthkit and TestDisk show).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/guest_fs/volume_files.h"

namespace blocksmith::fs {

class ShortNameGuesser {
 public:
  // A live file's 8.3 name (not a long name) in directory `dir`.
  void add_live(const std::string& dir, const std::string& name);
  // A deleted file whose 8.3 name lost its first character (stored as '_');
  // `index` is its place in VolumeFiles::deleted.
  void add_lost(size_t index, const std::string& dir, const std::string& name);
  // Restores the first characters it can (path's last component, and
  // name_guessed); the paths of files inside a deleted directory whose name
  // changed follow it.
  void apply(std::vector<DeletedFile>& deleted) const;

 private:
  struct Seen {
    char first = 0;
    bool conflict = false;
  };
  static std::string shape(const std::string& name);
  void note(const std::string& key, char first);
  std::map<std::string, Seen> seen_;
  struct Lost {
    size_t index;
    std::string dir, name;
  };
  std::vector<Lost> lost_;
};

}  // namespace blocksmith::fs
