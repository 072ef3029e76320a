// The one data path of blocksmith: reader -> block classifier -> sink.
//
// Reader threads take the next piece of the source in order (holes are
// skipped, never read), read it into a buffer small enough to stay in the
// CPU cache and classify its blocks there; the calling thread takes the
// pieces back in offset order and hands the sink maximal hole/zero runs and
// the data bytes, covering [0, size) exactly once. With two readers a warm
// scan copies out of the page cache on both cores (a single pread stream was
// measured at ~23 GB/s here, two at ~27-33 GB/s). Sinks: the extent map (info/map),
// and later hole punching in place, sparse files and RBD images.
#pragma once

#include <cstddef>
#include <cstdint>

#include "classify.h"
#include "control.h"
#include "fs/free_map.h"
#include "reader.h"

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
};

// Throws blocksmith::Error on I/O errors or invalid options, Cancelled when
// control.cancel() was called before the end: the sink then gets at most the
// rest of the piece being delivered, and never on_end. Progress:
// control.done() is the offset reached, never going back, and the size at
// the end (on_progress is called with it last).
void run_scan(Reader& reader, const ScanOptions& options, Sink& sink, Control& control);

}  // namespace blocksmith
