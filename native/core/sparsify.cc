#include "sparsify.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "error.h"
#include "extent_map.h"
#include "fs/mount_check.h"
#include "image_lock.h"
#include "punch_sink.h"
#include "sparse_file_sink.h"

namespace blocksmith {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Opens the in-place target for punching and checks nobody else uses it.
UniqueFd open_for_punch(const std::string& path, const SparsifyOptions& opt, SourceInfo& info) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw_sys(errno, "open", path);
  int flags = O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  flags |= opt.dry_run ? O_RDONLY : O_RDWR;
  // On a block device O_EXCL fails with EBUSY while it is mounted or held
  // (device-mapper, md, another O_EXCL user).
  if (S_ISBLK(st.st_mode) && !opt.force && !opt.dry_run) flags |= O_EXCL;
  UniqueFd fd(::open(path.c_str(), flags));
  if (!fd) {
    int err = errno;
    if (err == EBUSY) {
      throw Error(err, "EBUSY", "open", path,
                  "'" + path + "' is in use (mounted, or held by device-mapper/md/another program); unmount it first or use --force");
    }
    if (err == EACCES || err == EROFS || err == EPERM) {
      throw_sys(err, "open", path, "cannot open '" + path + "' for writing (in-place sparsify changes its allocation)");
    }
    throw_sys(err, "open", path);
  }
  info = describe_fd(fd.get(), path);
  int fl = ::fcntl(fd.get(), F_GETFL);
  if (fl >= 0) ::fcntl(fd.get(), F_SETFL, fl & ~O_NONBLOCK);

  // Another blocksmith changing this image is refused even with --force:
  // two in-place runs at once would race on the same blocks.
  if (!opt.dry_run) take_blocksmith_lock(fd.get(), path);
  if (!opt.force) {
    LockProbe probe = probe_qemu_locks(fd.get(), path);
    if (probe.locked) {
      std::string who = describe_holders(probe.holders);
      throw Error(EBUSY, "EBUSY", "fcntl", path,
                  "'" + path + "' is in use: " + (who.empty() ? "another process" : who) +
                      " holds QEMU image locks on it (a running VM or qemu-img); stop it first or use --force");
    }
    auto loops = loop_devices_backed_by(fd.get());
    if (!loops.empty()) {
      std::string list;
      for (const auto& l : loops) list += (list.empty() ? "" : ", ") + l;
      throw Error(EBUSY, "EBUSY", "open", path,
                  "'" + path + "' backs loop device " + list + "; detach it (losetup -d) first or use --force");
    }
  }
  if (!opt.dry_run) {
    try {
      take_image_lock(fd.get(), path);
    } catch (const Error&) {
      if (!opt.force) throw;
    }
  }
  return fd;
}

// --fs: refuse when a filesystem in the image is in use (never overridden),
// then read the partition tables and the ext filesystems' free blocks.
// `file` is the image file (what could be mounted); `content` reads the disk
// it holds (the same file for raw, the virtual disk for qcow2).
void refuse_if_mounted(int fd, const std::string& path) {
  auto users = fs::filesystem_users(fd);
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
  // Punching zero blocks of a qcow2 file would keep its content but not
  // reclaim anything useful, and a qcow2 virtual disk cannot be punched
  // through its host file: refuse before taking any lock.
  if (options.format == ImageFormat::qcow2 ||
      (options.format == ImageFormat::automatic && [&] {
        FileReader probe = FileReader::open(path, false);
        return detect_format(probe) == ImageFormat::qcow2;
      }())) {
    throw Error(EINVAL, "ERR_QCOW2_IN_PLACE", "open", path,
                "'" + path + "' is a qcow2 image; in-place sparsify works on raw images only: write a sparse raw copy (sparsify '" +
                    path + "' DST.raw) or use 'qemu-img convert -O qcow2' to compact it");
  }
  // --fs on a mounted filesystem: say so first (not "backs a loop device;
  // use --force", which --fs would refuse all the same).
  if (options.fs) refuse_if_mounted(FileReader::open(path, false).fd(), path);
  SourceInfo info;
  UniqueFd fd = open_for_punch(path, options, info);
  FileReader reader = FileReader::open(path, options.use_seek_hole);

  ScanOptions scan = options.scan;
  scan.drop_behind = true;
  struct stat st {};
  uint64_t align = 4096;
  if (info.kind == SourceKind::block_device) {
    align = info.logical_sector_size ? info.logical_sector_size : 512;
  } else if (::fstat(fd.get(), &st) == 0 && st.st_blksize > 0) {
    align = static_cast<uint64_t>(st.st_blksize);
  }

  SparsifyReport r;
  r.source = path;
  r.kind = info.kind;
  r.size = info.size;
  r.dry_run = options.dry_run;
  r.allocated_before = reader.current_allocated();
  if (options.fs) {
    inspect_for_fs(reader, reader, path, r);
    scan.free = &r.inspection.free;
  }

  PunchSink punch(fd.get(), path, align, info.kind == SourceKind::block_device, options.dry_run);
  CountingSink counted(&punch);
  run_scan(reader, scan, counted, control);

  r.hole_bytes = counted.totals().hole;
  r.zero_bytes = counted.totals().zero;
  r.data_bytes = counted.totals().data;
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
  OpenedImage image = open_image(source, options.format, options.use_seek_hole);
  Reader& reader = *image.reader;
  FileReader& file = *image.file;
  struct stat tst {};
  if (::stat(target.c_str(), &tst) == 0 && tst.st_dev == file.info().st_dev && tst.st_ino == file.info().st_ino &&
      file.info().kind == SourceKind::regular_file) {
    throw Error(EINVAL, "EINVAL", "open", target, "source and target are the same file ('" + target + "')");
  }

  SparsifyReport r;
  r.source = source;
  r.target = target;
  r.kind = file.info().kind;
  r.size = reader.size();
  r.dry_run = options.dry_run;
  r.format = image_format_name(image.description.format);
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
    r.hole_bytes = counted.totals().hole;
    r.zero_bytes = counted.totals().zero;
    r.data_bytes = counted.totals().data;
    r.allocated_after = r.data_bytes;  // what the copy would allocate
  } else {
    SparseFileSink sink(target, options.overwrite);
    CountingSink counted(&sink);
    run_scan(reader, scan, counted, control);
    r.free_bytes = counted.free_bytes();
    control.throw_if_cancelled();
    sink.commit();
    r.hole_bytes = counted.totals().hole;
    r.zero_bytes = counted.totals().zero;
    r.data_bytes = counted.totals().data;
    r.allocated_after = sink.allocated_bytes();
  }
  r.inspection.free = {};
  r.seconds = seconds_since(t0);
  return r;
}

}  // namespace blocksmith
