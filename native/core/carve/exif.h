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

// How well the payload's TIFF structure holds together where it points into
// itself: +1 for each IFD (IFD0, the next ones, the Exif/GPS/interop ones)
// that has entries of known types, each ASCII value found as printable text
// ending in its NUL, and the thumbnail's offset found at an SOI (+2); -1 for
// each pointer that lands outside the payload or on something else. A
// payload whose bytes were shifted (a block left out or put in at the wrong
// place, reassemble.h) scores lower than the right one wherever its pointers
// cross the shift; 0 when there is no TIFF structure at all.
int exif_layout_score(const uint8_t* p, size_t n);

}  // namespace blocksmith::carve
