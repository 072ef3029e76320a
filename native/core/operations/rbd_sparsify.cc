#include "core/operations/rbd_sparsify.h"

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "core/base/error.h"
#include "core/rbd/rbd_reader.h"
#include "core/sinks/counting_sink.h"
#include "core/sinks/rbd_discard_sink.h"

namespace blocksmith::rbd {
namespace {

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The clients watching the image other than our own handle (whose watch is
// registered under our instance id), as "ADDR (client.ID)".
std::vector<std::string> other_watchers(Cluster& cluster, Image& image, const Target& t) {
  const Api& a = api();
  const uint64_t self = a.rados_get_instance_id(cluster.get());
  std::vector<rbd_image_watcher_t> list(8);
  size_t n = list.size();
  int r;
  for (;;) {
    r = a.rbd_watchers_list(image.get(), list.data(), &n);
    if (r != -ERANGE) break;
    list.resize(n);  // n now says how many there are
  }
  if (r < 0) throw_rbd(r, "rbd_watchers_list", t, "cannot list the clients that have " + t.spec() + " open");
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) {
    if (static_cast<uint64_t>(list[i].id) == self) continue;
    out.push_back(std::string(list[i].addr ? list[i].addr : "?") + " (client." + std::to_string(list[i].id) + ")");
  }
  a.rbd_watchers_list_cleanup(list.data(), n);
  return out;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

void refuse_if_too_many(const std::vector<std::string>& others, const RbdSparsifyOptions& o, const Target& t) {
  if (others.size() <= o.allow_watchers) return;
  throw Error(EBUSY, "EBUSY", "rbd_watchers_list", t.spec(),
              t.spec() + " is open by " + std::to_string(others.size()) + " other client" +
                  (others.size() == 1 ? "" : "s") + " (" + joined(others) + "): stop " +
                  (others.size() == 1 ? "it" : "them") + " first, or use --force");
}

// The exclusive lock, taken explicitly (so librbd does not hand it over to
// another client that asks) and released when the sparsify is done.
class ExclusiveLock {
 public:
  ExclusiveLock() = default;
  ~ExclusiveLock() { release(); }
  ExclusiveLock(const ExclusiveLock&) = delete;
  ExclusiveLock& operator=(const ExclusiveLock&) = delete;
  void acquire(Image& image, const Target& t) {
    int r = api().rbd_lock_acquire(image.get(), RBD_LOCK_MODE_EXCLUSIVE);
    if (r < 0) throw_rbd(r, "rbd_lock_acquire", t, "cannot take the exclusive lock of " + t.spec());
    held_ = image.get();
  }
  void release() noexcept {
    if (held_) api().rbd_lock_release(held_);
    held_ = nullptr;
  }

 private:
  rbd_image_t held_ = nullptr;
};

// rbd_discard_granularity_bytes (librbd skips partial discards below it).
uint64_t discard_granularity(Cluster& cluster) {
  std::string g = cluster.conf_get("rbd_discard_granularity_bytes");
  try {
    uint64_t v = g.empty() ? 0 : std::stoull(g);
    return v ? v : 64 << 10;
  } catch (...) {
    return 64 << 10;
  }
}

// Reads the image through the pipeline and discards its zero runs (dry run:
// counts them). Fills totals, discards, discarded_bytes; returns the bytes
// of whole zero objects (those a discard removes).
uint64_t run_discard_pipeline(Image& image, RbdReader& reader, const Target& t, const RbdSparsifyOptions& o,
                              uint64_t granularity, bool dry_run, Control& control, RbdSparsifyReport& rep) {
  DiscardPlan plan;
  plan.object_size = rep.object_size;
  plan.image_size = rep.size;
  plan.min_partial = std::max<uint64_t>({granularity, o.scan.block_size, 4096});
  RbdDiscardSink sink(image.get(), t, reader.own_extents(), plan, o.parallel, dry_run);
  CountingSink counted(&sink);
  ScanOptions scan = o.scan;
  scan.free = nullptr;
  // Object-sized reads: one rbd_read per object.
  scan.chunk_size = std::max<size_t>(scan.chunk_size, rep.object_size);
  run_scan(reader, scan, counted, control);
  rep.totals = counted.totals();
  rep.discards = sink.stats().discards;
  rep.discarded_bytes = sink.stats().discarded_bytes;
  return sink.stats().freed_bytes;
}

// Ceph's sparsify with our Control: progress in bytes, a cancel stops it at
// the next object (the callback's non-zero return).
void run_ceph_sparsify(Image& image, const Target& t, const RbdSparsifyOptions& o, uint64_t object_size,
                       Control& control, uint64_t size) {
  // A power of two from 4 KiB to the object size (librbd's rule).
  size_t sparse = 4096;
  while (sparse < o.scan.block_size && sparse < object_size) sparse <<= 1;
  struct Ctx {
    Control* control;
    uint64_t size;
  } ctx{&control, size};
  control.set_total(size);
  auto cb = [](uint64_t offset, uint64_t total, void* arg) -> int {
    auto* c = static_cast<Ctx*>(arg);
    if (total > 0) c->control->set_done(c->size / total * offset + c->size % total * offset / total);
    c->control->tick();
    return c->control->cancelled() ? -ECANCELED : 0;
  };
  int r = api().rbd_sparsify_with_progress(image.get(), sparse, cb, &ctx);
  control.throw_if_cancelled();
  if (r < 0) throw_rbd(r, "rbd_sparsify_with_progress", t, "sparsifying " + t.spec() + " failed", true);
  control.set_done(size);
  control.tick(true);
}

}  // namespace

RbdSparsifyReport sparsify_rbd_in_place(const Target& target, const RbdSparsifyOptions& options, Control& control) {
  const auto t0 = std::chrono::steady_clock::now();
  Cluster cluster(target);
  IoCtx io(cluster, target);
  Image image(io, target);

  RbdSparsifyReport rep;
  rep.image = target.spec();
  rep.dry_run = options.dry_run;
  rep.object_size = image.object_size();
  rep.watchers = other_watchers(cluster, image, target);
  refuse_if_too_many(rep.watchers, options, target);

  const Api& a = api();
  uint64_t features = 0;
  if (a.rbd_get_features(image.get(), &features) < 0) features = 0;
  ExclusiveLock lock;  // after `image`: released before it closes
  if (rep.watchers.empty() && !options.dry_run && (features & kFeatureExclusiveLock)) {
    lock.acquire(image, target);
    // Somebody who opened the image between the listing and the lock has
    // had to give the lock up and cannot write any more; still say no when
    // that makes too many.
    rep.watchers = other_watchers(cluster, image, target);
    if (!rep.watchers.empty()) {
      lock.release();
      RbdSparsifyOptions none = options;
      none.allow_watchers = 0;
      refuse_if_too_many(rep.watchers, none, target);
    }
  }

  RbdReader reader(image, target);
  rep.size = reader.size();
  rep.used_before = reader.allocated_bytes();
  const uint64_t granularity = discard_granularity(cluster);

  if (rep.watchers.empty()) {
    rep.method = "discard";
    uint64_t freed = run_discard_pipeline(image, reader, target, options, granularity, options.dry_run, control, rep);
    if (options.dry_run) {
      rep.used_after = rep.used_before - std::min(rep.used_before, freed);
    } else {
      int r = a.rbd_flush(image.get());
      if (r < 0) throw_rbd(r, "rbd_flush", target, "flushing " + target.spec() + " failed", true);
      lock.release();
      rep.used_after = RbdReader(image, target).allocated_bytes();
    }
  } else {
    rep.method = "ceph-sparsify";
    rep.warnings.push_back(target.spec() + " is open by " + joined(rep.watchers) +
                           ": reclaimed by Ceph's own sparsify (each object checked and zeroed on its OSD, through "
                           "the lock owner), since reading then discarding could lose a write made in between");
    if (options.dry_run) {
      // Nothing is written: the pipeline reads and counts what a discard run
      // would free.
      uint64_t freed = run_discard_pipeline(image, reader, target, options, granularity, true, control, rep);
      rep.used_after = rep.used_before - std::min(rep.used_before, freed);
      rep.warnings.push_back("dry run: the figures are what a discard run would free (whole zero objects found by "
                             "reading now); Ceph's sparsify may free a little more or less as the image changes");
    } else {
      run_ceph_sparsify(image, target, options, rep.object_size, control, rep.size);
      rep.used_after = RbdReader(image, target).allocated_bytes();
    }
  }
  int r = image.close();
  if (r < 0 && !options.dry_run) throw_rbd(r, "rbd_close", target, "closing " + target.spec() + " failed", true);
  rep.seconds = since(t0);
  return rep;
}

}  // namespace blocksmith::rbd
