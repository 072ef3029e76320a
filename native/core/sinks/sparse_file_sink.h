// Sink that writes a sparse copy: data blocks are written, zero blocks and
// holes are left as holes, the size is set exactly. The copy lives in an
// unnamed file (O_TMPFILE) in the target's directory and gets its name only
// when complete, so an interrupted or failed copy (even SIGKILL) never
// leaves a half file under the target's name.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/pipeline/scan_pipeline.h"
#include "core/base/unique_fd.h"

namespace blocksmith {

// A file the copy must never replace: a source (st_dev, st_ino).
struct FileId {
  dev_t dev = 0;
  ino_t ino = 0;
  std::string path;                // for the message
  std::string role = "the source";  // "the source", "a backing file of the source"
};

// The rule for a copy's target (the same as src/output/output-file.ts for the CLIs'
// other files), checked before anything is created: never a block or
// character device or any other non-regular file, never one of `protect`
// (the source and its backing files, also through a symlink or a hard link),
// never a symbolic link (root writes into directories others can write to),
// never an existing file without `overwrite`. Throws blocksmith::Error
// (EINVAL, EISDIR, ELOOP, EEXIST); creates nothing.
void check_copy_target(const std::string& target, bool overwrite, const std::vector<FileId>& protect);

// Creates `path` for writing with O_CREAT|O_EXCL|O_NOFOLLOW: whatever is
// already at the name (a file, a device node, a planted symbolic link, even a
// dangling one) is never opened. Returns the fd, or -1 with errno (EEXIST).
int create_exclusive(const std::string& path, mode_t mode);

// The FileId of `path` (following symlinks); nullopt when it cannot be stat'ed.
std::optional<FileId> file_id(const std::string& path);

class SparseFileSink final : public Sink {
 public:
  // Applies check_copy_target first, so a refused target creates nothing.
  SparseFileSink(std::string target, bool overwrite, std::vector<FileId> protect = {});
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
  std::vector<FileId> protect_;
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
