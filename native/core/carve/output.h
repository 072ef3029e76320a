// Writing recovered files: a file appears under its final name only when
// all of it is on disk (a temporary name, renamed when complete).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace blocksmith::carve {

// mkdir that accepts an existing directory.
void ensure_dir(const std::string& dir);

// Writes `data` to dir/name through dir/.name.part.
void write_file(const std::string& dir, const std::string& name, const uint8_t* data, size_t len);

}  // namespace blocksmith::carve
