// The conformance suite's one table of sources: every Reader kind (memory, a
// sparse file, the same file read without SEEK_HOLE, a loop device of it,
// qcow2 images made from it by qemu-img: plain, compressed zlib and zstd,
// extended L2, an overlay over a backing file) holding the same logical
// content. test_conformance.cc runs the same behaviour tests over every row,
// as @parcel/watcher runs one suite over every backend: adding a reader
// means adding one row here. RBD (reader and sink) is covered the same way by
// test/conformance.test.ts, where a Ceph cluster is at hand.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/pipeline/reader.h"

namespace conformance {

using blocksmith::DataRange;
using blocksmith::Reader;

// One piece of a content's layout, as the source files are written.
struct Piece {
  enum Kind {
    data,       // pseudo-random bytes (never a whole zero block)
    zeros,      // written zeros: allocated in a file, read and found zero
    unwritten,  // never written: a hole in the file
    one_byte,   // written zeros with one non-zero byte at `at`
  };
  uint64_t off;
  uint64_t len;
  Kind kind;
  uint64_t at = 0;
};

struct Content {
  std::string name;
  std::vector<Piece> layout;  // in order, covering [0, size)
  std::vector<uint8_t> bytes;
  uint64_t size() const { return bytes.size(); }
  std::vector<DataRange> unwritten() const;
};

// Byte sizes a source can have: loop devices and qcow2 images have whole
// 512-byte sectors, so the contents they hold are sector-sized; the
// byte-odd content runs on the readers that hold any size.
const Content& main_content();  // 3.25 MiB + 1536 B: data, zeros, holes; chunk and cluster edges
const Content& odd_content();   // 20 KiB + 777 B: a byte-odd tail
const Content& empty_content();

// What a row may report as holes, beyond "only zeros" (which holds for all).
struct HoleRule {
  bool never = false;                    // block devices, --no-seek-hole: nothing is a hole
  std::vector<DataRange> at_least;       // ranges the medium surely reports as holes
};

// A writable copy of the content for in-place sinks (PunchSink): the fd
// punched through, and how to look at the result.
struct InPlace {
  virtual ~InPlace() = default;
  int fd = -1;                 // O_RDWR: file or block device
  std::string path;            // what the sink names in errors
  bool is_block_device = false;
  uint64_t align = 0;          // the unit it frees in
  std::string backing_file;    // the file whose allocation punching changes
};

struct Source {
  std::string name;
  const Content* content = nullptr;
  std::function<std::unique_ptr<Reader>()> open;
  HoleRule holes;
  // Null when the source cannot be changed in place (memory; a qcow2 virtual
  // disk, which sparsify refuses).
  std::function<std::unique_ptr<InPlace>()> in_place;
};

// The rows' names, known before anything is built (tests register at start),
// and those whose `in_place` is set.
const std::vector<std::string>& source_names();
const std::vector<std::string>& in_place_names();
// A row, built on first use (files, qemu-img, losetup once per run; removed
// and detached at exit).
Source& source(const std::string& name);

// Scratch directory of this run (removed at exit).
const std::string& scratch_dir();

}  // namespace conformance
