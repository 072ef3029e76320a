#include "core/operations/sparsify.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <optional>

#include "core/base/error.h"
#include "core/sinks/counting_sink.h"
#include "core/sinks/extent_map_sink.h"
#include "core/host/mount_check.h"
#include "core/host/image_lock.h"
#include "core/host/image_use.h"
#include "core/host/lease_guard.h"
#include "core/sinks/lease_checked_sink.h"
#include "core/sinks/punch_sink.h"
#include "core/sinks/sparse_file_sink.h"

namespace blocksmith {
namespace {

constexpr size_t kCopyPiece = size_t(4) << 20;  // bytes per direct read of a copy's source

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

[[noreturn]] void throw_qcow2_in_place(const std::string& path) {
  throw Error(EINVAL, "ERR_QCOW2_IN_PLACE", "open", path,
              "'" + path + "' is a qcow2 image; in-place sparsify works on raw images only: write a sparse raw copy (sparsify '" +
                  path + "' DST.raw) or use 'qemu-img convert -O qcow2' to compact it");
}

// Opens the in-place target: O_RDWR to punch (O_RDONLY for a dry run), with
// O_EXCL when image_use asks (block devices). Whether anybody else uses it
// is decided by check_image_use.
UniqueFd open_in_place(const std::string& path, bool dry_run, bool exclusive) {
  int flags = O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  flags |= dry_run ? O_RDONLY : O_RDWR;
  if (exclusive) flags |= O_EXCL;
  UniqueFd fd(::open(path.c_str(), flags));
  if (fd) return fd;
  int err = errno;
  if (err == EBUSY) throw Error(err, "EBUSY", "open", path, "'" + path + "' is in use");  // image_use names the holder
  if (err == EACCES || err == EROFS || err == EPERM) {
    // A read-only device (losetup -r, a write-protected disk) says so.
    UniqueFd ro(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    struct stat st {};
    int is_ro = 0;
    if (ro && ::fstat(ro.get(), &st) == 0 && S_ISBLK(st.st_mode) && ::ioctl(ro.get(), BLKROGET, &is_ro) == 0 && is_ro) {
      throw Error(EROFS, "EROFS", "open", path,
                  "'" + path + "' is a read-only block device (e.g. losetup -r, or a write-protected disk); in-place sparsify discards on it, so nothing was changed");
    }
    throw_sys(err, "open", path, "cannot open '" + path + "' for writing (in-place sparsify changes its allocation)");
  }
  throw_sys(err, "open", path);
}

// --fs: refuse when a filesystem in the image is in use (never overridden),
// then read the partition tables and the ext filesystems' free blocks.
// `file` is the image file (what could be mounted); `content` reads the disk
// it holds (the same file for raw, the virtual disk for qcow2).
void refuse_if_mounted(int fd, const std::string& path) {
  auto users = host::filesystem_users(fd);
  if (!users.empty()) {
    std::string list;
    for (const auto& u : users) list += (list.empty() ? "" : "; ") + u;
    throw Error(EBUSY, "EBUSY", "open", path,
                "'" + path + "' is in use: " + list + "; unmount it first (--force does not apply to --fs)");
  }
}

void inspect_for_fs(FileReader& file, Reader& content, const std::string& path, SparsifyReport& r) {
  refuse_if_mounted(file.fd(), path);
  uint32_t ss = file.info().kind == SourceKind::block_device && file.info().logical_sector_size
                    ? file.info().logical_sector_size
                    : 512;
  r.fs = true;
  r.inspection = fs::inspect_filesystems(content, ss);
  // Before the first punch: a filesystem that cannot be trusted (dirty,
  // corrupt, bitmaps that disagree with the inodes) stops the whole run.
  fs::throw_if_refused(r.inspection, path);
}

}  // namespace

SparsifyReport sparsify_in_place(const std::string& path, const SparsifyOptions& options, Control& control) {
  const auto t0 = std::chrono::steady_clock::now();
  if (options.format == ImageFormat::qcow2) throw_qcow2_in_place(path);
  // --fs on a mounted filesystem: say so first (not "backs a loop device;
  // use --force", which --fs would refuse all the same).
  if (options.fs) refuse_if_mounted(FileReader::open(path, false).fd(), path);
  // The reader owns the one fd the run reads, punches and leases through;
  // declared before `use`, whose lease guard must go first.
  std::optional<FileReader> opened;
  ImageUse use = check_image_use(path, options.dry_run ? UseMode::dry_run : UseMode::in_place, options.force,
                                 [&](bool exclusive) {
                                   opened.emplace(FileReader::adopt(open_in_place(path, options.dry_run, exclusive),
                                                                    path, options.use_seek_hole));
                                   // Punching zero blocks of a qcow2 file would keep its content but
                                   // not reclaim anything useful, and a qcow2 virtual disk cannot be
                                   // punched through its host file; containers we do not read are
                                   // refused by detect_format. Both before any lease or lock is taken,
                                   // so a refused run never makes another opener wait or back off.
                                   if (options.format == ImageFormat::automatic && detect_format(*opened) == ImageFormat::qcow2)
                                     throw_qcow2_in_place(path);
                                   return opened->fd();
                                 });
  FileReader& reader = *opened;
  const SourceInfo& info = reader.info();

  ScanOptions scan = options.scan;
  scan.drop_behind = true;
  struct stat st {};
  uint64_t align = 4096;
  if (info.kind == SourceKind::block_device) {
    align = info.logical_sector_size ? info.logical_sector_size : 512;
  } else if (::fstat(reader.fd(), &st) == 0 && st.st_blksize > 0) {
    align = static_cast<uint64_t>(st.st_blksize);
  }

  SparsifyReport r;
  r.source = path;
  r.kind = info.kind;
  r.size = info.size;
  r.dry_run = options.dry_run;
  r.warnings = use.warnings;
  r.allocated_before = reader.current_allocated();
  if (options.fs) {
    inspect_for_fs(reader, reader, path, r);
    scan.free = &r.inspection.free;
  }

  PunchSink punch(reader.fd(), path, align, info.kind == SourceKind::block_device, options.dry_run);
  punch.set_guard(use.lease.get());
  CountingSink counted(&punch);
  LeaseCheckedSink checked(counted, use.lease.get());
  run_scan(reader, scan, checked, control);

  r.totals = counted.totals();
  r.free_bytes = counted.free_bytes();
  r.inspection.free = {};  // the report keeps the per-volume figures only
  r.punch_calls = punch.stats().punch_calls;
  r.punched_bytes = punch.stats().punched_bytes;
  r.reclaimable_bytes = punch.stats().reclaimed_bytes;
  r.allocated_after = reader.current_allocated();
  r.seconds = seconds_since(t0);
  return r;
}

SparsifyReport sparse_copy(const std::string& source, const std::string& target, const SparsifyOptions& options,
                           Control& control) {
  const auto t0 = std::chrono::steady_clock::now();
  OpenedImage image;  // before `use`: its lease guard goes first
  ImageUse use = check_image_use(source, options.dry_run ? UseMode::dry_run : UseMode::copy, options.force, [&](bool) {
    image = open_image(source, options.format, options.use_seek_hole, options.backing);
    return image.file->fd();
  });
  Reader& reader = *image.reader;
  FileReader& file = *image.file;
  // Files the copy must never replace: the source and every backing file it
  // reads through (replacing a qcow2's backing file changes the qcow2's disk).
  std::vector<FileId> sources{{file.info().st_dev, file.info().st_ino, source, "the source"}};
  for (const BackingLink& b : image.description.backing_chain) {
    if (auto id = file_id(b.path)) {
      id->role = "a backing file of '" + source + "', opened as";
      sources.push_back(*id);
    }
  }
  // Checked here too, so that a dry run says what the real run would refuse.
  check_copy_target(target, options.overwrite, sources);

  SparsifyReport r;
  r.source = source;
  r.target = target;
  r.kind = file.info().kind;
  r.size = reader.size();
  r.dry_run = options.dry_run;
  r.format = image_format_name(image.description.format);
  r.backing_chain = image.description.backing_chain;
  r.warnings = use.warnings;
  r.allocated_before = file.current_allocated();
  ScanOptions scan = options.scan;
  if (options.fs) {
    inspect_for_fs(file, reader, source, r);
    scan.free = &r.inspection.free;
  }

  if (options.dry_run) {
    CountingSink counted(nullptr);
    run_scan(reader, scan, counted, control);
    r.free_bytes = counted.free_bytes();
    r.totals = counted.totals();
    r.allocated_after = r.totals.data;  // what the copy would allocate
  } else {
    // A copy reads each byte once and never again: the source is read around
    // the page cache (O_DIRECT, both readers at once) in 4 MiB pieces, what
    // is cached is copied from there. Cold, buffered reads with read-ahead
    // took 176-202 MB/s on this machine's disk, direct 4 MiB reads 580-920.
    scan.direct = true;
    if (scan.chunk_size == ScanOptions{}.chunk_size) scan.chunk_size = kCopyPiece;
    SparseFileSink sink(target, options.overwrite, sources);
    sink.expect_size(reader.size());
    CountingSink counted(&sink);
    LeaseCheckedSink checked(counted, use.lease.get());
    run_scan(reader, scan, checked, control);
    r.free_bytes = counted.free_bytes();
    control.throw_if_cancelled();
    // Every byte was read before anybody could open the source for writing.
    if (use.lease) use.lease->throw_if_broken();
    sink.commit();
    r.totals = counted.totals();
    r.allocated_after = sink.allocated_bytes();
  }
  r.inspection.free = {};
  r.seconds = seconds_since(t0);
  return r;
}

}  // namespace blocksmith
