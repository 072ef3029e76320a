// A qcow2 image (v2/v3) as a Reader of its virtual disk: the scan pipeline
// and every sink take it like a raw file. next_data reports unallocated and
// zero clusters as holes (never read, never written) and data/compressed
// clusters, or backing-file data under unallocated clusters, as data.
// Compressed clusters are decompressed on read. Not thread-safe: one reader
// thread at a time (as the pipeline uses it). Whole compressed clusters of
// one read are decompressed on several threads (the underlying file reader
// is only used through pread-like read_at calls, which may overlap).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/pipeline/reader.h"
#include "core/qcow2/cluster_map.h"
#include "core/qcow2/qcow2_header.h"

namespace blocksmith::qcow2 {

// Opens the backing file named in the header (name as stored, format from
// the header extension, may be empty). Returns the backing image's reader.
// Resolving, depth limits and loop checks are the opener's job
// (native/core/readers/image_open.cc); harnesses pass one that refuses.
using BackingOpener = std::function<std::unique_ptr<Reader>(const std::string& name, const std::string& format)>;

class Qcow2Reader final : public Reader {
 public:
  // Reads and validates the header and L1 table of `file`; throws
  // blocksmith::Error for images it cannot read faithfully.
  Qcow2Reader(std::unique_ptr<Reader> file, const BackingOpener& open_backing);

  uint64_t size() const override { return header_.size; }
  const std::string& path() const override { return file_->path(); }
  size_t read_at(void* buf, size_t len, uint64_t off) override;
  DataRange next_data(uint64_t off) override;
  void advise_sequential() override { file_->advise_sequential(); }

  const Header& header() const { return header_; }
  Reader* backing() const { return backing_.get(); }
  Reader& file() const { return *file_; }

 private:
  struct Piece {
    uint64_t end;
    bool data;
  };
  Piece piece(uint64_t off, uint64_t limit);
  // next_data bounded to [off, limit): a backing qcow2 image is asked only
  // about the range its overlay leaves unallocated (no look-ahead past it).
  DataRange data_within(uint64_t off, uint64_t limit);
  void read_file(uint8_t* dst, size_t len, uint64_t host);
  void read_backing(uint8_t* dst, size_t len, uint64_t off);
  const uint8_t* cluster_bytes(const Segment& s);
  struct Inflate {
    uint64_t host;
    uint64_t csize;
    uint8_t* dst;  // a whole cluster's worth
    uint64_t cluster_begin;
  };
  void inflate_all(const std::vector<Inflate>& jobs);

  std::unique_ptr<Reader> file_;
  Header header_;
  std::unique_ptr<ClusterMap> map_;
  std::unique_ptr<Reader> backing_;
  // The last decompressed cluster (keyed by its host offset).
  std::vector<uint8_t> compressed_, cluster_;
  uint64_t cluster_host_ = UINT64_MAX;
  unsigned threads_ = 1;  // decompression workers per read
};

}  // namespace blocksmith::qcow2
