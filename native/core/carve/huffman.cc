#include "core/carve/huffman.h"

#include <cstring>

namespace blocksmith::carve {

bool HuffTable::build(const uint8_t counts[16], const uint8_t* symbols, int nsymbols) {
  int total = 0;
  for (int i = 0; i < 16; i++) total += counts[i];
  if (total > 256 || total != nsymbols || total == 0) return false;
  std::memset(fast_len, 0, sizeof fast_len);
  std::memset(fast_sym, 0, sizeof fast_sym);
  std::memset(fast_total_dc, 0, sizeof fast_total_dc);
  std::memset(fast_total_ac, 0, sizeof fast_total_ac);
  // Every entry set, used or not: ac_runs.h finds a table's run table by
  // comparing these arrays whole.
  std::memset(vals, 0, sizeof vals);
  std::memset(maxcode, 0, sizeof maxcode);
  std::memset(valoff, 0, sizeof valoff);
  std::memcpy(vals, symbols, static_cast<size_t>(total));
  max_symbol = 0;
  for (int i = 0; i < total; i++)
    if (vals[i] > max_symbol) max_symbol = vals[i];
  int32_t code = 0;
  int k = 0;
  for (int len = 1; len <= 16; len++) {
    int n = counts[len - 1];
    // Codes of a length must fit in `len` bits with the all-ones code left
    // free (libjpeg's JERR_BAD_HUFF_TABLE rule).
    if (code + n >= (1 << len)) return false;
    valoff[len] = k - code;
    maxcode[len] = n ? code + n - 1 : -1;
    for (int i = 0; i < n; i++, k++, code++) {
      if (len <= 9) {
        int shift = 9 - len;
        int first = code << shift;
        for (int j = 0; j < (1 << shift); j++) {
          fast_len[first + j] = static_cast<uint8_t>(len);
          fast_sym[first + j] = vals[k];
          int dc_total = len + vals[k];
          int ac_total = len + (vals[k] & 15);
          if (vals[k] <= 15 && dc_total <= 9) fast_total_dc[first + j] = static_cast<uint8_t>(dc_total);
          if (ac_total <= 9) fast_total_ac[first + j] = static_cast<uint8_t>(ac_total);
        }
      }
    }
    code <<= 1;
  }
  maxcode[17] = 0x7fffffff;
  defined = true;
  return true;
}

}  // namespace blocksmith::carve
