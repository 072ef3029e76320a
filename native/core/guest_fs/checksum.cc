#include "core/guest_fs/checksum.h"

#include <array>

namespace blocksmith::fs {
namespace {

template <typename T, T Poly>
constexpr std::array<T, 256> make_table() {
  std::array<T, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    T c = static_cast<T>(i);
    for (int k = 0; k < 8; ++k) c = (c & 1) ? static_cast<T>((c >> 1) ^ Poly) : static_cast<T>(c >> 1);
    t[i] = c;
  }
  return t;
}

constexpr auto kCrc16 = make_table<uint16_t, 0xA001>();
constexpr auto kCrc32c = make_table<uint32_t, 0x82F63B78u>();
constexpr auto kCrc32 = make_table<uint32_t, 0xEDB88320u>();

}  // namespace

uint16_t crc16_update(uint16_t crc, const void* data, size_t len) {
  auto p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < len; ++i) crc = static_cast<uint16_t>((crc >> 8) ^ kCrc16[(crc ^ p[i]) & 0xff]);
  return crc;
}

uint32_t crc32c_update(uint32_t crc, const void* data, size_t len) {
  auto p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < len; ++i) crc = (crc >> 8) ^ kCrc32c[(crc ^ p[i]) & 0xff];
  return crc;
}

uint32_t crc32(const void* data, size_t len) {
  auto p = static_cast<const uint8_t*>(data);
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < len; ++i) crc = (crc >> 8) ^ kCrc32[(crc ^ p[i]) & 0xff];
  return ~crc;
}

}  // namespace blocksmith::fs
