// The one data path of blocksmith: reader -> block classifier -> sink.
//
// Reader threads take the next piece of the source in order (holes are
// skipped, never read), read it into a buffer small enough to stay in the
// CPU cache and classify its blocks there; the pieces are handed to the sink
// in offset order, as maximal hole/zero runs and the data bytes, covering
// [start, size) exactly once. With two readers a warm scan copies out of the
// page cache on both cores (a single pread stream was measured at ~23 GB/s
// here, two at ~27-33 GB/s). Sinks: the extent map (info/map), hole punching
// in place, sparse files, RBD images, and the JPEG carver (operations/carve.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "core/zero/classify.h"
#include "core/pipeline/control.h"
#include "core/guest_fs/free_map.h"
#include "core/pipeline/reader.h"

namespace blocksmith {

struct ScanOptions {
  size_t block_size = kDefaultBlockSize;  // classification grid, from offset 0
  size_t chunk_size = 1 << 20;            // bytes per read; rounded to the block size.
                                          // 1 MiB: fits L2, so classifying reads cached bytes
  size_t buffers = 8;                     // pieces in flight (read, classified, not yet consumed)
  size_t readers = 0;                     // reader threads; 0 = one per CPU, at most 2
                                          // (1 when the reader is not concurrent_reads())
  bool drop_behind = false;               // POSIX_FADV_DONTNEED after each chunk
  // Byte ranges free in the filesystem that owns them (sparsify --fs): not
  // read, delivered as on_free. Must outlive run_scan. Null: none.
  const fs::FreeMap* free = nullptr;
  // The first byte read and delivered (the sink sees [start, size)).
  uint64_t start = 0;
  // False: blocks are not classified, every byte read is data (a consumer
  // that looks at every byte anyway: carving).
  bool classify = true;
  // 0: a read error stops the scan. Else EIO is retried in steps of this
  // many bytes (aligned to it); what still fails is delivered as zeros and
  // told to on_unreadable first (ddrescue-like: carving a failing disk).
  uint32_t unreadable_sector = 0;
  // Reads what is not in the page cache around it (Reader::read_uncached,
  // O_DIRECT), several at once: a one-pass scan that does much work per byte
  // (carving) then neither spends CPU on filling the cache nor evicts it.
  bool direct = false;
};

class Sink {
 public:
  virtual ~Sink() = default;
  // Maximal runs of bytes the reader reports as holes (never read; they are
  // zeros, reader.h).
  virtual void on_hole(uint64_t off, uint64_t len) = 0;
  // Maximal runs of blocks that were read and are all zero.
  virtual void on_zero(uint64_t off, uint64_t len) = 0;
  // Maximal runs the filesystem inside the image marks free (never read;
  // their content does not matter). By default they are zero blocks.
  virtual void on_free(uint64_t off, uint64_t len) { on_zero(off, len); }
  // Data blocks; consecutive calls may continue one run. `bytes` is valid
  // only during the call.
  virtual void on_data(uint64_t off, const uint8_t* bytes, size_t len) = 0;
  // Called once when the whole source was delivered.
  virtual void on_end(uint64_t /*size*/) {}
  // Before the zeros that stand for bytes that could not be read
  // (ScanOptions::unreadable_sector).
  virtual void on_unreadable(uint64_t /*off*/, uint64_t /*len*/) {}
  // Asked after every piece delivered: true ends the scan there, without an
  // error and without on_end (a consumer that has what it needs).
  virtual bool done() const { return false; }
};

// Throws blocksmith::Error on I/O errors or invalid options, Cancelled when
// control.cancel() was called before the end: the sink then gets at most the
// rest of the piece being delivered, and never on_end. Progress:
// control.done() is the bytes delivered from options.start, never going
// back, and control.total() those of [start, size) (on_progress is called
// with it last).
void run_scan(Reader& reader, const ScanOptions& options, Sink& sink, Control& control);

// The options as run_scan runs them with `readers` reader threads: pieces a
// whole number of blocks (at least one), and a buffer for every reader and
// at least one more (one for the piece being delivered). Throws EINVAL for a
// block size classify.h does not take.
ScanOptions settled_scan_options(const ScanOptions& options, size_t readers);

// After a read that failed with EIO: reads [off, off + len) again in
// `sector` steps (aligned to it); what still fails is zero-filled and told to
// on_unreadable (adjacent sectors as one range). Returns fewer bytes than
// asked only at the end of the source; other errors throw. The pipeline's
// reads with unreadable_sector, and the carver's re-reads of partial files,
// go through here.
size_t read_skipping_unreadable(Reader& reader, uint8_t* dst, size_t len, uint64_t off, uint32_t sector,
                                const std::function<void(uint64_t off, uint64_t len)>& on_unreadable);

}  // namespace blocksmith
