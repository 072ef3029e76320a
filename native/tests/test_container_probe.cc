// The container-format table (native/core/readers/container_probe.cc) on bytes built
// in memory: each format QEMU probes is recognised where it keeps its magic
// (bochs, cloop and dmg here, as qemu-img cannot create them; the others are
// also made by qemu-img in test/containers.test.ts), and raw disks, qcow2
// and near misses are not.
#include <cstring>
#include <string>
#include <vector>

#include "core/readers/container_probe.h"
#include "core/base/error.h"
#include "core/readers/image_open.h"
#include "core/readers/memory_reader.h"
#include "test.h"

using namespace blocksmith;

namespace {

std::vector<uint8_t> disk(size_t size = 64 << 10) { return std::vector<uint8_t>(size, 0); }

void put(std::vector<uint8_t>& b, size_t off, const void* s, size_t n) { std::memcpy(b.data() + off, s, n); }
void put(std::vector<uint8_t>& b, size_t off, const char* s) { put(b, off, s, std::strlen(s)); }
void be32(std::vector<uint8_t>& b, size_t off, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[off + i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}
void le32(std::vector<uint8_t>& b, size_t off, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[off + i] = static_cast<uint8_t>(v >> (8 * i));
}

std::string probe(const std::vector<uint8_t>& b) {
  MemoryReader r(b.data(), b.size(), "t.img");
  const ContainerFormat* c = probe_container(r);
  return c ? c->name : "";
}

// A VHD footer (512 bytes) at `off` with a valid checksum, unless `bad`.
void vhd_footer(std::vector<uint8_t>& b, size_t off, bool bad = false) {
  put(b, off, "conectix");
  be32(b, off + 60, 2);  // fixed disk
  uint32_t sum = 0;
  for (size_t i = 0; i < 512; ++i)
    if (i < 64 || i >= 68) sum += b[off + i];
  be32(b, off + 64, ~sum + (bad ? 1 : 0));
}

}  // namespace

TEST("containers: each format of the table is recognised where it keeps its magic") {
  auto at0 = [](const char* magic) {
    auto b = disk();
    put(b, 0, magic);
    return b;
  };
  CHECK_EQ(probe(at0("KDMV")), std::string("vmdk"));
  CHECK_EQ(probe(at0("COWD")), std::string("vmdk"));
  CHECK_EQ(probe(at0("# Disk DescriptorFile\n# more\n   \nversion=1\nCID=1\n")), std::string("vmdk"));
  CHECK_EQ(probe(at0("# Disk DescriptorFile\r\nversion=3\r\n")), std::string("vmdk"));
  CHECK_EQ(probe(at0("conectix")), std::string("vpc"));  // dynamic VHD: footer copy at 0
  CHECK_EQ(probe(at0("vhdxfile")), std::string("vhdx"));
  CHECK_EQ(probe(at0("#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n")), std::string("cloop"));
  auto luks = disk();
  put(luks, 0, "LUKS\xba\xbe\x00\x02", 8);
  CHECK_EQ(probe(luks), std::string("luks"));
  auto qed = disk();
  put(qed, 0, "QED\0", 4);
  CHECK_EQ(probe(qed), std::string("qed"));
  auto vdi = at0("<<< Oracle VM VirtualBox Disk Image >>>\n");
  le32(vdi, 64, 0xbeda107f);
  CHECK_EQ(probe(vdi), std::string("vdi"));
  for (const char* m : {"WithoutFreeSpace", "WithouFreSpacExt"}) {
    auto p = at0(m);
    le32(p, 16, 2);
    CHECK_EQ(probe(p), std::string("parallels"));
  }
  auto bochs = disk();
  put(bochs, 0, "Bochs Virtual HD Image");
  put(bochs, 32, "Redolog");
  put(bochs, 48, "Growing");
  le32(bochs, 64, 0x00020000);
  CHECK_EQ(probe(bochs), std::string("bochs"));
  auto fixed = disk();
  vhd_footer(fixed, fixed.size() - 512);
  CHECK_EQ(probe(fixed), std::string("vpc"));  // fixed VHD: footer only at the end
  auto dmg = disk();
  put(dmg, dmg.size() - 512, "koly");
  be32(dmg, dmg.size() - 508, 4);
  be32(dmg, dmg.size() - 504, 512);
  CHECK_EQ(probe(dmg), std::string("dmg"));
  auto qcow1 = disk();
  be32(qcow1, 0, 0x514649fb);
  be32(qcow1, 4, 1);
  CHECK_EQ(probe(qcow1), std::string("qcow"));
}

TEST("containers: raw disks, qcow2 and near misses are not containers") {
  CHECK_EQ(probe(disk()), std::string(""));
  CHECK_EQ(probe(std::vector<uint8_t>{}), std::string(""));
  CHECK_EQ(probe(std::vector<uint8_t>{'K', 'D'}), std::string(""));  // shorter than the magic
  auto qcow2 = disk();
  be32(qcow2, 0, 0x514649fb);
  be32(qcow2, 4, 3);
  CHECK_EQ(probe(qcow2), std::string(""));
  // A raw disk whose last sector starts with "conectix" but is no valid footer.
  auto bad = disk();
  vhd_footer(bad, bad.size() - 512, true);
  CHECK_EQ(probe(bad), std::string(""));
  // Parallels magic with another version; bochs magic with another type;
  // a VMDK-like text whose first non-comment line is not version=N.
  auto par = disk();
  put(par, 0, "WithoutFreeSpace");
  le32(par, 16, 3);
  CHECK_EQ(probe(par), std::string(""));
  auto bochs = disk();
  put(bochs, 0, "Bochs Virtual HD Image");
  put(bochs, 32, "Floppy");
  CHECK_EQ(probe(bochs), std::string(""));
  auto text = disk();
  put(text, 0, "# comment\n\nversion=1\n");  // an empty line (not spaces) stops QEMU's probe too
  CHECK_EQ(probe(text), std::string(""));
  auto unterminated = disk(15);
  put(unterminated, 0, "# no newline at");
  CHECK_EQ(probe(unterminated), std::string(""));
  // The koly trailer of a file under 1 KiB is not looked for.
  auto small = disk(600);
  put(small, small.size() - 512, "koly");
  be32(small, small.size() - 508, 4);
  be32(small, small.size() - 504, 512);
  CHECK_EQ(probe(small), std::string(""));
}

TEST("containers: detect_format refuses them with ERR_UNSUPPORTED_FORMAT, naming the format and the way out") {
  auto b = disk();
  put(b, 0, "vhdxfile");
  MemoryReader r(b.data(), b.size(), "disk.vhdx");
  try {
    detect_format(r);
    CHECK(false);
  } catch (const Error& e) {
    CHECK_EQ(e.code(), std::string("ERR_UNSUPPORTED_FORMAT"));
    CHECK(std::string(e.what()).find("'disk.vhdx' is a VHDX (Hyper-V) image") != std::string::npos);
    CHECK(std::string(e.what()).find("qemu-img convert -f vhdx -O raw") != std::string::npos);
    CHECK(std::string(e.what()).find("--format raw") != std::string::npos);
  }
  auto raw = disk();
  MemoryReader rr(raw.data(), raw.size(), "disk.raw");
  CHECK(detect_format(rr) == ImageFormat::raw);
}
