// Bytes of a scan by what they were: holes (skipped), zero (read, all zero),
// data. The one totals type: the extent map and counting sinks keep it, and
// every operation's report (sparsify, sparse copy, RBD import/export) embeds
// it, so the binding converts it in one place (binding/report_fields.h).
#pragma once

#include <cstdint>

namespace blocksmith {

struct ExtentTotals {
  uint64_t hole = 0;
  uint64_t zero = 0;
  uint64_t data = 0;
};

}  // namespace blocksmith
