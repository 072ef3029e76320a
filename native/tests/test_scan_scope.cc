// carve --scope: which ranges plan_scan_scope skips, and when it falls back
// to scanning everything (the filesystems' own maps are tested with their
// readers; real images in test/carve-scope.test.ts).
#include <cstring>
#include <vector>

#include "core/guest_fs/scan_scope.h"
#include "core/readers/memory_reader.h"
#include "test.h"

using namespace blocksmith;
using namespace blocksmith::fs;

namespace {

void put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = (v >> (8 * i)) & 0xff;
}

}  // namespace

TEST("scope: an unknown name is refused with EINVAL") {
  std::vector<uint8_t> img(1 << 16, 0);
  MemoryReader r(img.data(), img.size());
  CHECK_THROWS_CODE(plan_scan_scope(r, "deleted", 0, img.size()), "EINVAL");
  CHECK(valid_scope("auto") && valid_scope("free") && valid_scope("all") && valid_scope("allocated"));
  CHECK(!valid_scope("") && !valid_scope("Free"));
}

TEST("scope: all reads no filesystem; auto and free on zeros fall back to all with the reason") {
  std::vector<uint8_t> img(1 << 20, 0);
  MemoryReader r(img.data(), img.size());
  ScanScope all = plan_scan_scope(r, "all", 4096, img.size());
  CHECK_EQ(all.report.used, std::string("all"));
  CHECK(all.report.reason.empty());
  CHECK(all.report.volumes.empty());
  CHECK_EQ(all.report.bytes_in_scope, uint64_t(img.size() - 4096));
  CHECK(all.skip.empty());
  for (const char* s : {"auto", "free", "allocated"}) {
    ScanScope sc = plan_scan_scope(r, s, 0, img.size(), {{0, 4096}});
    CHECK_EQ(sc.report.requested, std::string(s));
    CHECK_EQ(sc.report.used, std::string("all"));
    CHECK_EQ(sc.report.reason, std::string("no recognised filesystem (ext2/3/4, FAT12/16/32, exFAT) in the scanned range"));
    // Exclusions count only in scope free.
    CHECK(sc.skip.empty());
    CHECK_EQ(sc.report.bytes_skipped, 0u);
    CHECK_EQ(sc.report.volumes.size(), 1u);
    CHECK(sc.report.volumes[0].filesystem.empty());
  }
}

TEST("scope: an MBR whose partitions hold no known filesystem lists them unrecognised and scans all") {
  std::vector<uint8_t> img(1 << 20, 0);
  img[510] = 0x55;
  img[511] = 0xAA;
  uint8_t* e = img.data() + 446;
  e[4] = 0x83;
  put32(e + 8, 64);
  put32(e + 12, 512);
  MemoryReader r(img.data(), img.size());
  ScanScope sc = plan_scan_scope(r, "free", 0, img.size());
  CHECK_EQ(sc.report.used, std::string("all"));
  CHECK_EQ(sc.report.volumes.size(), 1u);
  CHECK_EQ(sc.report.volumes[0].partition, 1u);
  CHECK_EQ(sc.report.volumes[0].offset, 64u * 512);
  CHECK_EQ(sc.report.volumes[0].length, 512u * 512);
}

TEST("scope: a partition table that cannot be trusted is the reason") {
  std::vector<uint8_t> img(1 << 20, 0);
  img[510] = 0x55;
  img[511] = 0xAA;
  // Two overlapping primaries.
  for (int i = 0; i < 2; i++) {
    uint8_t* e = img.data() + 446 + 16 * i;
    e[4] = 0x83;
    put32(e + 8, 64 + 32 * i);
    put32(e + 12, 256);
  }
  MemoryReader r(img.data(), img.size());
  ScanScope sc = plan_scan_scope(r, "auto", 0, img.size());
  CHECK_EQ(sc.report.used, std::string("all"));
  CHECK(sc.report.reason.rfind("the partition table cannot be trusted: ", 0) == 0);
}
