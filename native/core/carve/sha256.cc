#include "core/carve/sha256.h"

#include "core/carve/sha256_blocks.h"
#include "core/zero/cpu_features.h"

#include <dlfcn.h>

#include <cstring>

namespace blocksmith::carve {
namespace detail {

alignas(16) const uint32_t kSha256K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

namespace {
inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
}  // namespace

void sha256_blocks_portable(uint32_t state[8], const uint8_t* p, size_t blocks) {
  const uint32_t* K = kSha256K;
  for (; blocks > 0; blocks--, p += 64) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
      w[i] = uint32_t(p[4 * i]) << 24 | uint32_t(p[4 * i + 1]) << 16 | uint32_t(p[4 * i + 2]) << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
      uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3], e = state[4], f = state[5], g = state[6],
             h = state[7];
    for (int i = 0; i < 64; i++) {
      uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
      uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    state[0] += a; state[1] += b; state[2] += c; state[3] += d;
    state[4] += e; state[5] += f; state[6] += g; state[7] += h;
  }
}

}  // namespace detail

bool Sha256::hardware_available() {
#if defined(__x86_64__)
  return cpu_features().sha && cpu_features().sse41;
#else
  return false;
#endif
}

Sha256::Sha256(Kernel kernel) : blocks_(detail::sha256_blocks_portable) {
#if defined(__x86_64__)
  if (kernel == Kernel::Auto && hardware_available()) blocks_ = detail::sha256_blocks_shani;
#else
  (void)kernel;
#endif
  static constexpr uint32_t init[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                       0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::memcpy(h_, init, sizeof h_);
}

void Sha256::update(const uint8_t* data, size_t len) {
  total_ += len;
  if (buf_len_ > 0) {
    size_t take = std::min(len, 64 - buf_len_);
    std::memcpy(buf_ + buf_len_, data, take);
    buf_len_ += take; data += take; len -= take;
    if (buf_len_ == 64) { blocks_(h_, buf_, 1); buf_len_ = 0; }
  }
  // All whole blocks in one call: the SHA-NI code keeps the state in registers across them.
  if (size_t n = len / 64) { blocks_(h_, data, n); data += 64 * n; len -= 64 * n; }
  if (len > 0) { std::memcpy(buf_, data, len); buf_len_ = len; }
}

std::array<uint8_t, 32> Sha256::digest() {
  uint64_t bits = total_ * 8;
  uint8_t pad[72] = {0x80};
  size_t padlen = (buf_len_ < 56 ? 56 - buf_len_ : 120 - buf_len_);
  uint8_t lenb[8];
  for (int i = 0; i < 8; i++) lenb[i] = uint8_t(bits >> (56 - 8 * i));
  update(pad, padlen);
  update(lenb, 8);
  std::array<uint8_t, 32> out{};
  for (int i = 0; i < 8; i++)
    for (int j = 0; j < 4; j++) out[4 * i + j] = uint8_t(h_[i] >> (24 - 8 * j));
  return out;
}

std::string Sha256::hex() {
  static const char* digits = "0123456789abcdef";
  auto d = digest();
  std::string s(64, '0');
  for (int i = 0; i < 32; i++) { s[2 * i] = digits[d[i] >> 4]; s[2 * i + 1] = digits[d[i] & 15]; }
  return s;
}

namespace {

// OpenSSL's one-shot SHA256() when libcrypto is installed (SHA-NI / AVX2,
// several times faster than the portable code), looked up once at run time
// so that the addon does not depend on it.
using OneShot = unsigned char* (*)(const unsigned char*, size_t, unsigned char*);
OneShot libcrypto_sha256() {
  static OneShot fn = []() -> OneShot {
    for (const char* name : {"libcrypto.so.3", "libcrypto.so"}) {
      if (void* h = ::dlopen(name, RTLD_NOW | RTLD_LOCAL)) {
        if (void* f = ::dlsym(h, "SHA256")) return reinterpret_cast<OneShot>(f);
      }
    }
    return nullptr;
  }();
  return fn;
}

}  // namespace

std::string sha256_hex(const uint8_t* data, size_t len) {
  if (OneShot f = libcrypto_sha256()) {
    static const char* digits = "0123456789abcdef";
    unsigned char d[32];
    f(data, len, d);
    std::string s(64, '0');
    for (int i = 0; i < 32; i++) {
      s[2 * i] = digits[d[i] >> 4];
      s[2 * i + 1] = digits[d[i] & 15];
    }
    return s;
  }
  Sha256 h;
  h.update(data, len);
  return h.hex();
}

}  // namespace blocksmith::carve
