// The parsed state of one JPEG candidate that the entropy decoder needs.
#pragma once

#include <cstdint>
#include <vector>

#include "core/carve/huffman.h"

namespace blocksmith::carve {

struct Component {
  uint8_t id = 0, h = 1, v = 1, tq = 0;
  int bw = 0, bh = 0;            // blocks of the padded (whole-MCU) grid
  int bw_real = 0, bh_real = 0;  // blocks that cover the image (non-interleaved scans)
  std::vector<uint64_t> nz;      // progressive: bit k set = coefficient k is non-zero
};

struct Frame {
  bool present = false;
  uint8_t sof = 0;
  int precision = 8;
  int width = 0, height = 0;
  int ncomp = 0;
  Component comp[4];
  int hmax = 1, vmax = 1;
  int mcux = 0, mcuy = 0;
  bool progressive = false, arithmetic = false, lossless = false;
};

struct ScanHeader {
  int ns = 0;
  int cidx[4] = {0, 0, 0, 0};  // index into Frame::comp
  int td[4] = {0, 0, 0, 0}, ta[4] = {0, 0, 0, 0};
  int ss = 0, se = 63, ah = 0, al = 0;
};

struct DecoderTables {
  HuffTable dc[4], ac[4];
  bool qt[4] = {false, false, false, false};
  uint16_t quant[4][64] = {};  // the quantisation tables in zigzag order (seam.h decodes pixels at a join)
  unsigned restart_interval = 0;
};

}  // namespace blocksmith::carve
