#include "core/qcow2/qcow2_header.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "core/base/error.h"
#include "core/qcow2/endian.h"

namespace blocksmith::qcow2 {
namespace {

constexpr uint32_t kExtEnd = 0;
constexpr uint32_t kExtBackingFormat = 0xe2792aca;
constexpr uint32_t kExtFeatureTable = 0x6803f857;
constexpr uint32_t kExtCrypto = 0x0537be77;
constexpr uint32_t kExtDataFile = 0x44415441;

[[noreturn]] void corrupt(const std::string& path, const std::string& why) {
  throw Error(EINVAL, "ERR_QCOW2_CORRUPT", "read", path, "'" + path + "' is not a valid qcow2 image: " + why);
}
[[noreturn]] void unsupported(const std::string& path, const std::string& why) {
  throw Error(ENOTSUP, "ERR_QCOW2_UNSUPPORTED", "open", path, "'" + path + "': " + why);
}

std::string hex(uint64_t v) {
  char b[32];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

// Names of incompatible feature bits from the image's own feature name table.
std::string feature_names(const std::vector<uint8_t>& table, uint64_t bits) {
  std::string out;
  for (int bit = 0; bit < 64; ++bit) {
    if (!(bits & (uint64_t{1} << bit))) continue;
    std::string name;
    for (size_t i = 0; i + 48 <= table.size(); i += 48) {
      if (table[i] == 0 && table[i + 1] == bit) {
        const char* p = reinterpret_cast<const char*>(&table[i + 2]);
        name.assign(p, strnlen(p, 46));
        for (char& ch : name)
          if (ch < 0x20 || ch > 0x7e) ch = '?';
      }
    }
    if (!out.empty()) out += ", ";
    out += "bit " + std::to_string(bit) + (name.empty() ? "" : " (" + name + ")");
  }
  return out;
}

}  // namespace

bool has_qcow2_magic(Reader& r) {
  uint8_t b[4];
  if (r.size() < 4 || r.read_at(b, 4, 0) != 4) return false;
  return be32(b) == kMagic;
}

Header parse_header_fields(const uint8_t* h, size_t got, uint64_t fsize, const std::string& path,
                          BackingNameAt& backing) {
  Header hd;
  hd.version = be32(h + 4);
  if (hd.version != 2 && hd.version != 3) unsupported(path, "qcow2 version " + std::to_string(hd.version) + " is not supported (only 2 and 3)");
  backing.offset = be64(h + 8);
  backing.size = be32(h + 16);
  hd.cluster_bits = be32(h + 20);
  hd.header_size = be64(h + 24);
  // QEMU keeps the virtual size in whole sectors (total_sectors = size / 512):
  // `qemu-img info` shows, and `qemu-img convert` writes, the size rounded
  // down; a copy must hold the same bytes.
  hd.size = hd.header_size / 512 * 512;
  hd.crypt_method = be32(h + 32);
  hd.l1_size = be32(h + 36);
  hd.l1_table_offset = be64(h + 40);
  hd.nb_snapshots = be32(h + 60);

  if (hd.cluster_bits < kMinClusterBits || hd.cluster_bits > kMaxClusterBits)
    corrupt(path, "cluster_bits " + std::to_string(hd.cluster_bits) + " is outside 9..21");
  hd.cluster_size = uint64_t{1} << hd.cluster_bits;

  if (hd.version == 3) {
    if (got < 104) corrupt(path, "the file ends inside the version 3 header");
    hd.incompatible = be64(h + 72);
    hd.compatible = be64(h + 80);
    hd.autoclear = be64(h + 88);
    hd.refcount_order = be32(h + 96);
    hd.header_length = be32(h + 100);
    if (hd.header_length < 104 || hd.header_length % 8 != 0 || hd.header_length > hd.cluster_size)
      corrupt(path, "header length " + std::to_string(hd.header_length) + " is invalid");
    if (hd.refcount_order > 6) corrupt(path, "refcount order " + std::to_string(hd.refcount_order) + " is above 6");
    if (hd.header_length > 104) {
      if (got < 105) corrupt(path, "the file ends inside the header");
      uint8_t ct = h[104];
      if (ct > 1) unsupported(path, "compression type " + std::to_string(ct) + " is unknown (known: 0 zlib, 1 zstd)");
      hd.compression = ct == 1 ? Compression::zstd : Compression::deflate;
    }
  }
  if (hd.header_length > fsize) corrupt(path, "the file ends inside the header");
  return hd;
}

void refuse_unreadable(Header& hd, const std::string& path) {
  if (hd.crypt_method == 1) unsupported(path, "the image is encrypted (AES); encrypted qcow2 images are not supported");
  if (hd.crypt_method == 2) unsupported(path, "the image is encrypted (LUKS); encrypted qcow2 images are not supported");
  if (hd.crypt_method != 0) unsupported(path, "unknown encryption method " + std::to_string(hd.crypt_method));
  if (hd.incompatible & kIncompatCorrupt)
    unsupported(path, "the image is marked corrupt (run 'qemu-img check -r all' first)");
  if (hd.incompatible & kIncompatDirty)
    unsupported(path, "the image is marked dirty (not closed cleanly; run 'qemu-img check -r all' first)");
  if (hd.incompatible & kIncompatDataFile)
    unsupported(path, "the image keeps its data in an external data file, which is not supported");
  if ((hd.compression == Compression::zstd) != bool(hd.incompatible & kIncompatCompression))
    corrupt(path, "the compression type and its incompatible feature bit disagree");
  hd.extended_l2 = hd.incompatible & kIncompatExtendedL2;
  if (hd.extended_l2 && hd.cluster_bits < 14)
    corrupt(path, "extended L2 entries need clusters of at least 16 KiB");
}

namespace {

// Header extensions: from the end of the header to the backing file name
// (or the end of the first cluster). Sets the backing format; returns the
// feature name table (empty without one).
std::vector<uint8_t> read_extensions(Reader& file, Header& hd, uint64_t backing_offset) {
  const std::string& path = file.path();
  std::vector<uint8_t> feature_table;
  uint64_t ext_end = backing_offset ? backing_offset : hd.cluster_size;
  ext_end = std::min<uint64_t>({ext_end, hd.cluster_size, file.size()});
  uint64_t pos = hd.version == 3 ? hd.header_length : 72;
  while (pos + 8 <= ext_end) {
    uint8_t eh[8];
    if (file.read_at(eh, 8, pos) != 8) corrupt(path, "short read of a header extension");
    uint32_t type = be32(eh), len = be32(eh + 4);
    pos += 8;
    if (type == kExtEnd) break;
    if (len > ext_end - pos) corrupt(path, "header extension " + hex(type) + " is longer than the header cluster");
    std::vector<uint8_t> data(len);
    if (len && file.read_at(data.data(), len, pos) != len) corrupt(path, "short read of a header extension");
    if (type == kExtBackingFormat) {
      hd.backing_format.assign(data.begin(), data.end());  // may be empty
      hd.backing_format.resize(std::min(hd.backing_format.size(), hd.backing_format.find('\0')));
    } else if (type == kExtFeatureTable) {
      feature_table = std::move(data);
    } else if (type == kExtCrypto) {
      unsupported(path, "the image is encrypted (LUKS); encrypted qcow2 images are not supported");
    } else if (type == kExtDataFile) {
      // Only meaningful with the data-file incompatible bit (refused above).
    }
    pos += (uint64_t{len} + 7) & ~uint64_t{7};
  }
  return feature_table;
}

void read_backing_name(Reader& file, Header& hd, const BackingNameAt& at) {
  const std::string& path = file.path();
  if (at.size > kMaxBackingNameBytes) corrupt(path, "the backing file name is longer than 1023 bytes");
  if (at.offset > hd.cluster_size || at.size > hd.cluster_size - at.offset || at.offset + at.size > file.size())
    corrupt(path, "the backing file name lies outside the header cluster");
  hd.backing_file.resize(at.size);
  if (at.size && file.read_at(hd.backing_file.data(), at.size, at.offset) != at.size)
    corrupt(path, "short read of the backing file name");
  if (hd.backing_file.find('\0') != std::string::npos) corrupt(path, "the backing file name contains a NUL byte");
}

}  // namespace

void check_l1_table(const Header& hd, uint64_t fsize, const std::string& path) {
  const uint64_t l2_entries = hd.cluster_size / (hd.extended_l2 ? 16 : 8);
  const uint64_t span = hd.cluster_size * l2_entries;  // bytes one L1 entry maps (<= 2^39)
  // (QEMU checks the L1 size against the size as stored.)
  const uint64_t needed = hd.header_size / span + (hd.header_size % span != 0);
  if (uint64_t{hd.l1_size} * 8 > kMaxL1Bytes)
    corrupt(path, "the L1 table has " + std::to_string(hd.l1_size) + " entries, more than the 32 MiB qcow2 allows");
  if (needed > hd.l1_size)
    corrupt(path, "the L1 table (" + std::to_string(hd.l1_size) + " entries) is too small for the virtual size " +
                      std::to_string(hd.header_size));
  if (hd.l1_size) {
    if (hd.l1_table_offset % hd.cluster_size != 0) corrupt(path, "the L1 table offset " + hex(hd.l1_table_offset) + " is not cluster aligned");
    if (hd.l1_table_offset > fsize || uint64_t{hd.l1_size} * 8 > fsize - hd.l1_table_offset)
      corrupt(path, "the L1 table at " + hex(hd.l1_table_offset) + " lies past the end of the file (" + std::to_string(fsize) + " bytes)");
  }
}

Header read_header(Reader& file) {
  const std::string& path = file.path();
  const uint64_t fsize = file.size();
  if (fsize < 72) corrupt(path, "the file has " + std::to_string(fsize) + " bytes, less than a qcow2 header");
  uint8_t h[112] = {};
  size_t got = file.read_at(h, static_cast<size_t>(std::min<uint64_t>(sizeof h, fsize)), 0);
  if (got < 72) corrupt(path, "short read of the header");
  if (be32(h) != kMagic) corrupt(path, "no qcow2 magic");

  BackingNameAt backing;
  Header hd = parse_header_fields(h, got, fsize, path, backing);
  refuse_unreadable(hd, path);
  std::vector<uint8_t> feature_table = read_extensions(file, hd, backing.offset);
  if (hd.incompatible & ~kIncompatKnown) {
    unsupported(path, "unknown incompatible features: " + feature_names(feature_table, hd.incompatible & ~kIncompatKnown));
  }
  if (backing.offset) read_backing_name(file, hd, backing);
  check_l1_table(hd, fsize, path);
  return hd;
}

}  // namespace blocksmith::qcow2
