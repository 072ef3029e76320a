#include "core/pipeline/scan_pipeline.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <map>
#include <cerrno>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/base/aligned_buffer.h"
#include "core/pipeline/buffer_pool.h"
#include "core/base/error.h"
#include "core/pipeline/read_gate.h"

namespace blocksmith {
namespace {

// A buffer and the classes of its blocks (classify.h), filled by a reader
// thread. Blocks follow the source's grid (the first and last may be partial).
struct Chunk {
  explicit Chunk(size_t size) : buf(size) {}
  AlignedBuffer buf;
  const uint8_t* bytes = nullptr;     // the piece's bytes: buf, or the consumer's buffer (deferred)
  std::vector<uint8_t> classes;       // one BlockClass per grid block; empty: not classified (all data)
  std::vector<DataRange> unreadable;  // zero-filled (ScanOptions::unreadable_sector)
};

struct Item {
  enum Type { hole, data, end, free } type = end;
  uint64_t off = 0;
  uint64_t len = 0;
  Chunk* chunk = nullptr;    // data only
  uint64_t ticket = 0;       // data only: its place in the ReadGate
  std::exception_ptr error;  // end only: why reading stopped
  bool deferred = false;     // data only: in the page cache, copied by the thread that delivers it
};

// Merges hole and zero pieces into maximal runs before they reach the sink.
class RunCoalescer {
 public:
  explicit RunCoalescer(Sink& sink) : sink_(sink) {}

  void hole(uint64_t off, uint64_t len) { add(Kind::hole, off, len); }
  void zero(uint64_t off, uint64_t len) { add(Kind::zero, off, len); }
  void free(uint64_t off, uint64_t len) { add(Kind::free, off, len); }
  void data(uint64_t off, const uint8_t* p, size_t len) {
    flush();
    sink_.on_data(off, p, len);
  }
  void flush() {
    if (kind_ == Kind::hole) sink_.on_hole(off_, len_);
    if (kind_ == Kind::zero) sink_.on_zero(off_, len_);
    if (kind_ == Kind::free) sink_.on_free(off_, len_);
    kind_ = Kind::none;
  }

 private:
  enum class Kind { none, hole, zero, free };
  void add(Kind k, uint64_t off, uint64_t len) {
    if (len == 0) return;
    if (kind_ == k && off_ + len_ == off) {
      len_ += len;
      return;
    }
    flush();
    kind_ = k;
    off_ = off;
    len_ = len;
  }

  Sink& sink_;
  Kind kind_ = Kind::none;
  uint64_t off_ = 0, len_ = 0;
};

// Cuts the source into an ordered sequence of holes and data chunks and hands
// them out one at a time, each with its sequence number, to whichever reader
// thread asks. SEEK_DATA/SEEK_HOLE (reader.next_data) runs under the lock, so
// the Reader only needs concurrent read_at.
class Planner {
 public:
  struct Task {
    uint64_t seq;
    Item item;
  };

  Planner(Reader& reader, const ScanOptions& opt, const Control& control)
      : reader_(reader), opt_(opt), control_(control), size_(reader.size()), pos_(std::min(opt.start, size_)),
        range_end_(pos_) {}

