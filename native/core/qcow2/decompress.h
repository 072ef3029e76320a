// Decompression of qcow2 compressed clusters: deflate (zlib, raw stream) and
// zstd. Both libraries are loaded at run time (dlopen "libz.so.1",
// "libzstd.so.1", part of every Debian base system) through the few
// declarations in decompress.cc, so the core links against nothing but libc
// and never against Node's bundled zlib. A missing library is a clear Error
// when the first compressed cluster is read, not at load time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace blocksmith::qcow2 {

enum class Compression : uint8_t { deflate = 0, zstd = 1 };

const char* compression_name(Compression c);

// Decompresses `in` (a compressed cluster as stored, possibly followed by
// padding up to its sector) into exactly `out_len` bytes of `out`.
// Throws blocksmith::Error (code ERR_QCOW2_CORRUPT) when the data does not
// decompress to a full cluster, ERR_QCOW2_LIBRARY when the library is missing.
// `what` names the image and cluster for messages.
void decompress_cluster(Compression c, const uint8_t* in, size_t in_len, uint8_t* out, size_t out_len,
                        const std::string& path, const std::string& what);

// Throws ERR_QCOW2_LIBRARY unless the library for `c` can be loaded.
void require_decompressor(Compression c, const std::string& path);

}  // namespace blocksmith::qcow2
