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
#include "core/sinks/sparse_file_sink.h"
#include "core/zero/zero_detect.h"
#include "core/rbd/rbd_reader.h"
#include "core/sinks/rbd_sink.h"

namespace blocksmith::rbd {
namespace {

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void create_image(IoCtx& io, const Target& t, uint64_t size, const ImportOptions& o) {
  const Api& a = api();
  rbd_image_options_t opts = nullptr;
  a.rbd_image_options_create(&opts);  // never pass NULL to rbd_create4: it crashes
  struct Guard {
    rbd_image_options_t o;
    ~Guard() { api().rbd_image_options_destroy(o); }
  } guard{opts};
  a.rbd_image_options_set_uint64(opts, kOptFormat, 2);
  if (o.features) a.rbd_image_options_set_uint64(opts, kOptFeatures, o.features);
  if (o.object_size) {
    uint64_t order = 0;
    while ((uint64_t(1) << order) < o.object_size) ++order;
    a.rbd_image_options_set_uint64(opts, kOptOrder, order);
  }
  if (!o.data_pool.empty()) a.rbd_image_options_set_string(opts, kOptDataPool, o.data_pool.c_str());
  int r = a.rbd_create4(io.get(), t.image.c_str(), size, opts);
  if (r == -EEXIST && o.overwrite) {
    r = a.rbd_remove(io.get(), t.image.c_str());
    if (r < 0) throw_rbd(r, "rbd_remove", t, "cannot remove the existing image to overwrite it");
    r = a.rbd_create4(io.get(), t.image.c_str(), size, opts);
  }
  if (r == -EEXIST) {
    throw Error(EEXIST, "EEXIST", "rbd_create4", t.spec(), "image " + t.spec() + " exists (use --overwrite to replace it)");
  }
  if (r < 0) throw_rbd(r, "rbd_create4", t, "cannot create image " + t.spec());
}

// Compares what the scan pipeline delivers from the source (in order: its
// read-ahead, holes and zero runs) with the image, read ahead in object-sized
// aio reads, `parallel` in flight. Holes and zero runs are compared with
// zeros without reading the source.
class VerifySink final : public Sink {
 public:
  VerifySink(Image& img, const Target& t, const std::string& source, uint64_t size, uint64_t object_size,
             unsigned parallel)
      : img_(img), t_(t), source_(source), size_(size), object_size_(object_size), window_(std::max(1u, parallel)) {
    for (auto& r : window_) r.buf = std::make_unique<AlignedBuffer>(object_size);
  }
  // Every read still in flight is waited for before its buffer goes.
  ~VerifySink() override {
    for (auto& r : window_)
      if (r.c) {
        api().rbd_aio_wait_for_complete(r.c);
        api().rbd_aio_release(r.c);
      }
  }

  void on_hole(uint64_t off, uint64_t len) override { compare(off, len, nullptr); }
  void on_zero(uint64_t off, uint64_t len) override { compare(off, len, nullptr); }
  void on_data(uint64_t off, const uint8_t* bytes, size_t len) override { compare(off, len, bytes); }

 private:
  struct Read {
    std::unique_ptr<AlignedBuffer> buf;
    rbd_completion_t c = nullptr;
    uint64_t off = 0;
    size_t len = 0;
  };

  // Keeps `parallel` reads in flight ahead of the comparison.
  void issue() {
    const Api& a = api();
    while (next_ < size_ && count_ < window_.size()) {
      Read& r = window_[(head_ + count_) % window_.size()];
      r.off = next_;
      r.len = static_cast<size_t>(std::min<uint64_t>(object_size_, size_ - next_));
      int rc = a.rbd_aio_create_completion(nullptr, nullptr, &r.c);
      if (rc < 0) throw_rbd(rc, "rbd_aio_create_completion", t_, "verify");
      rc = a.rbd_aio_read2(img_.get(), r.off, r.len, reinterpret_cast<char*>(r.buf->data()), r.c, kFadviseSequential);
      if (rc < 0) {
        a.rbd_aio_release(r.c);
        r.c = nullptr;
        throw_rbd(rc, "rbd_aio_read2", t_, "verify read at byte " + std::to_string(r.off));
      }
      next_ += r.len;
      ++count_;
    }
  }

  // The oldest read, complete: the image's bytes from its offset.
  Read& oldest() {
    issue();
    Read& r = window_[head_];
    if (r.c) {
      const Api& a = api();
      a.rbd_aio_wait_for_complete(r.c);
      ssize_t got = a.rbd_aio_get_return_value(r.c);
      a.rbd_aio_release(r.c);
      r.c = nullptr;
      if (got < 0) throw_rbd(static_cast<int>(got), "rbd_aio_read2", t_, "verify read at byte " + std::to_string(r.off));
      if (static_cast<size_t>(got) != r.len) mismatch(r.off);
    }
    return r;
  }

