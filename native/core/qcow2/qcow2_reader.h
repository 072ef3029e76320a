// A qcow2 image (v2/v3) as a Reader of its virtual disk: the scan pipeline
// and every sink take it like a raw file. next_data reports unallocated and
// zero clusters as holes (never read, never written) and data/compressed
// clusters, or backing-file data under unallocated clusters, as data.
// Compressed clusters are decompressed on read.
//
// read_at may be called from several threads at once (concurrent_reads,
// when the file and any backing image allow it): the table lookups are
// serialised (map_mu_), the reads and the decompression are not. So the
// pipeline reads and inflates the next piece while the previous one is being
// written. Within one read, compressed clusters that lie back to back in the
// file (as qemu-img writes them) are fetched with one pread per run and
// inflated on several threads.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
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
  bool concurrent_reads() const override {
    return file_->concurrent_reads() && (!backing_ || backing_->concurrent_reads());
  }

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
  // Part of a compressed cluster, through the one-cluster cache.
  void copy_from_cluster(const Segment& s, uint8_t* dst, uint64_t from, size_t n);
  Segment segment(uint64_t off, uint64_t limit) {
    std::lock_guard lock(map_mu_);
    return map_->segment(off, limit);
  }
  struct Inflate {
    uint64_t host;
    uint64_t csize;  // bytes to inflate from, clipped at the end of the file
    uint8_t* dst;    // a whole cluster's worth
    uint64_t cluster_begin;
    const uint8_t* src = nullptr;  // the compressed bytes, once read
  };
  void read_compressed(std::vector<Inflate>& jobs, std::vector<uint8_t>& in);
  void read_ahead(uint64_t host_begin, uint64_t host_end);
  void inflate_all(const std::vector<Inflate>& jobs);

  std::unique_ptr<Reader> file_;
  Header header_;
  std::unique_ptr<ClusterMap> map_;  // its L2 cache: under map_mu_
  std::mutex map_mu_;
  std::unique_ptr<Reader> backing_;
  // The last decompressed cluster (keyed by its host offset), for reads of
  // part of a cluster; under cache_mu_.
  std::mutex cache_mu_;
  std::vector<uint8_t> compressed_, cluster_;
  uint64_t cluster_host_ = UINT64_MAX;
  unsigned threads_ = 1;  // decompression workers per read
  // Host bytes read ahead (read_ahead): under ahead_mu_.
  std::mutex ahead_mu_;
  uint64_t last_host_end_ = UINT64_MAX;  // where the last read's host bytes ended
  uint64_t ahead_to_ = 0;                // asked for up to here
};

}  // namespace blocksmith::qcow2
