#include <vector>

#include "core/classify.h"
#include "test.h"

using namespace blocksmith;

TEST("valid block sizes are the powers of two from 512 B to 1 MiB") {
  for (size_t bs = 512; bs <= (1u << 20); bs <<= 1) CHECK(valid_block_size(bs));
  for (size_t bs : {0ul, 1ul, 256ul, 511ul, 513ul, 4095ul, 3000ul, (2ul << 20), (1ul << 20) + 512})
    CHECK(!valid_block_size(bs));
}

TEST("classify marks exactly the blocks holding a non-zero byte, short last block included") {
  const size_t bs = 512;
  std::vector<uint8_t> buf(bs * 5 + 100, 0);
  buf[bs * 1 + 0] = 1;        // block 1, first byte
  buf[bs * 3 + bs - 1] = 9;   // block 3, last byte
  buf[bs * 5 + 99] = 2;       // short block 5, its last byte
  std::vector<uint8_t> out(block_count(buf.size(), bs), 0xEE);
  CHECK_EQ(out.size(), 6u);
  classify_blocks(buf.data(), buf.size(), bs, out.data());
  std::vector<uint8_t> expected = {kBlockZero, kBlockData, kBlockZero, kBlockData, kBlockZero, kBlockData};
  CHECK(out == expected);
}
