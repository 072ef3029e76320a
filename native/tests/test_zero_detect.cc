// Every zero kernel this CPU can run must agree with the portable one, on
// random and adversarial buffers, at every alignment.
#include <random>
#include <vector>

#include "core/zero/zero_detect.h"
#include "core/zero/zero_kernels.h"
#include "test.h"

using namespace blocksmith;

static std::vector<ZeroKernel> kernels_under_test() { return available_zero_kernels(); }

TEST("portable kernel: zero and non-zero buffers of every length up to 300") {
  std::vector<uint8_t> buf(300, 0);
  for (size_t n = 0; n <= buf.size(); ++n) CHECK(kernels::is_zero_portable(buf.data(), n));
  for (size_t n = 1; n <= buf.size(); ++n) {
    buf[n - 1] = 0x80;
    CHECK(!kernels::is_zero_portable(buf.data(), n));
    buf[n - 1] = 0;
  }
}

TEST("every kernel: a single non-zero byte at every position of a 4 KiB block is found") {
  std::vector<uint8_t> buf(4096 + 64, 0);
  for (ZeroKernel k : kernels_under_test()) {
    ZeroFn fn = zero_kernel_fn(k);
    for (size_t shift : {0, 1, 7, 31, 63}) {  // unaligned starts
      uint8_t* p = buf.data() + shift;
      CHECK(fn(p, 4096));
      for (size_t i = 0; i < 4096; ++i) {
        p[i] = 1;
        if (fn(p, 4096)) {
          coretest::fail(__FILE__, __LINE__, std::string(zero_kernel_name(k)) + " missed byte " +
                                                 std::to_string(i) + " at shift " + std::to_string(shift));
        }
        p[i] = 0;
      }
    }
  }
}

TEST("every kernel: bytes just outside the range are not read as part of it") {
  std::vector<uint8_t> buf(1024, 0xFF);
  for (ZeroKernel k : kernels_under_test()) {
    ZeroFn fn = zero_kernel_fn(k);
    for (size_t start = 1; start < 70; ++start) {
      for (size_t n = 0; n < 600; n += 13) {
        std::fill(buf.begin(), buf.end(), 0xFF);
        std::fill(buf.begin() + start, buf.begin() + start + n, 0);
        CHECK(fn(buf.data() + start, n));
      }
    }
  }
}

TEST("every kernel: first and last byte of lengths 1..1100 at every alignment mod 64") {
  std::vector<uint8_t> buf(1200, 0);
  for (ZeroKernel k : kernels_under_test()) {
    ZeroFn fn = zero_kernel_fn(k);
    for (size_t align = 0; align < 64; align += 3) {
      for (size_t n = 1; n <= 1100; n += (n < 300 ? 1 : 17)) {
        uint8_t* p = buf.data() + align;
        p[0] = 1;
        CHECK(!fn(p, n));
        p[0] = 0;
        p[n - 1] = 1;
        CHECK(!fn(p, n));
        p[n - 1] = 0;
        CHECK(fn(p, n));
      }
    }
  }
}

TEST("every kernel agrees with the portable kernel on random sparse buffers") {
  std::mt19937_64 rng(12345);
  std::vector<uint8_t> buf(70000);
  for (int round = 0; round < 400; ++round) {
    std::fill(buf.begin(), buf.end(), 0);
    size_t n = rng() % buf.size();
    size_t start = rng() % (buf.size() - n);
    int bits = static_cast<int>(rng() % 3);  // 0, 1 or 2 random non-zero bytes anywhere
    for (int b = 0; b < bits; ++b) buf[rng() % buf.size()] = static_cast<uint8_t>(1 + rng() % 255);
    bool expected = kernels::is_zero_portable(buf.data() + start, n);
    for (ZeroKernel k : kernels_under_test()) CHECK_EQ(zero_kernel_fn(k)(buf.data() + start, n), expected);
    CHECK_EQ(is_zero(buf.data() + start, n), expected);
  }
}

TEST("dispatch picks the widest 256-bit-or-narrower kernel the CPU offers and names it") {
  auto avail = available_zero_kernels();
  CHECK(!avail.empty());
  CHECK(avail.front() == ZeroKernel::portable);
  if (!std::getenv("BLOCKSMITH_ZERO_KERNEL")) {
    ZeroKernel best = avail.back() == ZeroKernel::avx512 ? avail[avail.size() - 2] : avail.back();
    CHECK(active_zero_kernel() == best);
  }
  for (ZeroKernel k : avail) CHECK(parse_zero_kernel(zero_kernel_name(k)) == k);
  CHECK(!parse_zero_kernel("mmx"));
}
