// The qcow2 header (versions 2 and 3) and its header extensions, parsed and
// validated against the file size. Everything the reader needs afterwards is
// in Header; an image we cannot read correctly (encryption, external data
// file, unknown incompatible features, dirty/corrupt bit, out-of-range
// fields) is refused here with one clear Error.
// Format reference: QEMU docs/interop/qcow2.txt.
#pragma once

#include <cstdint>
#include <string>

#include "core/pipeline/reader.h"
#include "core/qcow2/decompress.h"

namespace blocksmith::qcow2 {

constexpr uint32_t kMagic = 0x514649fb;  // "QFI\xfb"

// Incompatible feature bits.
constexpr uint64_t kIncompatDirty = 1u << 0;
constexpr uint64_t kIncompatCorrupt = 1u << 1;
constexpr uint64_t kIncompatDataFile = 1u << 2;
constexpr uint64_t kIncompatCompression = 1u << 3;
constexpr uint64_t kIncompatExtendedL2 = 1u << 4;
constexpr uint64_t kIncompatKnown = 0x1f;

// Limits (QEMU's own where it has one).
constexpr uint32_t kMinClusterBits = 9;
constexpr uint32_t kMaxClusterBits = 21;
constexpr uint64_t kMaxL1Bytes = 32u << 20;     // QCOW_MAX_L1_SIZE
constexpr uint32_t kMaxBackingNameBytes = 1023;

struct Header {
  uint32_t version = 0;
  uint32_t cluster_bits = 0;
  uint64_t cluster_size = 0;
  uint64_t size = 0;                 // virtual size, whole 512-byte sectors (as QEMU sees it)
  uint64_t header_size = 0;          // the size field as stored (may not be a multiple of 512)
  uint32_t crypt_method = 0;
  uint32_t l1_size = 0;              // entries
  uint64_t l1_table_offset = 0;
  uint64_t incompatible = 0;
  uint64_t compatible = 0;
  uint64_t autoclear = 0;
  uint32_t refcount_order = 4;
  uint32_t header_length = 72;
  Compression compression = Compression::deflate;
  bool extended_l2 = false;
  uint32_t nb_snapshots = 0;
  std::string backing_file;          // empty: none
  std::string backing_format;        // from the header extension; may be empty
};

// True when the first bytes of `r` are the qcow2 magic.
bool has_qcow2_magic(Reader& r);

// Reads and validates the header; throws blocksmith::Error on anything we
// cannot read faithfully (codes ERR_QCOW2_CORRUPT, ERR_QCOW2_UNSUPPORTED).
Header read_header(Reader& file);

// read_header's steps, each testable on bytes in memory. All throw as
// read_header does; `path` names the image in messages.

// Where the header says the backing file name lies (offset 0: none).
struct BackingNameAt {
  uint64_t offset = 0;
  uint32_t size = 0;
};

// The fixed fields of the first `got` (>= 72) bytes `h` (magic already
// checked): version, cluster size, sizes, and the version 3 fields, each
// checked alone and against the file size `fsize`.
Header parse_header_fields(const uint8_t* h, size_t got, uint64_t fsize, const std::string& path, BackingNameAt& backing);

// Refuses what cannot be read faithfully (encryption, dirty or corrupt bit,
// external data file, inconsistent compression bit); sets extended_l2.
void refuse_unreadable(Header& hd, const std::string& path);

// The L1 table is large enough for the virtual size, bounded, cluster
// aligned and inside the file of `fsize` bytes.
void check_l1_table(const Header& hd, uint64_t fsize, const std::string& path);

}  // namespace blocksmith::qcow2