  Task next() {
    std::lock_guard lock(mu_);
    const uint64_t seq = seq_++;
    if (stopped_) return {seq, Item{}};
    try {
      control_.throw_if_cancelled();
      if (pos_ >= range_end_) {
        if (pos_ >= size_) return stop(seq, nullptr);
        DataRange r = reader_.next_data(pos_);
        r.begin = std::clamp<uint64_t>(r.begin, pos_, size_);
        r.end = std::clamp<uint64_t>(r.end, r.begin, size_);
        if (r.end == r.begin) r.end = size_;  // defensive: an empty range reported
        range_end_ = r.end;
        if (r.begin > pos_) {
          Item hole{Item::hole, pos_, r.begin - pos_, nullptr, 0, nullptr, false};
          pos_ = r.begin;
          return {seq, hole};
        }
      }
      // Chunks end on the block grid so a block is never split between reads.
      const uint64_t bs = opt_.block_size;
      uint64_t chunk_end = std::min<uint64_t>(range_end_, (pos_ / bs) * bs + opt_.chunk_size);
      // Free in the filesystem (sparsify --fs): not read. A piece stops where
      // a free range starts (its partial blocks are classified on their own).
      if (const fs::ByteRange* f = opt_.free ? opt_.free->next(pos_) : nullptr) {
        if (f->begin <= pos_) {
          const uint64_t free_end = std::min<uint64_t>(f->end, range_end_);
          Item free{Item::free, pos_, free_end - pos_, nullptr, 0, nullptr, false};
          pos_ = free_end;
          return {seq, free};
        }
        chunk_end = std::min<uint64_t>(chunk_end, f->begin);
      }
      Item data{Item::data, pos_, chunk_end - pos_, nullptr, data_seq_++, nullptr, false};
      pos_ = chunk_end;
      return {seq, data};
    } catch (...) {
      return stop(seq, std::current_exception());
    }
  }

  // After an error: everyone still asking gets an end item.
  void stop() {
    std::lock_guard lock(mu_);
    stopped_ = true;
  }

 private:
  Task stop(uint64_t seq, std::exception_ptr error) {
    stopped_ = true;
    Item end;
    end.error = std::move(error);
    return {seq, end};
  }

  Reader& reader_;
  const ScanOptions& opt_;
  const Control& control_;
  const uint64_t size_;
  std::mutex mu_;
  uint64_t seq_ = 0;
  uint64_t data_seq_ = 0;  // tickets for the ReadGate
  uint64_t pos_;           // next byte to hand out
  uint64_t range_end_;     // end of the data range pos_ is in
  bool stopped_ = false;
};

// Puts finished pieces back in sequence order and hands them to the sink.
// There is no consumer thread: the reader thread that completes the piece
// the sink is waiting for delivers it, and every later one already done,
// while the other reader keeps reading. On this paravirtualised 2-CPU VM a
// thread handoff per piece (futex wake + switch) cost more CPU than the copy.
// Sink calls are serialised by `delivering_` and happen in offset order.
class Delivery {
 public:
  using Deliver = std::function<bool(Item&)>;  // false: that was the end

  explicit Delivery(Deliver deliver) : deliver_(std::move(deliver)) {}

  void complete(uint64_t seq, Item item) {
    std::unique_lock lock(mu_);
    if (finished_) return;
    pending_.emplace(seq, std::move(item));
    if (delivering_) return;  // the thread delivering now will take it
    delivering_ = true;
    while (!finished_ && !pending_.empty() && pending_.begin()->first == next_) {
      auto node = pending_.extract(pending_.begin());
      lock.unlock();
      bool more = false;
      std::exception_ptr error;
      try {
        more = deliver_(node.mapped());
      } catch (...) {
        error = std::current_exception();
      }
      lock.lock();
      ++next_;
      if (!more) finish(std::move(error));
    }
    delivering_ = false;
  }

  // Stops delivering (an error on the calling side); wakes wait().
  void abandon() {
    std::lock_guard lock(mu_);
    finish(nullptr);
  }

