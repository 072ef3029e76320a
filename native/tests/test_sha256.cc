// SHA-256: the SHA-NI code (picked at run time on x86-64 CPUs that have it) and
// the portable code must give the FIPS 180-4 digests and agree on every input.
#include <algorithm>
#include <cstdint>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/carve/sha256.h"
#include "test.h"
#include "test_bytes.h"

using blocksmith::carve::Sha256;
using blocksmith::carve::sha256_hex;
using Bytes = std::vector<uint8_t>;

namespace {

std::string hash(Sha256::Kernel kernel, const std::string& s) {
  Sha256 h(kernel);
  h.update(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  return h.hex();
}

// Feeds b to a Sha256 in pieces cut at the given (sorted) offsets.
std::string hash_split(Sha256::Kernel kernel, const Bytes& b, const std::vector<size_t>& cuts) {
  Sha256 h(kernel);
  size_t at = 0;
  for (size_t cut : cuts) {
    h.update(b.data() + at, cut - at);
    at = cut;
  }
  h.update(b.data() + at, b.size() - at);
  return h.hex();
}

}  // namespace

TEST("sha256: both kernels give the FIPS 180-4 / NIST digests of '', 'abc', the 448- and 896-bit messages, a million 'a'") {
  const std::string m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  const std::string m896 =
      "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
  CHECK_EQ(m448.size() * 8, size_t(448));
  CHECK_EQ(m896.size() * 8, size_t(896));
  for (Sha256::Kernel k : {Sha256::Kernel::Auto, Sha256::Kernel::Portable}) {
    CHECK_EQ(hash(k, ""), std::string("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    CHECK_EQ(hash(k, "abc"), std::string("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    CHECK_EQ(hash(k, m448), std::string("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    CHECK_EQ(hash(k, m896), std::string("cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"));
    CHECK_EQ(hash(k, std::string(1000000, 'a')),
             std::string("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
  }
}

TEST("sha256: the SHA-NI code is used exactly when the CPU lists sha_ni (x86-64 Linux)") {
#if defined(__x86_64__)
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  bool listed = false;
  while (std::getline(cpuinfo, line))
    if (line.rfind("flags", 0) == 0) {
      listed = (line + " ").find(" sha_ni ") != std::string::npos;
      break;
    }
  CHECK_EQ(Sha256::hardware_available(), listed);
#else
  CHECK(!Sha256::hardware_available());
#endif
}

TEST("sha256: random inputs of every length 0..1000, whole and split at random points, hash alike in both kernels") {
  std::mt19937 rng(17);
  for (size_t n = 0; n <= 1000; n++) {
    Bytes b = test_bytes::random_bytes(n, uint32_t(n + 7), 3);
    const std::string portable = hash_split(Sha256::Kernel::Portable, b, {});
    CHECK_EQ(hash_split(Sha256::Kernel::Auto, b, {}), portable);
    CHECK_EQ(sha256_hex(b.data(), b.size()), portable);  // libcrypto when installed: a third implementation
    for (int round = 0; round < 3; round++) {
      std::vector<size_t> cuts(rng() % 4);
      for (size_t& c : cuts) c = n == 0 ? 0 : rng() % (n + 1);
      std::sort(cuts.begin(), cuts.end());
      CHECK_EQ(hash_split(Sha256::Kernel::Auto, b, cuts), portable);
      CHECK_EQ(hash_split(Sha256::Kernel::Portable, b, cuts), portable);
    }
  }
}

TEST("sha256: many blocks in one update() (the state kept in registers across them) match the portable code") {
  Bytes b = test_bytes::random_bytes(1 << 20, 99, 5);
  // One call over 16384 blocks, then the same bytes after an unaligned 3-byte start.
  CHECK_EQ(hash_split(Sha256::Kernel::Auto, b, {}), hash_split(Sha256::Kernel::Portable, b, {}));
  CHECK_EQ(hash_split(Sha256::Kernel::Auto, b, {3}), hash_split(Sha256::Kernel::Portable, b, {}));
}
