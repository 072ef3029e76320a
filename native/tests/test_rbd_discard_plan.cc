// How RbdDiscardSink turns a zero run into discard calls: whole zero objects
// (the ones librbd removes, which is what lowers "used") in as few calls as
// allowed, partial pieces only when worth a call, never outside the image's
// own objects (a clone's parent-backed ranges).
#include <vector>

#include "core/sinks/rbd_discard_sink.h"
#include "test.h"

using blocksmith::DataRange;
using blocksmith::rbd::DiscardPlan;
using blocksmith::rbd::DiscardRange;
using blocksmith::rbd::plan_discards;

namespace {
constexpr uint64_t MiB = 1 << 20;
constexpr uint64_t KiB = 1 << 10;

DiscardPlan plan(uint64_t size, uint64_t max_discard = 64 * MiB) {
  DiscardPlan p;
  p.object_size = 4 * MiB;
  p.image_size = size;
  p.min_partial = 64 * KiB;
  p.max_discard = max_discard;
  return p;
}
}  // namespace

TEST("rbd discard plan: whole zero objects side by side become one call") {
  std::vector<DataRange> own{{0, 64 * MiB}};
  auto d = plan_discards(4 * MiB, 16 * MiB, own, plan(64 * MiB));
  CHECK_EQ(d.size(), size_t(1));
  CHECK(d[0] == (DiscardRange{4 * MiB, 12 * MiB, true}));
}

TEST("rbd discard plan: a run over object edges is cut there; partial ends only when >= min_partial") {
  std::vector<DataRange> own{{0, 64 * MiB}};
  // 1 MiB into object 0 .. 32 KiB into object 3: partial head (3 MiB), whole 1-2, tail of 32 KiB dropped.
  auto d = plan_discards(1 * MiB, 12 * MiB + 32 * KiB, own, plan(64 * MiB));
  CHECK_EQ(d.size(), size_t(2));
  CHECK(d[0] == (DiscardRange{1 * MiB, 3 * MiB, false}));
  CHECK(d[1] == (DiscardRange{4 * MiB, 8 * MiB, true}));
}

TEST("rbd discard plan: calls of whole objects are capped at max_discard (rounded to objects)") {
  std::vector<DataRange> own{{0, 64 * MiB}};
  auto d = plan_discards(0, 40 * MiB, own, plan(64 * MiB, 17 * MiB));
  CHECK_EQ(d.size(), size_t(3));
  CHECK(d[0] == (DiscardRange{0, 16 * MiB, true}));
  CHECK(d[1] == (DiscardRange{16 * MiB, 16 * MiB, true}));
  CHECK(d[2] == (DiscardRange{32 * MiB, 8 * MiB, true}));
}

TEST("rbd discard plan: the short last object of an image counts as whole") {
  const uint64_t size = 10 * MiB + 512;
  std::vector<DataRange> own{{0, size}};
  auto d = plan_discards(8 * MiB, size, own, plan(size));
  CHECK_EQ(d.size(), size_t(1));
  CHECK(d[0] == (DiscardRange{8 * MiB, 2 * MiB + 512, true}));
}

TEST("rbd discard plan: only the image's own objects are discarded") {
  // Objects 0 and 2 are the clone's own; object 1 is read from the parent.
  std::vector<DataRange> own{{0, 4 * MiB}, {8 * MiB, 12 * MiB}};
  auto d = plan_discards(0, 12 * MiB, own, plan(16 * MiB));
  CHECK_EQ(d.size(), size_t(2));
  CHECK(d[0] == (DiscardRange{0, 4 * MiB, true}));
  CHECK(d[1] == (DiscardRange{8 * MiB, 4 * MiB, true}));
  CHECK(plan_discards(4 * MiB, 8 * MiB, own, plan(16 * MiB)).empty());
}