  // Blocks until the end was delivered or delivery failed; rethrows the failure.
  void wait() {
    std::unique_lock lock(mu_);
    done_.wait(lock, [&] { return finished_ && !delivering_; });
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void finish(std::exception_ptr error) {
    if (!finished_) error_ = std::move(error);
    finished_ = true;
    pending_.clear();
    done_.notify_all();
  }

  Deliver deliver_;
  std::mutex mu_;
  std::condition_variable done_;
  std::map<uint64_t, Item> pending_;
  uint64_t next_ = 0;
  bool delivering_ = false;
  bool finished_ = false;
  std::exception_ptr error_;
};

// How a reader thread reads (run_scan decides once).
struct ReadMode {
  bool parallel = false;  // several readers: take what is cached first, on any thread
  bool direct = false;    // Reader::read_uncached: no read-ahead to disturb, no turns
  uint32_t unreadable_sector = 0;
};

// The rest of a piece after what came from the cache.
size_t read_rest(Reader& reader, const ReadMode& mode, uint8_t* buf, size_t len, uint64_t off,
                 std::vector<DataRange>& unreadable) {
  if (mode.unreadable_sector) {
    try {
      return mode.direct ? reader.read_uncached(buf, len, off) : reader.read_at(buf, len, off);
    } catch (const Error& e) {
      if (e.errnum() != EIO) throw;
    }
    return read_skipping_unreadable(reader, buf, len, off, mode.unreadable_sector,
                                    [&](uint64_t o, uint64_t n) { unreadable.push_back({o, o + n}); });
  }
  return mode.direct ? reader.read_uncached(buf, len, off) : reader.read_at(buf, len, off);
}

// Reads one data piece. Buffered: from the page cache on any thread, from
// the disk only in turn (see ReadGate); with one reader there is nothing to
// order. Direct: every reader at once (no read-ahead to disturb).
size_t read_piece(Reader& reader, ReadGate& gate, const ReadMode& mode, const Item& item, Chunk& chunk) {
  struct Finish {
    ReadGate& gate;
    uint64_t ticket;
    ~Finish() { gate.finish(ticket); }
  } finish{gate, item.ticket};
  const size_t want = static_cast<size_t>(item.len);
  uint8_t* buf = chunk.buf.data();
  chunk.unreadable.clear();
  size_t got = mode.parallel && !mode.direct ? reader.read_cached(buf, want, item.off) : 0;
  if (got < want) {
    if (!mode.direct) gate.wait_turn(item.ticket);
    got += read_rest(reader, mode, buf + got, want - got, item.off + got, chunk.unreadable);
  }
  return got;
}

// After a piece was read (`got` bytes): all of it, or the source shrank;
// then its blocks are classified.
void finish_piece(const Reader& reader, const ScanOptions& opt, const Item& item, size_t got, Chunk& chunk) {
  const size_t want = static_cast<size_t>(item.len);
  if (got < want) {
    throw Error(0, "ERR_SOURCE_CHANGED", "read", reader.path(),
                "'" + reader.path() + "' shrank while being read: it had " + std::to_string(reader.size()) +
                    " bytes, reading stopped at byte " + std::to_string(item.off + got));
  }
  chunk.classes.clear();
  if (opt.classify) {
    chunk.classes.resize(grid_block_count(item.off, want, opt.block_size));
    classify_grid(chunk.bytes, item.off, want, opt.block_size, chunk.classes.data());
  }
}

// A deferred piece (direct mode, in the page cache): copied and classified
// by the thread that consumes it, into one buffer kept for that (deliveries
// are serialised), so a warm scan copies into the same memory every time,
// which stays in the consuming core's cache. With a sink that does much per
// byte (carving), copying on the reader threads cost ~12% more CPU (0.3 s
// of 2.6 s on a 3 GiB image): half of the pieces then crossed cores; copying
// into the rotating pool buffers ~5% more.
void read_deferred(Reader& reader, const ScanOptions& opt, const ReadMode& mode, const Item& item, uint8_t* into) {
  Chunk& chunk = *item.chunk;
  chunk.unreadable.clear();
  chunk.bytes = into;
  size_t got = read_rest(reader, mode, into, static_cast<size_t>(item.len), item.off, chunk.unreadable);
  finish_piece(reader, opt, item, got, chunk);
}

// A reader thread: take a buffer, then the next task; read and classify (in
// direct mode a piece already in the page cache is left to the consuming
// thread instead: read_deferred).
// The buffer is taken first so the holder of the oldest sequence number never
// waits for one (buffers come back only as pieces are delivered, in order).
void read_pieces(Reader& reader, const ScanOptions& opt, Planner& planner, Delivery& delivery,
                 BufferPool<Chunk>& free_chunks, ReadGate& gate, ReadMode mode) {
  Chunk* mine = nullptr;
  for (;;) {
    if (!mine) {
      mine = free_chunks.take();
      if (!mine) return;  // the scan is over
    }
    Planner::Task t = planner.next();
    if (t.item.type == Item::end) {
      free_chunks.give(mine);
      delivery.complete(t.seq, std::move(t.item));
      return;
    }
    if (t.item.type == Item::data) {
      try {
        if (mode.direct && reader.cached(t.item.off, static_cast<size_t>(t.item.len))) {
          gate.finish(t.item.ticket);
          t.item.deferred = true;
        } else {
          mine->bytes = mine->buf.data();
          finish_piece(reader, opt, t.item, read_piece(reader, gate, mode, t.item, *mine), *mine);
        }
      } catch (...) {
        planner.stop();
        Item end;
        end.error = std::current_exception();
        free_chunks.give(mine);
        delivery.complete(t.seq, std::move(end));
        return;
      }
      t.item.chunk = mine;
      mine = nullptr;
    }
    delivery.complete(t.seq, std::move(t.item));
  }
}

// Turns a classified chunk into runs for the sink, in order.
void deliver_chunk(const Item& item, uint64_t bs, RunCoalescer& runs) {
  const uint8_t* base = item.chunk->bytes;
  const uint64_t end = item.off + item.len;
  if (item.chunk->classes.empty()) {  // not classified: all data
    runs.data(item.off, base, static_cast<size_t>(item.len));
    return;
  }
  uint64_t data_start = 0;
  bool in_data = false;
  size_t i = 0;
  for (uint64_t pos = item.off; pos < end; ++i) {
    uint64_t piece_end = std::min(end, (pos / bs + 1) * bs);
    if (item.chunk->classes[i] == kBlockZero) {
      if (in_data) {
        runs.data(data_start, base + (data_start - item.off), static_cast<size_t>(pos - data_start));
        in_data = false;
      }
      runs.zero(pos, piece_end - pos);
    } else if (!in_data) {
      in_data = true;
      data_start = pos;
    }
    pos = piece_end;
  }
  if (in_data) runs.data(data_start, base + (data_start - item.off), static_cast<size_t>(end - data_start));
}

size_t reader_count(const Reader& reader, const ScanOptions& opt) {
  if (!reader.concurrent_reads()) return 1;
  if (opt.readers) return std::clamp<size_t>(opt.readers, 1, 16);
  unsigned cpus = std::thread::hardware_concurrency();
  return std::clamp<size_t>(cpus, 1, 2);
}


// How the reader threads read, decided once. advise_sequential first: a
// Reader that opens an O_DIRECT descriptor for read_uncached does it after.
ReadMode read_mode_for(Reader& reader, const ScanOptions& opt, size_t readers) {
  reader.advise_sequential();
  ReadMode mode;
  mode.parallel = readers > 1;
  mode.direct = opt.direct && reader.open_uncached();
  mode.unreadable_sector = opt.unreadable_sector;
  return mode;
}

// The scan's buffers: owned here, lent out through the pool.
struct ChunkBuffers {
  ChunkBuffers(size_t count, size_t size) {
    for (size_t i = 0; i < count; ++i) {
      storage.push_back(std::make_unique<Chunk>(size));
      pool.give(storage.back().get());
    }
  }
  std::vector<std::unique_ptr<Chunk>> storage;
  BufferPool<Chunk> pool;
};

// Takes the pieces in offset order, on whichever reader thread completes the
// next one (see Delivery), and hands their runs to the sink. Returns false
// when that was the last piece the sink gets.
class Consumer {
 public:
  Consumer(Reader& reader, const ScanOptions& opt, const ReadMode& mode, Sink& sink, Control& control,
           Planner& planner, BufferPool<Chunk>& free_chunks, uint64_t size, uint64_t start)
      : reader_(reader), opt_(opt), mode_(mode), sink_(sink), control_(control), planner_(planner),
        free_chunks_(free_chunks), size_(size), start_(start), runs_(sink) {}

