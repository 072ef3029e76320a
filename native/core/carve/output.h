// Writing recovered files. Root often carves into directories others can
// write to, so nothing here follows a symlink or replaces an entry:
// - a file is written under a fresh temporary name created with
//   O_CREAT|O_EXCL|O_NOFOLLOW, relative to its directory opened with
//   O_DIRECTORY|O_NOFOLLOW (a planted symlink makes the open fail);
// - it appears under its final name only when all of it is on disk, by a
//   rename that never replaces what is there (renameat2 RENAME_NOREPLACE, or
//   link + unlink on filesystems without it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace blocksmith::carve {

// mkdir (0755) that accepts an existing directory but not a symlink or
// anything else in its place.
void ensure_dir(const std::string& dir);

enum class Written { created, identical };

// Writes `data` to dir/name. An existing dir/name is EEXIST, except that with
// `keep_identical` (a resumed run finding a file again) a regular file holding
// exactly these bytes counts as written: Written::identical.
Written write_file(const std::string& dir, const std::string& name, const uint8_t* data, size_t len,
                   bool keep_identical = false);

// Unlinks out_dir/rel ("name" or "sub/name"), a file this run wrote; `sub`
// must be a real directory (not followed through a symlink).
void remove_file(const std::string& out_dir, const std::string& rel);

}  // namespace blocksmith::carve
