#include "core/carve/ac_runs.h"

#include <array>
#include <cstring>

namespace blocksmith::carve {
namespace {

// The symbol whose code starts at bit `pos` (from the top) of the
// kAcRunBits-bit value v, if its whole code lies within v: its length and
// value, or false.
bool symbol_at(const HuffTable& t, uint32_t v, int pos, int& len, int& sym) {
  const int rem = kAcRunBits - pos;
  for (len = 1; len <= rem && len <= 16; len++) {
    const int32_t code = int32_t((v >> (rem - len)) & ((1u << len) - 1));
    if (code <= t.maxcode[len]) {
      const int idx = t.valoff[len] + code;
      if (idx < 0 || idx > 255) return false;
      sym = t.vals[idx];
      return true;
    }
  }
  return false;
}

uint32_t entry_for(const HuffTable& t, uint32_t v) {
  int pos = 0, adv = 0;
  bool eob = false;
  int len, rs;
  while (pos < kAcRunBits && symbol_at(t, v, pos, len, rs)) {
    const int r = rs >> 4, sz = rs & 15;
    if (sz) {
      if (sz > 10 || pos + len + sz > kAcRunBits || adv + r + 1 > 63) break;
      adv += r + 1;
      pos += len + sz;
    } else if (r == 15) {
      if (adv + 16 > 63) break;
      adv += 16;
      pos += len;
    } else {
      pos += len;
      eob = true;
      break;
    }
  }
  return pos == 0 ? 0 : uint32_t(pos) | uint32_t(adv) << 5 | uint32_t(eob) << 12;
}

// What an entry depends on: symbol_at reads nothing else of the table.
struct Key {
  int32_t maxcode[18];
  int32_t valoff[18];
  uint8_t vals[256];
};

void key_of(const HuffTable& t, Key& k) {
  std::memcpy(k.maxcode, t.maxcode, sizeof k.maxcode);
  std::memcpy(k.valoff, t.valoff, sizeof k.valoff);
  std::memcpy(k.vals, t.vals, sizeof k.vals);
}

struct Slot {
  uint64_t used = 0;  // when last asked for (0: empty)
  Key key;
  std::array<uint32_t, 1u << kAcRunBits> entries;
};

// The 4 tables asked for last. Least recently used goes first, so a table
// asked for stays while at most 3 others are asked for after it: a scan
// asks for its (at most 4) tables once at its start, and the pointers stay
// good to its end.
struct Cache {
  Slot slots[4];
  uint64_t clock = 0;
};

}  // namespace

const uint32_t* ac_run_table(const HuffTable& t) {
  thread_local Cache cache;
  Key key;
  key_of(t, key);
  cache.clock++;
  Slot* oldest = &cache.slots[0];
  for (Slot& s : cache.slots) {
    if (s.used && std::memcmp(&s.key, &key, sizeof key) == 0) {
      s.used = cache.clock;
      return s.entries.data();
    }
    if (s.used < oldest->used) oldest = &s;
  }
  for (uint32_t v = 0; v < (1u << kAcRunBits); v++) oldest->entries[v] = entry_for(t, v);
  oldest->key = key;
  oldest->used = cache.clock;
  return oldest->entries.data();
}

}  // namespace blocksmith::carve