  bool operator()(Item& item) {
    if (item.type == Item::end) return end(item);
    control_.throw_if_cancelled();
    if (item.type == Item::hole) {
      runs_.hole(item.off, item.len);
    } else if (item.type == Item::free) {
      runs_.free(item.off, item.len);
    } else {
      data(item);
    }
    control_.set_done(item.off + item.len - start_);
    control_.tick();
    if (sink_.done()) {
      planner_.stop();  // no more reads
      return false;
    }
    return true;
  }

 private:
  bool end(const Item& item) {
    if (item.error) std::rethrow_exception(item.error);
    control_.throw_if_cancelled();
    runs_.flush();
    // Cancelled while the last run was delivered (by the sink itself, or
    // Ctrl-C): the scan did not finish, so no on_end.
    control_.throw_if_cancelled();
    sink_.on_end(size_);
    control_.set_done(size_ - start_);
    control_.tick(true);
    return false;
  }

  void data(Item& item) {
    // The buffer goes back even if the sink throws.
    struct Release {
      BufferPool<Chunk>& free_chunks;
      Chunk* chunk;
      ~Release() { free_chunks.give(chunk); }
    } release{free_chunks_, item.chunk};
    if (item.deferred && !opt_.classify) {
      data_in_slices(item);
    } else {
      if (item.deferred) {
        if (!consumer_buf_) consumer_buf_ = std::make_unique<AlignedBuffer>(opt_.chunk_size);
        read_deferred(reader_, opt_, mode_, item, consumer_buf_->data());
      }
      if (!item.chunk->unreadable.empty()) {
        runs_.flush();  // in offset order: the runs before come first
        for (const DataRange& u : item.chunk->unreadable) sink_.on_unreadable(u.begin, u.end - u.begin);
      }
      deliver_chunk(item, opt_.block_size, runs_);
    }
    if (opt_.drop_behind) reader_.advise_done(item.off, item.len);
  }

