// A source of bytes the pipeline reads from: a file, a block device, or (in
// tests and fuzzing) memory. Readers only read; nothing in this interface can
// change the source.
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

  // The next range at or after `off` that may hold data, as reported by the
  // filesystem (SEEK_DATA/SEEK_HOLE). Holes are only ever skipped, never
  // trusted as zeros for anything that writes. Returns {size, size} when no
  // data follows. The default: everything is data.
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

  // Hints: sequential access from here, and pages behind the scan may go.
  virtual void advise_sequential() {}
  virtual void advise_done(uint64_t /*off*/, uint64_t /*len*/) {}
};

}  // namespace blocksmith
