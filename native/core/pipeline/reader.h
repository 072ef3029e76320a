// A source of bytes the pipeline reads from: a file or block device
// (FileReader), a qcow2 virtual disk (qcow2::Qcow2Reader), an RBD image
// (rbd::RbdReader), or memory (MemoryReader: tests, fuzzing). Readers only
// read; nothing in this interface can change the source.
//
// The contract, the same for every reader (native/tests/test_conformance.cc
// runs one suite over a table of them holding the same content, and
// test/conformance.test.ts the public API over every source kind, RBD too):
// - size() is the virtual size and does not change. Loop devices and qcow2
//   images have whole 512-byte sectors; files, RBD images and memory any size.
// - read_at(buf, len, off) returns min(len, size - off) bytes (0 at or past
//   the end) holding the content: a short count means the end, never a
//   partial read. A reported hole reads as zeros through read_at too.
// - next_data(off) answers off <= begin <= end <= size, with begin < end
//   unless begin == size (no data follows). [off, begin) is a hole and must
//   read as zeros: holes are trusted as zeros without being read (a sparse
//   copy or an RBD export leaves them unwritten), so a hint that calls
//   bytes holding data a hole loses them. Data ranges may hold zeros.
// - Which zeros are holes is the medium's business, not content: a file's
//   unallocated blocks, a qcow2 image's unallocated or zero clusters (or
//   subclusters), an RBD image's missing objects (of it and its parent),
//   none at all on block devices or without SEEK_HOLE. Hole edges fall on
//   512-byte boundaries (or at the size).
// - So run_scan classifies every reader of the same bytes alike: hole and
//   zero runs hold only zeros, data runs hold every non-zero byte, and on a
//   block grid the hole edges fall on (512 B always) the data runs are
//   exactly the blocks holding a non-zero byte. Holes and zero runs may
//   differ between readers; their union does not.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace blocksmith {

struct DataRange {
  uint64_t begin;  // first byte that may hold data
  uint64_t end;    // first byte after it that is known to be a hole (or the size)
};

class Reader {
 public:
  virtual ~Reader() = default;

  virtual uint64_t size() const = 0;
  virtual const std::string& path() const = 0;

  // Reads up to len bytes at off. Returns fewer only at end of source.
  // Throws blocksmith::Error on a read error.
  virtual size_t read_at(void* buf, size_t len, uint64_t off) = 0;

  // The next range at or after `off` that may hold data, as the medium
  // reports it (SEEK_DATA/SEEK_HOLE, qcow2 tables, RBD objects). The bytes
  // skipped are trusted to be zeros (see the contract above): never report
  // a hole that is not one. Returns {size, size} when no data follows. The
  // default: everything is data.
  virtual DataRange next_data(uint64_t off) {
    uint64_t s = size();
    return off >= s ? DataRange{s, s} : DataRange{off, s};
  }

  // Reads only what is already in memory (the page cache), never waiting for
  // the disk: may return fewer bytes than asked, 0 when the first byte is not
  // there. Errors are left to read_at. The default knows nothing: 0.
  virtual size_t read_cached(void* /*buf*/, size_t /*len*/, uint64_t /*off*/) { return 0; }

  // True when read_at may be called from several threads at once (pread on
  // one fd is). The pipeline then reads and classifies on several threads.
  virtual bool concurrent_reads() const { return false; }

  // Reads for a one-pass scan (ScanOptions::direct): ranges in the page
  // cache are copied from it, the others are read around it (O_DIRECT), and
  // neither starts read-ahead, so the scan neither pays for filling the
  // cache nor evicts what is there. open_uncached() is called once, before
  // any other of these, and says whether the source can; cached() then says
  // whether (nearly) all of a range is in memory, without starting any I/O.
  // read_uncached has read_at's results and errors and may be called from
  // several threads at once. The defaults: the source cannot.
  virtual bool open_uncached() { return false; }
  virtual bool cached(uint64_t /*off*/, size_t /*len*/) const { return false; }
  virtual size_t read_uncached(void* buf, size_t len, uint64_t off) { return read_at(buf, len, off); }

  // Hints: sequential access from here, and pages behind the scan may go;
  // advise_willneed: these bytes will be read soon (start reading them into
  // the page cache now, without waiting).
  virtual void advise_sequential() {}
  virtual void advise_done(uint64_t /*off*/, uint64_t /*len*/) {}
  virtual void advise_willneed(uint64_t /*off*/, uint64_t /*len*/) {}
};

}  // namespace blocksmith