  // A deferred piece that is not classified (every byte is data: carving),
  // copied from the page cache and delivered a slice at a time into one
  // buffer of kSlice bytes, so the sink reads each slice while it is still in
  // this core's L2 cache. Read whole into a 16 MiB buffer, the carver's
  // signature search read it back from memory: 13% of a warm carve's CPU on a
  // 3 GiB image, ~4% in slices. The pieces stay large for direct reads
  // (cold: the disk wants large requests in flight).
  static constexpr size_t kSlice = size_t(1) << 20;
  void data_in_slices(const Item& item) {
    if (!slice_buf_) slice_buf_ = std::make_unique<AlignedBuffer>(std::min(opt_.chunk_size, kSlice));
    const size_t slice = std::min(opt_.chunk_size, kSlice);
    Chunk& chunk = *item.chunk;
    for (uint64_t done = 0; done < item.len && !sink_.done();) {
      const Item part{Item::data, item.off + done, std::min<uint64_t>(slice, item.len - done), item.chunk, 0, nullptr,
                      true};
      chunk.unreadable.clear();
      chunk.bytes = slice_buf_->data();
      const size_t want = static_cast<size_t>(part.len);
      finish_piece(reader_, opt_, part, read_rest(reader_, mode_, slice_buf_->data(), want, part.off, chunk.unreadable),
                   chunk);
      if (!chunk.unreadable.empty()) {
        runs_.flush();  // in offset order: the runs before come first
        for (const DataRange& u : chunk.unreadable) sink_.on_unreadable(u.begin, u.end - u.begin);
      }
      runs_.data(part.off, slice_buf_->data(), want);
      done += part.len;
    }
  }

