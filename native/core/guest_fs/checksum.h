// Checksums of on-disk formats, raw (no pre/post inversion unless stated):
// crc16 (ext4 gdt_csum: CRC-16/ARC update), crc32c (ext4 metadata_csum:
// Castagnoli, as e2fsprogs' ext2fs_crc32c_le), crc32 (GPT: the zlib CRC-32,
// with the usual inversions).
#pragma once

#include <cstddef>
#include <cstdint>

namespace blocksmith::fs {

uint16_t crc16_update(uint16_t crc, const void* data, size_t len);
uint32_t crc32c_update(uint32_t crc, const void* data, size_t len);
uint32_t crc32(const void* data, size_t len);

}  // namespace blocksmith::fs
