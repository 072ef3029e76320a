// Image container formats blocksmith does not read (vmdk, vhd, vhdx, vdi,
// parallels, bochs, cloop, dmg, qed, luks, qcow version 1), recognised by
// their magic so that they are refused instead of being copied as if their
// bytes were the disk. One table (container_probe.cc), with each format's
// magic and where it lies, as QEMU's block drivers probe them (block/*.c
// *_probe); the fixed VHD footer and the DMG "koly" trailer are found at the
// end of the file, where those formats keep them. Reads at most the first
// 2 KiB and the last 512 bytes; every access is bounds-checked (fuzzed by
// native/fuzz/fuzz_qcow2.cc).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/pipeline/reader.h"

namespace blocksmith {

struct ContainerFormat {
  const char* name;   // qemu-img's format name (-f NAME)
  const char* title;  // what a person calls it, e.g. "VMDK (VMware)"
};

// What to look at: the first bytes of the file (up to kProbeHeadBytes) and
// its last 512 bytes (empty when the file is shorter than 1 KiB).
constexpr size_t kProbeHeadBytes = 2048;
struct ProbeBytes {
  const uint8_t* head = nullptr;
  size_t head_len = 0;
  const uint8_t* tail = nullptr;
  size_t tail_len = 0;  // 0 or 512
};

// The container format these bytes hold, or nullptr (raw, qcow2, or
// anything else). Pure function of the bytes.
const ContainerFormat* match_container(const ProbeBytes& bytes);

// Reads the bytes match_container needs from `r` and matches them.
const ContainerFormat* probe_container(Reader& r);

}  // namespace blocksmith
