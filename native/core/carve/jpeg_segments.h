// The marker segments check_jpeg (jpeg_check.h) reads before decoding, each
// parsed from its payload (the bytes after the 2-byte length) and checked
// alone: false when the segment is malformed or names what is not there.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/carve/jpeg_types.h"

namespace blocksmith::carve {

// DHT: one or more Huffman tables, built into `t`.
bool parse_dht(const uint8_t* s, size_t n, DecoderTables& t);
// DQT: one or more quantisation tables (8- or 16-bit), stored in `t`.
bool parse_dqt(const uint8_t* s, size_t n, DecoderTables& t);
// SOFn (marker `m`): the frame, its components and MCU grid. Refuses
// progressive frames of more than 2^24 blocks rather than allocate for them.
bool parse_sof(uint8_t m, const uint8_t* s, size_t n, Frame& f);
// SOS: the scan's components (of frame `f`), tables (which must be defined
// in `t`, for a Huffman scan) and spectral selection.
bool parse_sos(const uint8_t* s, size_t n, const Frame& f, const DecoderTables& t, ScanHeader& sc);

}  // namespace blocksmith::carve
