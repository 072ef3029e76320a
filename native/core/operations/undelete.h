// Undelete by metadata: the deleted files the FAT/exFAT/ext2/3/4 volumes of
// a source still describe (guest_fs/volumes.h, guest_fs/volume_files.h), listed, or
// recovered by name into OUT/recovered/<original path>.
//
// The source is only read, through a Reader. Writing follows the carver's
// rule (carve/output.h): root often recovers into directories others can
// write to, so nothing is followed or replaced: OUT/recovered and every
// directory below it are created by this run (mkdirat) and used through the
// fds that opened them (O_DIRECTORY|O_NOFOLLOW); files are created with
// O_CREAT|O_EXCL|O_NOFOLLOW relative to them. A name that is taken (by an
// earlier file of the run, or by anything planted) gets a suffix " (2)",
// " (3)", ... and the entry there is never opened.
//
// Names are made safe (safe_component): the path is split at '/', and each
// component has control characters and bytes that are not valid UTF-8
// replaced by '_', "." and ".." replaced by "_" and "__", an empty name
// replaced by "_", and is cut to 200 bytes (on a UTF-8 boundary) so that a
// suffix still fits in NAME_MAX.
//
// Times: mtime and atime are restored with futimens on the written file
// (directories at the end, after their content). FAT (and exFAT without a
// UTC offset) stores local wall-clock time with no zone (Timestamp::
// local_time): it is restored as the wall-clock time of this machine's
// time zone (TZ), as mtools and Windows read it; report times of that kind
// are ISO strings without a zone designator.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/carve/jpeg_check.h"
#include "core/carve/reassemble.h"
#include "core/guest_fs/volume_files.h"
#include "core/guest_fs/volumes.h"
#include "core/pipeline/control.h"
#include "core/pipeline/reader.h"

namespace blocksmith::undelete {

struct UndeleteOptions {
  std::string out_dir;  // must exist; recovered/ is created in it (refused if there). Unused with `list`.
  bool list = false;    // report only: nothing is read but the metadata, nothing is written
  // JPEGs longer than this are written but not validated (the check needs
  // the whole file in memory).
  uint64_t max_jpeg_check = uint64_t(256) << 20;
};

struct UndeletedFile {
  uint32_t volume = 0;           // index into UndeleteReport::volumes
  size_t index = 0;              // into that volume's files.deleted (entry() below)
  // "recoverable" (list), "recovered", "reassembled" (a JPEG whose planned
  // bytes did not decode, completed by the fragment search in free
  // clusters: undelete_reassemble.h), "partial" (a JPEG that does not
  // decode; an ext3 file whose bytes past a lost indirect block follow a
  // guess that no decoding proved), "overwritten", "empty", "unreadable".
  std::string status;
  // reassembled: where its bytes were found, in file order (the extents are
  // the plan that did not decode).
  std::vector<carve::Fragment> fragments;
  std::string written_as;        // relative to out_dir ("recovered/DCIM/a.jpg"); empty when not written
  std::string sha256;            // of the bytes written
  uint64_t bytes_written = 0;
  // JPEGs (by name or SOI): "complete", "partial", "rejected"; "" when not a
  // JPEG or not checked (list, too long).
  std::string jpeg;
  std::string reason;            // partial / unreadable: why
};

struct UndeleteReport {
  std::string source;
  uint64_t size = 0;
  fs::SourceVolumes found;
  std::vector<UndeletedFile> files;  // in the readers' order, volume by volume
  uint64_t recovered = 0, reassembled = 0, partial = 0, overwritten = 0, empty = 0, unreadable = 0, directories = 0;
  uint64_t bytes_written = 0;
  double seconds = 0;
  bool cancelled = false;
};

// The reader's entry of `f`.
inline const fs::DeletedFile& entry(const UndeleteReport& rep, const UndeletedFile& f) {
  return rep.found.volumes[f.volume].files.deleted[f.index];
}

// Called for each file once it is done (written, or listed), in order.
using UndeleteSink = std::function<void(const UndeleteReport&, const UndeletedFile&)>;

// Throws Error ERR_FS_UNSUPPORTED (nothing written) when no volume of the
// source could be read, naming why for each. Returns normally when cancelled
// (report.cancelled; the file being written is removed).
UndeleteReport undelete(Reader& reader, const UndeleteOptions& opt, Control& control, const UndeleteSink& on_file = {});

// Throws Error EBUSY (one line naming the mounts) when a filesystem of the
// source (`fd`: a block device, or an image file through the loop devices
// backed by it) is mounted read-write: what is on disk is not current while
// it is, and the kernel changes it while it is read. Read-only mounts pass.
// Called before anything is created (undelete, --list, carve --undelete).
void refuse_mounted_read_write(int fd, const std::string& path);

// The same over volumes already found (tests give hand-made ones).
UndeleteReport undelete_volumes(Reader& reader, fs::SourceVolumes found, const UndeleteOptions& opt, Control& control,
                                const UndeleteSink& on_file = {});

// One path component made safe to create (see above).
std::string safe_component(const std::string& name);

// "contiguous", "skip-live-clusters", "fat-chain", "block-map", "extent-tree", "indirect-guess".
const char* rule_name(fs::Recovery r);
// "recoverable", "overwritten", "empty", "unreadable".
const char* status_name(fs::DeletedStatus s);
// ISO 8601: "2024-05-01T10:20:30Z", or without the Z for local_time;
// ".250" added when there are milliseconds. "" when not known.
std::string iso_time(const fs::Timestamp& t);

}  // namespace blocksmith::undelete
