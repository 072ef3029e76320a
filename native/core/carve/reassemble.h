// Fragment search for a JPEG whose entropy-coded data stopped decoding:
// bifragment gap carving (Garfinkel, DFRWS 2007) validated by the decoder,
// extended to more fragments when a continuation breaks again.
//
// Files are allocated in blocks (clusters), so a fragment ends and the next
// one starts on a block boundary. The decoder notices the end of a fragment
// some bytes after it (garbage decodes for a while; zeros decode for as long
// as they last), so the fragment end is tried at the last few boundaries
// before the break and at the start of any run of zero blocks. From the
// decoder's state at that boundary (an MCU snapshot plus the few bytes after
// it), each later block start within `max_gap` is tried as the continuation;
// one is accepted when the rest of the image decodes from it to EOI with the
// exact MCU count of the frame, the whole file then checks complete, and
// the picture goes on across every join (seam.h): another photo's data with
// the same tables decodes as well as the file's own.
// Baseline / extended sequential Huffman scans only (progressive: no).
// A first fragment that ends inside the marker segments (a large EXIF or
// ICC segment) is joined where the rest of the header lines up, only when
// an embedded JPEG (the EXIF thumbnail) spans the join and checks complete:
// nothing else in a segment's payload tells which boundary was the end.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/carve/jpeg_check.h"
#include "core/pipeline/reader.h"

namespace blocksmith::carve {

struct Fragment {
  uint64_t offset = 0, length = 0;
  // A hole: `length` zero bytes the source does not hold (a sparse file's
  // block that ext2/ext3 never allocated), put in where the stored bytes
  // reach `offset`. Only results of a search with ReassembleOptions::sparse.
  bool zeros = false;
};

// Byte ranges no continuation may start in: the files already recovered,
// and the bytes every other candidate was found with (a partial file's
// verified data, a header's marker segments), whether the scan found that
// candidate before or after the one being completed. A damaged file
// completed with another photo's data decodes as well as a fragmented one
// completed with its own, so data some candidate already holds is never
// taken.
class Claims {
 public:
  void add(uint64_t offset, uint64_t length);  // a recovered file (or fragment)
  void add_candidate(uint64_t owner, uint64_t offset, uint64_t length);  // the candidate at `owner`
  bool overlaps(uint64_t begin, uint64_t end) const;  // [begin, end) touches a recovered file
  // [begin, end) touches a recovered file, or a candidate that does not
  // start in [self_begin, self_end]: the file being completed, and the JPEGs
  // embedded in its bytes before the break (an EXIF preview shares its
  // fragments, and its verified data may run past their common end).
  bool taken(uint64_t begin, uint64_t end, uint64_t self_begin = UINT64_MAX, uint64_t self_end = UINT64_MAX) const;

 private:
  std::map<uint64_t, uint64_t> ranges_;  // begin -> end, disjoint
  struct Owned {
    uint64_t begin, end, owner;
  };
  std::vector<Owned> owned_;       // by begin
  std::vector<uint64_t> max_end_;  // max_end_[i]: the largest end of owned_[0..i]
};

// Where the entropy-coded data after a partial file's break runs to, when it
// runs to an EOI: past a stretch of damage (`damage` bytes, any markers in
// it ignored), nothing but stuffed bytes and restart markers up to FF D9.
// That is what a file damaged in place looks like (its own data goes on to
// its end); a file cut short is followed by other data, where a marker
// turns up within a few hundred bytes. Returns the offset after the EOI, or
// 0 (no EOI within `limit` bytes, another marker first, or EIO).
uint64_t damaged_tail_end(Reader& src, uint64_t broke_at, uint64_t limit, uint64_t damage = 4096);

struct ReassembleOptions {
  uint32_t block_size = 512;                // allocation unit; boundaries are block_phase + k * block_size
  uint64_t block_phase = 0;
  uint64_t max_gap = uint64_t(32) << 20;    // a continuation starts at most this far after a fragment end
  uint64_t max_attempts = 50000;            // per pass (2 fragments, then more): decodes, and 4 KiB units decoded
  uint64_t max_size = uint64_t(256) << 20;  // longest file
  unsigned max_fragments = 8;
  unsigned tail_boundaries = 8;             // boundaries before a break tried as the fragment end
  // ext2/ext3 sparse files: an all-zero block inside the first 12 is not
  // stored (the indirect block then follows fewer blocks); the indirect pass
  // may put such holes back (Fragment::zeros) where the file has zeros.
  bool sparse = false;
};

struct Reassembly {
  bool ok = false;
  // Not ok although a continuation decoded to the end: why it was refused
  // (the picture does not go on across the join), for the partial's reason.
  std::string refused;
  std::vector<Fragment> fragments;  // in file order; their bytes concatenated are the file
  uint64_t attempts = 0;
  JpegInfo info;  // ok: the joined file's (size, kind, EXIF), as its check found it
};

// The file whose SOI is at `offset` (a candidate that checked partial with
// its data breaking near `broke_at`), in fragments, or ok=false. Reads the
// source only; EIO ends the search without a result. `bytes`, when given,
// receives the file (the fragments joined) on success.
Reassembly reassemble(Reader& src, uint64_t offset, uint64_t broke_at, const Claims& claims,
                      const ReassembleOptions& opt, std::vector<uint8_t>* bytes = nullptr);

}  // namespace blocksmith::carve
