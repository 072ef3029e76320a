// Signature search: where a JPEG may start. FF D8 FF followed by a marker
// that can open a JPEG (APPn, DQT, DHT, SOFn, DRI, COM). memchr-driven
// (glibc's memchr is SIMD), so plain data runs at memory speed.
#pragma once

#include <cstddef>
#include <cstdint>

namespace blocksmith::carve {

// True when the 4 bytes at p can start a JPEG (FF D8 FF xx, xx a marker a
// JPEG may begin with).
bool is_soi_candidate(const uint8_t* p);

// The first offset i in [from, n - 3) of a candidate (needs 4 bytes), or
// SIZE_MAX. With `align` > 1, only offsets where (base + i) % align == 0.
size_t find_soi(const uint8_t* data, size_t n, size_t from, uint64_t base = 0, uint32_t align = 1);

}  // namespace blocksmith::carve
