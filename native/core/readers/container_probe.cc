#include "core/readers/container_probe.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace blocksmith {
namespace {

uint32_t be32_at(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
uint32_t le32_at(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}

// `len` bytes equal to `magic` at `off` of a buffer of `n` bytes.
bool bytes_at(const uint8_t* buf, size_t n, size_t off, const void* magic, size_t len) {
  return buf && off <= n && len <= n - off && std::memcmp(buf + off, magic, len) == 0;
}
template <size_t N>
bool text_at(const uint8_t* buf, size_t n, size_t off, const char (&s)[N]) {
  return bytes_at(buf, n, off, s, N - 1);  // without the terminating NUL
}

// VMDK: a sparse extent ("KDMV", or "COWD" for VMware 3), or a text
// descriptor file: comment lines and lines of spaces, then "version=1|2|3"
// (QEMU's vmdk_probe, bounded to the bytes we have).
bool vmdk(const ProbeBytes& b) {
  if (text_at(b.head, b.head_len, 0, "KDMV") || text_at(b.head, b.head_len, 0, "COWD")) return true;
  const uint8_t* p = b.head;
  const size_t n = b.head_len;
  size_t i = 0;
  while (i < n) {
    if (p[i] == '#') {
      while (i < n && p[i] != '\n') ++i;
      ++i;
      continue;
    }
    if (p[i] == ' ') {
      while (i < n && p[i] == ' ') ++i;
      if (i < n && p[i] == '\r') ++i;
      if (i >= n || p[i] != '\n') return false;
      ++i;
      continue;
    }
    for (const char* v : {"version=1", "version=2", "version=3"}) {
      if (bytes_at(p, n, i, v, 9) && (text_at(p, n, i + 9, "\n") || text_at(p, n, i + 9, "\r\n"))) return true;
    }
    return false;
  }
  return false;
}

// VHD ("vpc"): the footer's cookie "conectix". Dynamic images start with a
// copy of it (what QEMU probes); fixed images have it only in their last 512
// bytes, accepted there only with a valid footer checksum (one's complement
// of the byte sum without the checksum field at 64..67), so that a raw disk
// whose last sector merely starts with that word is not refused.
bool vhd(const ProbeBytes& b) {
  if (text_at(b.head, b.head_len, 0, "conectix")) return true;
  if (b.tail_len != 512 || !text_at(b.tail, b.tail_len, 0, "conectix")) return false;
  uint32_t sum = 0;
  for (size_t i = 0; i < 512; ++i)
    if (i < 64 || i >= 68) sum += b.tail[i];
  return ~sum == be32_at(b.tail + 64);
}

bool vhdx(const ProbeBytes& b) { return text_at(b.head, b.head_len, 0, "vhdxfile"); }

// VDI: the signature 0xbeda107f (little endian) after the 64-byte text.
bool vdi(const ProbeBytes& b) { return b.head_len >= 68 && le32_at(b.head + 64) == 0xbeda107f; }

// Parallels: one of two 16-byte magics and version 2.
bool parallels(const ProbeBytes& b) {
  return b.head_len >= 64 &&
         (text_at(b.head, b.head_len, 0, "WithoutFreeSpace") || text_at(b.head, b.head_len, 0, "WithouFreSpacExt")) &&
         le32_at(b.head + 16) == 2;
}

// Bochs: "Bochs Virtual HD Image" and "Redolog" in their NUL-padded fields.
bool bochs(const ProbeBytes& b) {
  static const char magic[] = "Bochs Virtual HD Image";  // with its NUL
  static const char type[] = "Redolog";
  return bytes_at(b.head, b.head_len, 0, magic, sizeof magic) && bytes_at(b.head, b.head_len, 32, type, sizeof type);
}

// cloop: the shell-script header of version 2.0 images.
bool cloop(const ProbeBytes& b) {
  return text_at(b.head, b.head_len, 0,
                 "#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n");
}

// DMG (UDIF): the "koly" trailer in the last 512 bytes, version 4, 512-byte header.
bool dmg(const ProbeBytes& b) {
  return b.tail_len == 512 && text_at(b.tail, b.tail_len, 0, "koly") && be32_at(b.tail + 4) == 4 &&
         be32_at(b.tail + 8) == 512;
}

bool qed(const ProbeBytes& b) { return bytes_at(b.head, b.head_len, 0, "QED\0", 4); }

bool luks(const ProbeBytes& b) { return bytes_at(b.head, b.head_len, 0, "LUKS\xba\xbe", 6); }

// qcow version 1 shares qcow2's magic; versions 2 and 3 are read.
bool qcow1(const ProbeBytes& b) { return b.head_len >= 8 && bytes_at(b.head, b.head_len, 0, "QFI\xfb", 4) && be32_at(b.head + 4) == 1; }

struct Entry {
  ContainerFormat format;
  bool (*matches)(const ProbeBytes&);
};

// The table: every container format we recognise and do not read.
const Entry kContainers[] = {
    {{"vmdk", "VMDK (VMware)"}, vmdk},
    {{"vpc", "VHD (Virtual PC / Hyper-V)"}, vhd},
    {{"vhdx", "VHDX (Hyper-V)"}, vhdx},
    {{"vdi", "VDI (VirtualBox)"}, vdi},
    {{"parallels", "Parallels"}, parallels},
    {{"bochs", "Bochs"}, bochs},
    {{"cloop", "cloop (compressed loop)"}, cloop},
    {{"dmg", "DMG (Apple disk image)"}, dmg},
    {{"qed", "QED"}, qed},
    {{"luks", "LUKS (encrypted)"}, luks},
    {{"qcow", "qcow (version 1)"}, qcow1},
};

}  // namespace

const ContainerFormat* match_container(const ProbeBytes& bytes) {
  for (const Entry& e : kContainers)
    if (e.matches(bytes)) return &e.format;
  return nullptr;
}

const ContainerFormat* probe_container(Reader& r) {
  const uint64_t size = r.size();
  std::vector<uint8_t> head(static_cast<size_t>(std::min<uint64_t>(size, kProbeHeadBytes)));
  ProbeBytes b;
  if (!head.empty()) b.head_len = r.read_at(head.data(), head.size(), 0);
  b.head = head.data();
  uint8_t tail[512];
  if (size >= 1024 && r.read_at(tail, sizeof tail, size - sizeof tail) == sizeof tail) {
    b.tail = tail;
    b.tail_len = sizeof tail;
  }
  return match_container(b);
}

}  // namespace blocksmith
