// Little-endian field access and bounds-checked reads for the on-disk parsers.
// Every read names the structure it wanted, so a truncated or hostile image
// yields a clear Error (code ERR_FS_CORRUPT), never an out-of-range access.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/pipeline/reader.h"

namespace blocksmith::fs {

inline uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline uint32_t le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}
inline uint64_t le64(const uint8_t* p) { return le32(p) | (static_cast<uint64_t>(le32(p + 4)) << 32); }

[[noreturn]] inline void corrupt(const std::string& path, const std::string& what) {
  throw Error(0, "ERR_FS_CORRUPT", "read", path, "'" + path + "': " + what);
}

// Reads exactly len bytes at off, which must lie inside [0, limit) and the
// source. `what` names the structure for the error message.
inline std::vector<uint8_t> read_checked(Reader& r, uint64_t off, uint64_t len, uint64_t limit,
                                         const char* what) {
  uint64_t end = 0;
  if (len > (64u << 20) || __builtin_add_overflow(off, len, &end) || end > limit || end > r.size()) {
    corrupt(r.path(), std::string(what) + " at byte " + std::to_string(off) + " (" + std::to_string(len) +
                          " bytes) lies outside the image or its partition (truncated or corrupt)");
  }
  std::vector<uint8_t> buf(static_cast<size_t>(len));
  if (r.read_at(buf.data(), buf.size(), off) != buf.size()) {
    corrupt(r.path(), std::string(what) + " at byte " + std::to_string(off) + ": short read (truncated image)");
  }
  return buf;
}

}  // namespace blocksmith::fs
