// The qcow2 reader on images built byte by byte in memory: cluster kinds,
// extended L2 subclusters, the data map, and refusals of hostile headers
// and tables (real images made by qemu-img are covered by test/qcow2.test.ts).
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "core/base/error.h"
#include "core/readers/memory_reader.h"
#include "core/qcow2/qcow2_reader.h"
#include "test.h"

using namespace blocksmith;
using namespace blocksmith::qcow2;

namespace {

void put32(std::vector<uint8_t>& b, size_t off, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[off + i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}
void put64(std::vector<uint8_t>& b, size_t off, uint64_t v) {
  put32(b, off, static_cast<uint32_t>(v >> 32));
  put32(b, off + 4, static_cast<uint32_t>(v));
}

// A v3 image with 4 KiB clusters: cluster 0 header, 1 L1, 2 L2, data from 3.
// Virtual size 8 clusters; `l2` holds the entries (extended: pairs).
struct Image {
  static constexpr uint64_t cs = 4096;
  std::vector<uint8_t> bytes;
  bool extended = false;
  explicit Image(bool ext = false, uint32_t cluster_bits = 12) : extended(ext) {
    const uint64_t c = uint64_t{1} << cluster_bits;
    bytes.assign(c * 3, 0);
    put32(bytes, 0, kMagic);
    put32(bytes, 4, 3);
    put32(bytes, 20, cluster_bits);
    put64(bytes, 24, 8 * c);  // size
    put32(bytes, 36, 1);      // l1_size
    put64(bytes, 40, c);      // l1 offset
    put64(bytes, 72, ext ? kIncompatExtendedL2 : 0);
    put32(bytes, 96, 4);
    put32(bytes, 100, 112);
    put64(bytes, c, 2 * c);   // L1[0] -> L2 at cluster 2
  }
  uint64_t c() const { return uint64_t{1} << (bytes[23]); }
  // Appends a data cluster filled with `fill`; returns its host offset.
  uint64_t add_cluster(uint8_t fill) {
    uint64_t off = bytes.size();
    bytes.resize(off + c(), fill);
    return off;
  }
  void l2(size_t index, uint64_t entry, uint64_t bitmap = 0) {
    const size_t w = extended ? 16 : 8;
    put64(bytes, 2 * c() + index * w, entry);
    if (extended) put64(bytes, 2 * c() + index * w + 8, bitmap);
  }
};

std::unique_ptr<Qcow2Reader> open(const Image& img) {
  auto mem = std::make_unique<MemoryReader>(img.bytes.data(), img.bytes.size(), "t.qcow2");
  return std::make_unique<Qcow2Reader>(std::move(mem), nullptr);
}

std::string error_code(const Image& img) {
  try {
    auto r = open(img);
    std::vector<uint8_t> buf(r->size());
    r->read_at(buf.data(), buf.size(), 0);
    for (uint64_t off = 0; off < r->size();) off = r->next_data(off).end;
  } catch (const Error& e) {
    return e.code();
  }
  return "";
}

}  // namespace

TEST("qcow2: standard, zero and unallocated clusters read back; only data clusters are data") {
  Image img;
  uint64_t a = img.add_cluster(0xab), b = img.add_cluster(0xcd);
  img.l2(1, a | (1ull << 63));
  img.l2(2, b);
  img.l2(4, 1);              // zero cluster (plain)
  img.l2(5, a | 1);          // zero cluster with an allocation: still zeros
  auto r = open(img);
  CHECK_EQ(r->size(), 8 * Image::cs);
  std::vector<uint8_t> buf(r->size());
  CHECK_EQ(r->read_at(buf.data(), buf.size(), 0), buf.size());
  for (uint64_t i = 0; i < buf.size(); ++i) {
    uint8_t want = i / Image::cs == 1 ? 0xab : i / Image::cs == 2 ? 0xcd : 0;
    if (buf[i] != want) CHECK_EQ(int(buf[i]), int(want));
  }
  DataRange d = r->next_data(0);
  CHECK_EQ(d.begin, Image::cs);
  CHECK_EQ(d.end, 3 * Image::cs);
  CHECK_EQ(r->next_data(3 * Image::cs).begin, r->size());
  // A read that starts mid-cluster and spans kinds.
  uint8_t small[6000];
  CHECK_EQ(r->read_at(small, sizeof small, Image::cs + 4000), sizeof small);
  CHECK_EQ(int(small[0]), 0xab);
  CHECK_EQ(int(small[95]), 0xab);
  CHECK_EQ(int(small[96]), 0xcd);
  CHECK_EQ(int(small[96 + 4095]), 0xcd);
  CHECK_EQ(int(small[96 + 4096]), 0);
}

TEST("qcow2: extended L2 subclusters: allocated, zero and unallocated per 1/32 cluster") {
  Image img(true, 14);  // 16 KiB clusters, 512-byte subclusters
  uint64_t a = img.add_cluster(0x5a);
  // subclusters 0-1 allocated, 2 zero, 3 unallocated, 4 allocated
  img.l2(0, a, 0b10011ull | (0b100ull << 32));
  img.l2(1, 0, 0xffffffffull << 32);  // all zero, no host cluster
  auto r = open(img);
  std::vector<uint8_t> buf(3 * 512 + 2 * 512);
  r->read_at(buf.data(), buf.size(), 0);
  CHECK_EQ(int(buf[0]), 0x5a);
  CHECK_EQ(int(buf[1023]), 0x5a);
  CHECK_EQ(int(buf[1024]), 0);
  CHECK_EQ(int(buf[1535]), 0);
  CHECK_EQ(int(buf[2047]), 0);
  CHECK_EQ(int(buf[2048]), 0x5a);
  DataRange d = r->next_data(0);
  CHECK_EQ(d.begin, 0u);
  CHECK_EQ(d.end, 1024u);
  d = r->next_data(1024);
  CHECK_EQ(d.begin, 2048u);
  CHECK_EQ(d.end, 2560u);
  CHECK_EQ(r->next_data(2560).begin, r->size());
}

TEST("qcow2: hostile headers and tables are refused with ERR_QCOW2_* codes, never read out of bounds") {
  {
    Image img;
    put32(img.bytes, 20, 22);  // cluster_bits
    CHECK_EQ(error_code(img), std::string("ERR_QCOW2_CORRUPT"));
  }
  {
    Image img;
    put64(img.bytes, 40, 1ull << 40);  // L1 past EOF
    CHECK_EQ(error_code(img), std::string("ERR_QCOW2_CORRUPT"));
  }
  {
    Image img;
    put32(img.bytes, 36, 5u << 20);  // absurd L1 size
    CHECK_EQ(error_code(img), std::string("ERR_QCOW2_CORRUPT"));
  }
  {
    Image img;
    put64(img.bytes, 24, 1ull << 62);  // virtual size needs a bigger L1
    CHECK_EQ(error_code(img), std::string("ERR_QCOW2_CORRUPT"));
  }
  {
    Image img;
    put64(img.bytes, img.c(), 1ull << 40);  // L2 past EOF
    CHECK_EQ(error_code(img), std::string("ERR_QCOW2_CORRUPT"));
  }
  {
    Image img;
    img.l2(0, 1ull << 40);  // data cluster past EOF
    CHECK_EQ(error_code(img), std::string("ERR_QCOW2_CORRUPT"));
  }
  {
    Image img;
    img.l2(0, 3 * img.c() + 512);  // unaligned data cluster
    CHECK_EQ(error_code(img), std::string("ERR_QCOW2_CORRUPT"));
  }
  {
    Image img;
    img.l2(0, (1ull << 62) | (1ull << 40));  // compressed cluster past EOF
    CHECK_EQ(error_code(img), std::string("ERR_QCOW2_CORRUPT"));
  }
  for (uint64_t bit : std::vector<uint64_t>{kIncompatDirty, kIncompatCorrupt, kIncompatDataFile, uint64_t{1} << 9}) {
    Image img;
    put64(img.bytes, 72, bit);
    CHECK_EQ(error_code(img), std::string("ERR_QCOW2_UNSUPPORTED"));
  }
  {
    Image img;
    put32(img.bytes, 32, 2);  // LUKS
    CHECK_EQ(error_code(img), std::string("ERR_QCOW2_UNSUPPORTED"));
  }
  {
    Image img;
    img.bytes.resize(60);  // truncated header
    CHECK_EQ(error_code(img), std::string("ERR_QCOW2_CORRUPT"));
  }
  {
    Image img;
    put64(img.bytes, 8, 200);  // backing file without an opener
    put32(img.bytes, 16, 4);
    std::memcpy(&img.bytes[200], "base", 4);
    CHECK_EQ(error_code(img), std::string("ERR_QCOW2_UNSUPPORTED"));
  }
  {
    Image img;  // a header extension longer than the header cluster
    put32(img.bytes, 112, 0x12345678);
    put32(img.bytes, 116, 1u << 20);
    CHECK_EQ(error_code(img), std::string("ERR_QCOW2_CORRUPT"));
  }
}

TEST("qcow2: a version 2 image with a zero flag is corrupt") {
  Image img;
  put32(img.bytes, 4, 2);
  img.l2(0, 1);
  CHECK_EQ(error_code(img), std::string("ERR_QCOW2_CORRUPT"));
}

TEST("qcow2: compressed clusters that do not inflate to a full cluster fail with ERR_QCOW2_CORRUPT (parallel path too)") {
  Image img;
  uint64_t junk = img.add_cluster(0xff);  // 0xff.. is not a valid deflate stream
  const uint64_t compressed = (1ull << 62) | (7ull << 58);  // 8 sectors
  for (size_t i = 0; i < 4; ++i) img.l2(i, compressed | junk);
  auto r = open(img);
  std::vector<uint8_t> buf(4 * Image::cs);
  CHECK_THROWS_CODE(r->read_at(buf.data(), buf.size(), 0), "ERR_QCOW2_CORRUPT");
  CHECK_THROWS_CODE(r->read_at(buf.data(), 100, 10), "ERR_QCOW2_CORRUPT");
  CHECK_EQ(r->next_data(0).begin, 0u);
  CHECK_EQ(r->next_data(0).end, 4 * Image::cs);
}

// A cluster as a raw deflate stream of one stored block (BFINAL, BTYPE 00,
// LEN, NLEN, the bytes): valid input for inflate, made without zlib.
std::vector<uint8_t> stored_deflate(const std::vector<uint8_t>& data) {
  const size_t n = data.size();
  std::vector<uint8_t> z(5 + n);
  z[0] = 1;
  z[1] = static_cast<uint8_t>(n);
  z[2] = static_cast<uint8_t>(n >> 8);
  z[3] = static_cast<uint8_t>(~n);
  z[4] = static_cast<uint8_t>(~n >> 8);
  std::copy(data.begin(), data.end(), z.begin() + 5);
  return z;
}

// The L2 entry of a compressed cluster of `len` bytes at `host`, as QEMU
// writes it (4 KiB clusters: sector count - 1 in bits 58-61).
uint64_t compressed_entry(uint64_t host, uint64_t len) {
  const uint64_t sectors = ((host + len - 1) >> 9) - (host >> 9) + 1;
  return (1ull << 62) | ((sectors - 1) << 58) | host;
}

TEST("qcow2: compressed clusters stored back to back (and apart) read back whole, in parts, and from two threads at once") {
  Image img;
  std::vector<uint8_t> want(8 * Image::cs, 0);
  // Clusters 0-3 packed byte after byte (like qemu-img -c, each sector-rounded
  // size reaching into the next), then a data cluster, then clusters 5-6
  // stored after a 100 KiB gap, and cluster 7 stored before them.
  auto put_compressed = [&](size_t index, uint64_t host) {
    std::vector<uint8_t> data(Image::cs);
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(index * 37 + i * 7 + (i >> 8));
    std::copy(data.begin(), data.end(), want.begin() + index * Image::cs);
    std::vector<uint8_t> z = stored_deflate(data);
    if (img.bytes.size() < host + z.size()) img.bytes.resize(host + z.size(), 0);
    std::copy(z.begin(), z.end(), img.bytes.begin() + host);
    img.l2(index, compressed_entry(host, z.size()));
    return host + z.size();
  };
  uint64_t host = img.bytes.size();
  for (size_t i = 0; i < 4; ++i) host = put_compressed(i, host);
  img.bytes.resize(host + Image::cs - host % Image::cs);
  const uint64_t data = img.add_cluster(0x42);
  img.l2(4, data);
  std::fill(want.begin() + 4 * Image::cs, want.begin() + 5 * Image::cs, 0x42);
  const uint64_t far = img.bytes.size() + 100 * 1024;
  host = put_compressed(7, far);
  host = put_compressed(5, host);
  put_compressed(6, host);
  auto r = open(img);
  CHECK(r->concurrent_reads());
  std::vector<uint8_t> buf(r->size());
  CHECK_EQ(r->read_at(buf.data(), buf.size(), 0), buf.size());
  CHECK(buf == want);
  // Every 1000-byte window (parts of clusters, across cluster edges).
  for (uint64_t off = 0; off < r->size(); off += 1000) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(1000, r->size() - off));
    std::vector<uint8_t> part(n);
    CHECK_EQ(r->read_at(part.data(), n, off), n);
    CHECK(std::equal(part.begin(), part.end(), want.begin() + off));
  }
  // Two threads reading overlapping whole and partial ranges at once.
  bool same[2] = {true, true};
  auto reader = [&](int t) {
    std::vector<uint8_t> b(3 * Image::cs + 512);
    for (int round = 0; round < 200; ++round) {
      const uint64_t off = (round * 3 + t * 5) % 5 * Image::cs + (round % 2) * 512;
      const size_t n = r->read_at(b.data(), b.size(), off);
      if (!std::equal(b.begin(), b.begin() + n, want.begin() + off)) same[t] = false;
      if (r->next_data(off).begin != off) same[t] = false;
    }
  };
  std::thread other(reader, 1);
  reader(0);
  other.join();
  CHECK(same[0]);
  CHECK(same[1]);
}

