// The one data path of blocksmith: reader -> block classifier -> sink.
//
// A reader thread walks the source's data ranges (holes are skipped, never
// read) and fills buffers; the calling thread classifies each buffer's blocks
// and hands the sink maximal hole/zero runs and the data bytes, in offset
// order, covering [0, size) exactly once. Sinks: the extent map (info/map),
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
  size_t chunk_size = 4 << 20;            // bytes per read; rounded to the block size
  size_t buffers = 4;                     // reads in flight between the two threads
  bool drop_behind = false;               // POSIX_FADV_DONTNEED after each chunk
  // Byte ranges free in the filesystem that owns them (sparsify --fs): not
  // read, delivered as on_free. Must outlive run_scan. Null: none.
  const fs::FreeMap* free = nullptr;
};

class Sink {
 public:
  virtual ~Sink() = default;
  // Maximal runs of bytes the filesystem reports as holes (never read).
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
// control.cancel() was called. Progress: control.done() is the offset reached.
void run_scan(Reader& reader, const ScanOptions& options, Sink& sink, Control& control);

}  // namespace blocksmith
