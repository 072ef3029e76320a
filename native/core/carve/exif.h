// The few EXIF fields the report carries: camera make/model and date, read
// from an APP1 "Exif\0\0" payload (TIFF IFD0 and the Exif sub-IFD).
// Bounds-checked; anything malformed just leaves the fields empty.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace blocksmith::carve {

struct ExifFields {
  std::string make, model, date;  // date: DateTimeOriginal, else DateTime ("YYYY:MM:DD HH:MM:SS")
};

// `p`/`n`: the APP1 payload after its length field (starting "Exif\0\0").
bool parse_exif(const uint8_t* p, size_t n, ExifFields& out);

}  // namespace blocksmith::carve