TEST("qcow2: a virtual size that is not a multiple of 512 rounds down to whole sectors, as in QEMU") {
  Image img;
  put64(img.bytes, 24, 8 * Image::cs - 412);  // stored size: 32356 bytes
  const uint64_t host = img.add_cluster(0xab);
  img.l2(7, host | (uint64_t{1} << 63));
  auto r = open(img);
  CHECK_EQ(r->size(), uint64_t{8 * Image::cs - 512});
  CHECK_EQ(r->header().header_size, uint64_t{8 * Image::cs - 412});
  CHECK_EQ(r->next_data(0).end, uint64_t{8 * Image::cs - 512});  // the data cluster is cut at the rounded end
  std::vector<uint8_t> buf(1024, 0x55);
  CHECK_EQ(r->read_at(buf.data(), buf.size(), 8 * Image::cs - 1024), size_t{512});
  CHECK_EQ(buf[0], 0xab);
}

namespace {
// The message of the Error `fn` throws ("" when it does not throw).
template <typename F>
std::string message_of(F fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST("qcow2 header fields: read as stored, each checked alone against the file size") {
  Image img;
  put64(img.bytes, 8, 4000);  // backing name at 4000, 7 bytes
  put32(img.bytes, 16, 7);
  put64(img.bytes, 24, 8 * 4096 + 100);  // not whole sectors
  BackingNameAt at;
  Header hd = parse_header_fields(img.bytes.data(), 112, img.bytes.size(), "t.qcow2", at);
  CHECK_EQ(hd.version, 3u);
  CHECK_EQ(hd.cluster_size, 4096u);
  CHECK_EQ(hd.header_size, 8u * 4096 + 100);
  CHECK_EQ(hd.size, 8u * 4096 + 0);  // rounded down to sectors, as QEMU does
  CHECK_EQ(hd.l1_size, 1u);
  CHECK_EQ(hd.l1_table_offset, 4096u);
  CHECK_EQ(hd.header_length, 112u);
  CHECK_EQ(at.offset, 4000u);
  CHECK_EQ(at.size, 7u);
  CHECK(hd.compression == Compression::deflate);

  put32(img.bytes, 100, 100);  // header length below 104
  CHECK_EQ(message_of([&] { parse_header_fields(img.bytes.data(), 112, img.bytes.size(), "t.qcow2", at); }),
           std::string("'t.qcow2' is not a valid qcow2 image: header length 100 is invalid"));
  put32(img.bytes, 100, 112);
  CHECK_EQ(message_of([&] { parse_header_fields(img.bytes.data(), 103, img.bytes.size(), "t.qcow2", at); }),
           std::string("'t.qcow2' is not a valid qcow2 image: the file ends inside the version 3 header"));
  CHECK_EQ(message_of([&] { parse_header_fields(img.bytes.data(), 112, 110, "t.qcow2", at); }),
           std::string("'t.qcow2' is not a valid qcow2 image: the file ends inside the header"));
  img.bytes[104] = 2;  // compression type
  CHECK_THROWS_CODE(parse_header_fields(img.bytes.data(), 112, img.bytes.size(), "t.qcow2", at), "ERR_QCOW2_UNSUPPORTED");
  img.bytes[104] = 1;
  hd = parse_header_fields(img.bytes.data(), 112, img.bytes.size(), "t.qcow2", at);
  CHECK(hd.compression == Compression::zstd);
  // ... which needs its incompatible bit.
  CHECK_EQ(message_of([&] { refuse_unreadable(hd, "t.qcow2"); }),
           std::string("'t.qcow2' is not a valid qcow2 image: the compression type and its incompatible feature bit disagree"));
  hd.incompatible |= kIncompatCompression;
  refuse_unreadable(hd, "t.qcow2");
  put32(img.bytes, 4, 4);
  CHECK_EQ(message_of([&] { parse_header_fields(img.bytes.data(), 112, img.bytes.size(), "t.qcow2", at); }),
           std::string("'t.qcow2': qcow2 version 4 is not supported (only 2 and 3)"));
}

TEST("qcow2 L1 table check: big enough for the virtual size, cluster aligned, inside the file") {
  Header hd;
  hd.cluster_size = 4096;  // one L1 entry maps 512 entries of 4 KiB: 2 MiB
  hd.header_size = 4u << 20;
  hd.l1_size = 2;
  hd.l1_table_offset = 4096;
  check_l1_table(hd, 8192, "t.qcow2");
  hd.l1_size = 1;
  CHECK_EQ(message_of([&] { check_l1_table(hd, 8192, "t.qcow2"); }),
           std::string("'t.qcow2' is not a valid qcow2 image: the L1 table (1 entries) is too small for the virtual size 4194304"));
  hd.l1_size = 2;
  hd.extended_l2 = true;  // 16-byte entries: an L1 entry maps half as much
  CHECK_THROWS_CODE(check_l1_table(hd, 8192, "t.qcow2"), "ERR_QCOW2_CORRUPT");
  hd.extended_l2 = false;
  hd.l1_table_offset = 4096 + 512;
  CHECK_EQ(message_of([&] { check_l1_table(hd, 8192, "t.qcow2"); }),
           std::string("'t.qcow2' is not a valid qcow2 image: the L1 table offset 0x1200 is not cluster aligned"));
  hd.l1_table_offset = 8192;
  CHECK_EQ(message_of([&] { check_l1_table(hd, 8200, "t.qcow2"); }),
           std::string("'t.qcow2' is not a valid qcow2 image: the L1 table at 0x2000 lies past the end of the file (8200 bytes)"));
  CHECK_THROWS_CODE(check_l1_table(hd, 8207, "t.qcow2"), "ERR_QCOW2_CORRUPT");
  check_l1_table(hd, 8208, "t.qcow2");  // its 16 bytes end the file
}
