// Sink that writes a sparse copy: data blocks are written, zero blocks and
// holes are left as holes, the size is set exactly. The copy lives in an
// unnamed file (O_TMPFILE) in the target's directory and gets its name only
// when complete, so an interrupted or failed copy (even SIGKILL) never
// leaves a half file under the target's name.
#pragma once

#include <cstdint>
#include <string>

#include "scan_pipeline.h"
#include "unique_fd.h"

namespace blocksmith {

class SparseFileSink final : public Sink {
 public:
  // Refuses (EEXIST) an existing target unless `overwrite`; refuses targets
  // that are not regular files.
  SparseFileSink(std::string target, bool overwrite);
  ~SparseFileSink() override;

  void on_hole(uint64_t, uint64_t) override {}
  void on_zero(uint64_t, uint64_t) override {}
  void on_data(uint64_t off, const uint8_t* bytes, size_t len) override;
  void on_end(uint64_t size) override;

  // Flushes to disk and gives the file its name. Call after run_scan.
  void commit();

  uint64_t data_bytes_written() const { return written_; }
  uint64_t allocated_bytes() const;  // of the copy, after commit

 private:
  void write_behind(uint64_t written_to);

  static constexpr size_t kMaxWrite = 256 << 10;   // bytes per pwrite
  static constexpr uint64_t kWindow = 64 << 20;    // writeback window

  std::string target_;
  std::string dir_;
  bool overwrite_;
  UniqueFd fd_;
  std::string temp_name_;  // only when O_TMPFILE is not available
  uint64_t written_ = 0;
  uint64_t started_to_ = 0;  // writeback started for [0, started_to_)
  uint64_t waited_to_ = 0;   // and finished for [0, waited_to_)
  uint64_t size_ = 0;
  bool ended_ = false;
  bool committed_ = false;
};

}  // namespace blocksmith
