// Parts every report shares, converted to JS in one place.
#pragma once

#include <napi.h>

#include "core/sinks/extent_totals.h"

namespace binding {

// holeBytes, zeroBytes, dataBytes (src/seam/native.ts: ByteTotals).
inline void set_totals(Napi::Object o, const blocksmith::ExtentTotals& t) {
  o.Set("holeBytes", static_cast<double>(t.hole));
  o.Set("zeroBytes", static_cast<double>(t.zero));
  o.Set("dataBytes", static_cast<double>(t.data));
}

}  // namespace binding