  Reader& reader_;
  const ScanOptions& opt_;
  const ReadMode& mode_;
  Sink& sink_;
  Control& control_;
  Planner& planner_;
  BufferPool<Chunk>& free_chunks_;
  const uint64_t size_, start_;
  RunCoalescer runs_;
  std::unique_ptr<AlignedBuffer> consumer_buf_;  // deferred pieces, on the delivering thread
  std::unique_ptr<AlignedBuffer> slice_buf_;     // ...delivered in slices (data_in_slices)
};

// The reader threads. Whatever happens, they are stopped and joined before
// the buffers, the planner and the delivery they use go away (declare last).
class ReaderThreads {
 public:
  ReaderThreads(Planner& planner, Delivery& delivery, BufferPool<Chunk>& free_chunks, ReadGate& gate)
      : planner_(planner), delivery_(delivery), free_chunks_(free_chunks), gate_(gate) {}
  ReaderThreads(const ReaderThreads&) = delete;
  ReaderThreads& operator=(const ReaderThreads&) = delete;

  void start(size_t count, Reader& reader, const ScanOptions& opt, ReadMode mode) {
    for (size_t i = 0; i < count; ++i) {
      threads_.emplace_back(read_pieces, std::ref(reader), std::cref(opt), std::ref(planner_), std::ref(delivery_),
                            std::ref(free_chunks_), std::ref(gate_), mode);
    }
  }

  ~ReaderThreads() {
    planner_.stop();
    gate_.close();
    delivery_.abandon();
    free_chunks_.close();
    for (auto& t : threads_) t.join();
  }

 private:
  Planner& planner_;
  Delivery& delivery_;
  BufferPool<Chunk>& free_chunks_;
  ReadGate& gate_;
  std::vector<std::thread> threads_;
};

}  // namespace

size_t read_skipping_unreadable(Reader& reader, uint8_t* dst, size_t len, uint64_t off, uint32_t sector,
                                const std::function<void(uint64_t off, uint64_t len)>& on_unreadable) {
  const uint64_t sec = std::max<uint32_t>(sector, 1);
  uint64_t bad = 0, bad_len = 0;  // the unreadable range being collected
  size_t done = 0;
  while (done < len) {
    const size_t step = static_cast<size_t>(std::min<uint64_t>(sec - (off + done) % sec, len - done));
    size_t n = 0;
    try {
      n = reader.read_at(dst + done, step, off + done);
    } catch (const Error& e) {
      if (e.errnum() != EIO) throw;
      std::memset(dst + done, 0, step);
      if (bad_len && bad + bad_len == off + done) {
        bad_len += step;
      } else {
        if (bad_len) on_unreadable(bad, bad_len);
        bad = off + done;
        bad_len = step;
      }
      done += step;
      continue;
    }
    done += n;
    if (n < step) break;  // the end of the source
  }
  if (bad_len) on_unreadable(bad, bad_len);
  return done;
}

ScanOptions settled_scan_options(const ScanOptions& options, size_t readers) {
  ScanOptions opt = options;
  if (!valid_block_size(opt.block_size)) {
    throw Error(EINVAL, "EINVAL", "", "",
                "block size " + std::to_string(opt.block_size) +
                    " is not a power of two from 512 B to 1 MiB");
  }
  opt.chunk_size = std::max(opt.block_size, (opt.chunk_size / opt.block_size) * opt.block_size);
  opt.buffers = std::max<size_t>({2, opt.buffers, readers + 1});
  return opt;
}

void run_scan(Reader& reader, const ScanOptions& options, Sink& sink, Control& control) {
  const size_t readers = reader_count(reader, options);
  const ScanOptions opt = settled_scan_options(options, readers);
  const uint64_t size = reader.size();
  const uint64_t start = std::min(opt.start, size);
  control.set_total(size - start);
  control.set_done(0);
  const ReadMode mode = read_mode_for(reader, opt, readers);

  ChunkBuffers chunks(opt.buffers, opt.chunk_size);
  Planner planner(reader, opt, control);
  Consumer consumer(reader, opt, mode, sink, control, planner, chunks.pool, size, start);
  Delivery delivery(std::ref(consumer));
  ReadGate gate;
  ReaderThreads threads(planner, delivery, chunks.pool, gate);
  threads.start(readers, reader, opt, mode);
  delivery.wait();
}

}  // namespace blocksmith
