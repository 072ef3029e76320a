#include "core/qcow2/qcow2_reader.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <thread>

#include "core/base/error.h"

namespace blocksmith::qcow2 {

Qcow2Reader::Qcow2Reader(std::unique_ptr<Reader> file, const BackingOpener& open_backing)
    : file_(std::move(file)), header_(read_header(*file_)) {
  map_ = std::make_unique<ClusterMap>(*file_, header_);
  threads_ = std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
  if (!header_.backing_file.empty()) {
    if (!open_backing) {
      throw Error(ENOTSUP, "ERR_QCOW2_UNSUPPORTED", "open", file_->path(),
                  "'" + file_->path() + "' has a backing file ('" + header_.backing_file + "'), which cannot be opened here");
    }
    backing_ = open_backing(header_.backing_file, header_.backing_format);
  }
}

void Qcow2Reader::read_file(uint8_t* dst, size_t len, uint64_t host) {
  // Like QEMU, bytes of a cluster past the end of the file read as zeros
  // (cluster_map refuses clusters that start past it).
  size_t got = file_->read_at(dst, len, host);
  if (got < len) std::memset(dst + got, 0, len - got);
}

void Qcow2Reader::read_backing(uint8_t* dst, size_t len, uint64_t off) {
  size_t got = 0;
  if (backing_ && off < backing_->size()) got = backing_->read_at(dst, static_cast<size_t>(std::min<uint64_t>(len, backing_->size() - off)), off);
  if (got < len) std::memset(dst + got, 0, len - got);
}

void Qcow2Reader::copy_from_cluster(const Segment& s, uint8_t* dst, uint64_t from, size_t n) {
  const size_t cs = static_cast<size_t>(header_.cluster_size);
  std::lock_guard lock(cache_mu_);
  if (cluster_host_ != s.host) {
    cluster_host_ = UINT64_MAX;
    const uint64_t avail = file_->size() - s.host;  // s.host < file size (cluster_map)
    const size_t len = static_cast<size_t>(std::min<uint64_t>(s.csize, avail));
    compressed_.resize(len);
    cluster_.resize(cs);
    if (file_->read_at(compressed_.data(), len, s.host) != len) {
      throw Error(EIO, "ERR_SOURCE_CHANGED", "read", path(), "'" + path() + "' shrank while being read");
    }
    decompress_cluster(header_.compression, compressed_.data(), len, cluster_.data(), cs, path(),
                       "the compressed cluster at virtual offset " + std::to_string(s.cluster_begin));
    cluster_host_ = s.host;
  }
  std::memcpy(dst, cluster_.data() + from, n);
}

// Reads the compressed bytes of `jobs` (in virtual order) into `in`: runs of
// clusters stored back to back in the file (qemu-img writes them so; their
// sector-rounded sizes overlap the next one's start) with one pread each,
// small gaps (metadata between them) read through. Cold, one 1-4 MiB read
// instead of a 20-60 KiB read per cluster.
void Qcow2Reader::read_compressed(std::vector<Inflate>& jobs, std::vector<uint8_t>& in) {
  constexpr uint64_t kGap = 64 << 10;      // read through at most this much between clusters
  constexpr uint64_t kMaxRun = 16 << 20;   // bytes per pread at most
  struct Run {
    uint64_t begin, end;
    size_t at;  // where in `in`
  };
  std::vector<Run> runs;
  std::vector<size_t> run_of(jobs.size());
  const uint64_t file_size = file_->size();
  size_t total = 0;
  for (size_t i = 0; i < jobs.size(); ++i) {
    Inflate& j = jobs[i];
    j.csize = std::min<uint64_t>(j.csize, file_size - j.host);  // j.host < file size (cluster_map)
    const uint64_t end = j.host + j.csize;
    if (!runs.empty()) {
      Run& r = runs.back();
      if (j.host >= r.begin && j.host <= r.end + kGap && std::max(r.end, end) - r.begin <= kMaxRun) {
        if (end > r.end) {
          total += static_cast<size_t>(end - r.end);
          r.end = end;
        }
        run_of[i] = runs.size() - 1;
        continue;
      }
    }
    runs.push_back({j.host, end, total});
    total += static_cast<size_t>(j.csize);
    run_of[i] = runs.size() - 1;
  }
  in.resize(total);
  for (const Run& r : runs) {
    const size_t len = static_cast<size_t>(r.end - r.begin);
    if (file_->read_at(in.data() + r.at, len, r.begin) != len)
      throw Error(EIO, "ERR_SOURCE_CHANGED", "read", path(), "'" + path() + "' shrank while being read");
  }
  for (size_t i = 0; i < jobs.size(); ++i) {
    const Run& r = runs[run_of[i]];
    jobs[i].src = in.data() + r.at + (jobs[i].host - r.begin);
  }
}

// Decompresses whole clusters (their bytes already read) straight into their
// place in the caller's buffer, spread over up to threads_ threads.
void Qcow2Reader::inflate_all(const std::vector<Inflate>& jobs) {
  const size_t cs = static_cast<size_t>(header_.cluster_size);
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::atomic<bool> failed{false};
  auto work = [&] {
    try {
      for (size_t i; !failed.load(std::memory_order_relaxed) && (i = next.fetch_add(1)) < jobs.size();) {
        const Inflate& j = jobs[i];
        decompress_cluster(header_.compression, j.src, static_cast<size_t>(j.csize), j.dst, cs, path(),
                           "the compressed cluster at virtual offset " + std::to_string(j.cluster_begin));
      }
    } catch (...) {
      if (!failed.exchange(true)) error = std::current_exception();
    }
  };
  const size_t helpers = std::min<size_t>(threads_, jobs.size()) - 1;
  std::vector<std::thread> pool;
  pool.reserve(helpers);
  for (size_t t = 0; t < helpers; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

// While reads move forward through the file (an image written in order:
// qemu-img convert's, compressed or not), asks for the next kAhead bytes of
// the file ahead of them. The kernel's own read-ahead stops when the reader
// does, and a copy's reader waits whenever the writer waits for writeback:
// this keeps the disk reading meanwhile. Reads that jump about (an image
// grown by a guest) ask for nothing.
void Qcow2Reader::read_ahead(uint64_t host_begin, uint64_t host_end) {
  constexpr uint64_t kAhead = 64 << 20, kNear = 4 << 20;
  std::lock_guard lock(ahead_mu_);
  const bool forward = last_host_end_ != UINT64_MAX && host_begin + kNear >= last_host_end_ &&
                       host_begin <= last_host_end_ + kNear;
  last_host_end_ = host_end;
  if (!forward) {
    ahead_to_ = host_end;
    return;
  }
  if (ahead_to_ >= host_end + kAhead / 2) return;
  const uint64_t from = std::max(ahead_to_, host_end), to = std::min(host_end + kAhead, file_->size());
  if (to > from) file_->advise_willneed(from, to - from);
  ahead_to_ = std::max(ahead_to_, to);
}

size_t Qcow2Reader::read_at(void* buf, size_t len, uint64_t off) {
  const uint64_t size = header_.size;
  if (off >= size) return 0;
  len = static_cast<size_t>(std::min<uint64_t>(len, size - off));
  auto* out = static_cast<uint8_t*>(buf);
  uint64_t pos = off;
  const uint64_t end = off + len;
  std::vector<Inflate> jobs;
  uint64_t host_begin = UINT64_MAX, host_end = 0;  // of the first and last stored bytes read
  while (pos < end) {
    Segment s = segment(pos, end);
    uint8_t* dst = out + (pos - off);
    const size_t n = static_cast<size_t>(s.end - pos);
    if (s.kind == Kind::data || s.kind == Kind::compressed) {
      if (host_begin == UINT64_MAX) host_begin = s.host;
      host_end = s.host + (s.kind == Kind::data ? n : s.csize);
    }
    switch (s.kind) {
      case Kind::data:
        read_file(dst, n, s.host);
        break;
      case Kind::zero:
        std::memset(dst, 0, n);
        break;
      case Kind::unallocated:
        read_backing(dst, n, pos);
        break;
      case Kind::compressed:
        if (pos == s.cluster_begin && n == header_.cluster_size) {
          jobs.push_back({s.host, s.csize, dst, s.cluster_begin});
        } else {  // part of a cluster: through the one-cluster cache
          copy_from_cluster(s, dst, pos - s.cluster_begin, n);
        }
        break;
    }
    pos = s.end;
  }
  if (host_begin != UINT64_MAX) read_ahead(host_begin, host_end);
  if (!jobs.empty()) {
    std::vector<uint8_t> in;
    read_compressed(jobs, in);
    inflate_all(jobs);
  }
  return len;
}

// One step of the data map at `off` (< limit): up to where it is data or not.
Qcow2Reader::Piece Qcow2Reader::piece(uint64_t off, uint64_t limit) {
  Segment s = segment(off, limit);
  switch (s.kind) {
    case Kind::data:
    case Kind::compressed:
      return {s.end, true};
    case Kind::zero:
      return {s.end, false};
    case Kind::unallocated:
      break;
  }
  if (!backing_ || off >= backing_->size()) return {s.end, false};
  auto* q = dynamic_cast<Qcow2Reader*>(backing_.get());
  DataRange r = q ? q->data_within(off, s.end) : backing_->next_data(off);
  if (r.begin > off) return {std::min(r.begin, s.end), false};
  return {std::clamp(r.end, off + 1, s.end), true};
}

DataRange Qcow2Reader::data_within(uint64_t off, uint64_t limit) {
  limit = std::min(limit, header_.size);
  if (off >= limit) return {limit, limit};
  Piece p = piece(off, limit);
  while (!p.data) {
    off = p.end;
    if (off >= limit) return {limit, limit};
    p = piece(off, limit);
  }
  // Extend over following data pieces, at most 1 GiB ahead per call (the
  // pipeline asks again from where this range ends).
  const uint64_t begin = off;
  const uint64_t horizon = std::min(limit, begin + std::min<uint64_t>(limit - begin, uint64_t{1} << 30));
  uint64_t end = p.end;
  while (end < horizon) {
    Piece q = piece(end, limit);
    if (!q.data) break;
    end = q.end;
  }
  return {begin, end};
}

DataRange Qcow2Reader::next_data(uint64_t off) { return data_within(off, header_.size); }

}  // namespace blocksmith::qcow2
