#include "core/operations/rbd_copy.h"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "core/base/aligned_buffer.h"
#include "core/base/error.h"
#include "core/sinks/counting_sink.h"
#include "core/sinks/extent_map_sink.h"
#include "core/readers/file_reader.h"
#include "core/readers/image_open.h"
#include "core/host/image_use.h"
#include "core/host/lease_guard.h"
#include "core/sinks/lease_checked_sink.h"
#include "core/sinks/sparse_file_sink.h"
#include "core/zero/zero_detect.h"
#include "core/rbd/image_admin.h"
#include "core/rbd/rbd_reader.h"
#include "core/sinks/rbd_sink.h"
#include "core/sinks/rbd_verify_sink.h"

namespace blocksmith::rbd {
namespace {

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Reads the source again through the pipeline and the image in object-sized
// reads, and compares them byte for byte.
void verify(Reader& src, const ScanOptions& scan, Image& img, const Target& t, uint64_t object_size, unsigned parallel,
            Control& control) {
  VerifySink sink(img, t, src.path(), src.size(), object_size, parallel);
  ScanOptions so = scan;
  so.free = nullptr;
  so.chunk_size = std::max<size_t>(so.chunk_size, object_size);  // the source in object-sized reads too
  so.direct = true;  // as the copy read it (write_image): not cached by then, read once more without the cache's CPU
  run_scan(src, so, sink, control);
}

// What the report says before any byte is copied: the source, the image, and
// whom we connected as.
ImportReport import_report(const std::string& source, const OpenedImage& opened, const Target& target,
                           Cluster& cluster, const ImageUse& use) {
  ImportReport rep;
  rep.source = source;
  rep.format = image_format_name(opened.description.format);
  rep.backing_chain = opened.description.backing_chain;
  rep.image = target.spec();
  rep.size = opened.reader->size();
  rep.mon_host = cluster.conf_get("mon_host");
  // librados does not expose the entity name through conf_get: the id we
  // connected as is the one given, or client.admin's.
  rep.user = target.user.empty() ? "admin" : target.user;
  rep.warnings = use.warnings;
  return rep;
}

// The copy itself: the source through the pipeline into the image, then a
// flush. Fills the totals and the writes of `rep`.
void write_image(Reader& reader, Image& image, const Target& target, const ImportOptions& options,
                 const ImageUse& use, Control& control, ImportReport& rep) {
  {
    const uint64_t write_size = std::min<uint64_t>(std::max<uint64_t>(options.write_size, 4096), rep.object_size);
    RbdSink sink(image.get(), target, write_size, options.parallel);
    CountingSink counted(&sink);
    LeaseCheckedSink checked(counted, use.lease.get());
    ScanOptions scan = options.scan;
    // Reads of at least an object: a data run becomes back-to-back aligned writes.
    scan.chunk_size = std::max<size_t>(scan.chunk_size, rep.object_size);
    // Data not in the page cache is read with O_DIRECT: each byte is read
    // once and copied once (into the write), and the kernel's copy out of
    // the page cache (a fifth of the client's CPU on a cold import) is CPU
    // the OSDs on the same machine want. What is cached is still read from
    // the cache; a source without O_DIRECT is read as before.
    scan.direct = true;
    run_scan(reader, scan, checked, control);
    rep.totals = counted.totals();
    rep.writes = sink.writes();
  }
  int r = api().rbd_flush(image.get());
  if (r < 0) throw_rbd(r, "rbd_flush", target, "flushing " + target.spec() + " failed");
  // Every byte was read before anybody could open the source for writing.
  if (use.lease) use.lease->throw_if_broken();
}

// --verify: the source read again and compared with the image.
void verify_import(Reader& reader, Image& image, const Target& target, const ImportOptions& options,
                   const ImageUse& use, Control& control, ImportReport& rep) {
  auto v0 = std::chrono::steady_clock::now();
  try {
    verify(reader, options.scan, image, target, rep.object_size, options.parallel, control);
  } catch (const Error&) {
    if (use.lease) use.lease->throw_if_broken();  // a writer came: say so, not "mismatch"
    throw;
  }
  if (use.lease) use.lease->throw_if_broken();
  rep.verified = true;
  rep.verify_seconds = since(v0);
}

// Call inside a catch after a failed import: the sink drained every write in
// flight and the image is closed (their destructors ran); removes what was
// half written (unless --keep-partial) and rethrows, the message saying what
// was left behind when it matters.
[[noreturn]] void rethrow_after_removing_partial(IoCtx& io, const Target& target, const ImportOptions& options) {
  std::string note;
  if (options.keep_partial) {
    note = "the partial image " + target.spec() + " was kept (--keep-partial)";
  } else {
    int r = remove_image(io, target);
    if (r < 0 && r != -ENOENT) {
      note = "the partial image " + target.spec() + " could not be removed (" + errno_name(-r) +
             "): remove it with 'rbd rm " + target.pool + "/" + (target.ns.empty() ? "" : target.ns + "/") +
             target.image + "'";
    }
  }
  if (note.empty()) throw;
  try {
    throw;
  } catch (const Error& e) {
    throw Error(e.errnum(), e.code(), e.syscall(), e.path(), std::string(e.what()) + "; " + note);
  } catch (const Cancelled&) {
    throw Cancelled(note);  // Ctrl-C: "stopped; <note>"
  }
  // Others pass through unchanged (the catch above rethrows them).
}

}  // namespace

ImportReport copy_to_rbd(const std::string& source, const Target& target, const ImportOptions& options,
                         Control& control) {
  const auto t0 = std::chrono::steady_clock::now();
  OpenedImage opened;  // before `use`: its lease guard goes first
  // The same source checks as a file copy: refused while a VM or another
  // process writes it (the image would be inconsistent), unless --force.
  ImageUse use = check_image_use(source, UseMode::copy, options.force, [&](bool) {
    opened = open_image(source, options.format, options.use_seek_hole, options.backing);
    return opened.file->fd();
  });
  Reader& reader = *opened.reader;
  Cluster cluster(target);
  IoCtx io(cluster, target);
  create_image(io, target, reader.size(),
               CreateOptions{options.object_size, options.features, options.data_pool, options.overwrite});

  ImportReport rep = import_report(source, opened, target, cluster, use);
  try {
    Image image(io, target);
    rep.object_size = image.object_size();
    write_image(reader, image, target, options, use, control, rep);
    rep.seconds = since(t0);
    if (options.verify) verify_import(reader, image, target, options, use, control, rep);
    int r = image.close();
    if (r < 0) throw_rbd(r, "rbd_close", target, "closing " + target.spec() + " failed");
  } catch (...) {
    rethrow_after_removing_partial(io, target, options);
  }
  return rep;
}

ExportReport copy_from_rbd(const Target& source, const std::string& target, const ExportOptions& options,
                           Control& control) {
  const auto t0 = std::chrono::steady_clock::now();
  // A refused target (a device, a link, an existing file) before connecting.
  check_copy_target(target, options.overwrite, {});
  Cluster cluster(source);
  IoCtx io(cluster, source);
  Image image(io, source);
  RbdReader reader(image, source);
  ExportReport rep;
  rep.image = source.spec();
  rep.target = target;
  rep.size = reader.size();
  rep.allocated_in_image = reader.allocated_bytes();
  SparseFileSink sink(target, options.overwrite);
  CountingSink counted(&sink);
  run_scan(reader, options.scan, counted, control);
  control.throw_if_cancelled();
  sink.commit();
  rep.totals = counted.totals();
  rep.allocated_after = sink.allocated_bytes();
  rep.seconds = since(t0);
  return rep;
}

RbdInfo rbd_info(const Target& target) {
  Cluster cluster(target);
  IoCtx io(cluster, target);
  Image image(io, target);
  RbdReader reader(image, target);
  RbdInfo info;
  info.image = target.spec();
  info.size = reader.size();
  info.used = reader.allocated_bytes();
  info.object_size = image.object_size();
  return info;
}

}  // namespace blocksmith::rbd
