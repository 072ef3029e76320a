#include <vector>

#include "core/zero/classify.h"
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

TEST("classify_grid follows the source's grid: a buffer off the grid has partial first and last blocks") {
  const size_t bs = 512;
  // 1500 bytes at source offset 700: blocks [700,1024) [1024,1536) [1536,2048) [2048,2200).
  std::vector<uint8_t> buf(1500, 0);
  buf[1024 - 700 + 511] = 7;  // the last byte of grid block 2 (the second in the buffer)
  buf[1499] = 1;              // the last byte of the partial last block
  CHECK_EQ(grid_block_count(700, buf.size(), bs), 4u);
  CHECK_EQ(grid_block_count(700, 0, bs), 0u);
  CHECK_EQ(grid_block_count(1024, 512, bs), 1u);
  std::vector<uint8_t> out(4, 0xEE);
  classify_grid(buf.data(), 700, buf.size(), bs, out.data());
  std::vector<uint8_t> expected = {kBlockZero, kBlockData, kBlockZero, kBlockData};
  CHECK(out == expected);
  // On the grid it is classify_blocks.
  std::vector<uint8_t> a(block_count(buf.size(), bs)), b(grid_block_count(0, buf.size(), bs));
  classify_blocks(buf.data(), buf.size(), bs, a.data());
  classify_grid(buf.data(), 0, buf.size(), bs, b.data());
  CHECK(a == b);
}