  [[noreturn]] void mismatch(uint64_t object) {
    throw Error(EIO, "ERR_VERIFY_MISMATCH", "verify", t_.spec(),
                "verification failed: " + t_.spec() + " differs from '" + source_ + "' in the object at byte " +
                    std::to_string(object));
  }

  // bytes: the source's; null: zeros.
  void compare(uint64_t off, uint64_t len, const uint8_t* bytes) {
    while (len > 0) {
      Read& r = oldest();
      const size_t k = static_cast<size_t>(std::min<uint64_t>(len, r.off + r.len - off));
      const uint8_t* mine = r.buf->data() + (off - r.off);
      if (bytes ? std::memcmp(mine, bytes, k) != 0 : !is_zero(mine, k)) mismatch(r.off);
      off += k;
      len -= k;
      if (bytes) bytes += k;
      if (off == r.off + r.len) {  // this object is done: its buffer takes the next read
        head_ = (head_ + 1) % window_.size();
        --count_;
      }
    }
  }

  Image& img_;
  const Target& t_;
  const std::string& source_;
  const uint64_t size_, object_size_;
  std::vector<Read> window_;
  size_t head_ = 0, count_ = 0;
  uint64_t next_ = 0;  // the next image byte to read
};

// Reads the source again through the pipeline and the image in object-sized
// reads, and compares them byte for byte.
void verify(Reader& src, const ScanOptions& scan, Image& img, const Target& t, uint64_t object_size, unsigned parallel,
            Control& control) {
  VerifySink sink(img, t, src.path(), src.size(), object_size, parallel);
  ScanOptions so = scan;
  so.free = nullptr;
  so.chunk_size = std::max<size_t>(so.chunk_size, object_size);  // the source in object-sized reads too
  run_scan(src, so, sink, control);
}

// Removes a half-written image after a failure. EBUSY means the cluster
// still holds the watch of our closed image handle (its unwatch timed out
// while an OSD was away); the OSD drops it after osd_client_watch_timeout
// (30 s by default), so keep trying for up to the configured timeout.
int remove_partial(IoCtx& io, const Target& t) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(t.timeout_seconds);
  for (;;) {
    int r = api().rbd_remove(io.get(), t.image.c_str());
    if (r != -EBUSY || std::chrono::steady_clock::now() >= deadline) return r;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
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
  create_image(io, target, reader.size(), options);

  ImportReport rep;
  rep.source = source;
  rep.format = image_format_name(opened.description.format);
  rep.backing_chain = opened.description.backing_chain;
  rep.image = target.spec();
  rep.size = reader.size();
  rep.mon_host = cluster.conf_get("mon_host");
  // librados does not expose the entity name through conf_get: the id we
  // connected as is the one given, or client.admin's.
  rep.user = target.user.empty() ? "admin" : target.user;
  rep.warnings = use.warnings;

  bool ok = false;
  try {
    Image image(io, target);
    rep.object_size = image.object_size();
    {
      const uint64_t write_size = std::min<uint64_t>(std::max<uint64_t>(options.write_size, 4096), rep.object_size);
      RbdSink sink(image.get(), target, write_size, options.parallel);
      CountingSink counted(&sink);
      LeaseCheckedSink checked(counted, use.lease.get());
      ScanOptions scan = options.scan;
      // Reads of at least an object: a data run becomes back-to-back aligned writes.
      scan.chunk_size = std::max<size_t>(scan.chunk_size, rep.object_size);
      run_scan(reader, scan, checked, control);
      rep.totals = counted.totals();
      rep.writes = sink.writes();
    }
    int r = api().rbd_flush(image.get());
    if (r < 0) throw_rbd(r, "rbd_flush", target, "flushing " + target.spec() + " failed");
    // Every byte was read before anybody could open the source for writing.
    if (use.lease) use.lease->throw_if_broken();
    rep.seconds = since(t0);
    if (options.verify) {
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
    r = image.close();
    if (r < 0) throw_rbd(r, "rbd_close", target, "closing " + target.spec() + " failed");
    ok = true;
  } catch (...) {
    if (ok) throw;
    // The sink drained every write in flight and the image is closed (their
    // destructors ran); remove what was half written, or say that we could not.
    std::string note;
    if (options.keep_partial) {
      note = "the partial image " + target.spec() + " was kept (--keep-partial)";
    } else {
      int r = remove_partial(io, target);
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
    // Others pass through unchanged.
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
