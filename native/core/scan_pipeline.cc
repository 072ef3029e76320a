#include "scan_pipeline.h"

#include <algorithm>
#include <condition_variable>
#include <map>
#include <cerrno>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "aligned_buffer.h"
#include "buffer_pool.h"
#include "error.h"
#include "read_gate.h"

namespace blocksmith {
namespace {

// A buffer and the classes of its blocks (classify.h), filled by a reader
// thread. Blocks follow the source's grid (the first and last may be partial).
struct Chunk {
  explicit Chunk(size_t size) : buf(size) {}
  AlignedBuffer buf;
  std::vector<uint8_t> classes;  // one BlockClass per grid block
};

struct Item {
  enum Type { hole, data, end, free } type = end;
  uint64_t off = 0;
  uint64_t len = 0;
  Chunk* chunk = nullptr;    // data only
  uint64_t ticket = 0;       // data only: its place in the ReadGate
  std::exception_ptr error;  // end only: why reading stopped
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
      : reader_(reader), opt_(opt), control_(control), size_(reader.size()) {}

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
          Item hole{Item::hole, pos_, r.begin - pos_, nullptr, 0, nullptr};
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
          Item free{Item::free, pos_, free_end - pos_, nullptr, 0, nullptr};
          pos_ = free_end;
          return {seq, free};
        }
        chunk_end = std::min<uint64_t>(chunk_end, f->begin);
      }
      Item data{Item::data, pos_, chunk_end - pos_, nullptr, data_seq_++, nullptr};
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
  uint64_t data_seq_ = 0;   // tickets for the ReadGate
  uint64_t pos_ = 0;        // next byte to hand out
  uint64_t range_end_ = 0;  // end of the data range pos_ is in
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

// A reader thread: take a buffer, then the next task; read and classify.
// The buffer is taken first so the holder of the oldest sequence number never
// waits for one (buffers come back only as pieces are delivered, in order).
// Reads one data piece: from the page cache on any thread, from the disk
// only in turn (see ReadGate). With one reader there is nothing to order.
size_t read_piece(Reader& reader, ReadGate& gate, bool parallel, const Item& item, uint8_t* buf) {
  struct Finish {
    ReadGate& gate;
    uint64_t ticket;
    ~Finish() { gate.finish(ticket); }
  } finish{gate, item.ticket};
  const size_t want = static_cast<size_t>(item.len);
  size_t got = parallel ? reader.read_cached(buf, want, item.off) : 0;
  if (got < want) {
    gate.wait_turn(item.ticket);
    got += reader.read_at(buf + got, want - got, item.off + got);
  }
  return got;
}

void read_pieces(Reader& reader, const ScanOptions& opt, Planner& planner, Delivery& delivery,
                 BufferPool<Chunk>& free_chunks, ReadGate& gate, bool parallel) {
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
        size_t want = static_cast<size_t>(t.item.len);
        size_t got = read_piece(reader, gate, parallel, t.item, mine->buf.data());
        if (got < want) {
          throw Error(0, "ERR_SOURCE_CHANGED", "read", reader.path(),
                      "'" + reader.path() + "' shrank while being read: it had " +
                          std::to_string(reader.size()) + " bytes, reading stopped at byte " +
                          std::to_string(t.item.off + got));
        }
        mine->classes.resize(grid_block_count(t.item.off, want, opt.block_size));
        classify_grid(mine->buf.data(), t.item.off, want, opt.block_size, mine->classes.data());
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
  const uint8_t* base = item.chunk->buf.data();
  const uint64_t end = item.off + item.len;
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

}  // namespace

void run_scan(Reader& reader, const ScanOptions& options, Sink& sink, Control& control) {
  ScanOptions opt = options;
  if (!valid_block_size(opt.block_size)) {
    throw Error(EINVAL, "EINVAL", "", "",
                "block size " + std::to_string(opt.block_size) +
                    " is not a power of two from 512 B to 1 MiB");
  }
  opt.chunk_size = std::max(opt.block_size, (opt.chunk_size / opt.block_size) * opt.block_size);
  const size_t readers = reader_count(reader, opt);
  opt.buffers = std::max<size_t>({2, opt.buffers, readers + 1});

  const uint64_t size = reader.size();
  control.set_total(size);
  control.set_done(0);
  reader.advise_sequential();

  std::vector<std::unique_ptr<Chunk>> storage;
  BufferPool<Chunk> free_chunks;
  for (size_t i = 0; i < opt.buffers; ++i) {
    storage.push_back(std::make_unique<Chunk>(opt.chunk_size));
    free_chunks.give(storage.back().get());
  }
  Planner planner(reader, opt, control);

  RunCoalescer runs(sink);
  // Runs on whichever reader thread completes the next piece (see Delivery).
  auto deliver = [&](Item& item) -> bool {
    if (item.type == Item::end) {
      if (item.error) std::rethrow_exception(item.error);
      control.throw_if_cancelled();
      runs.flush();
      sink.on_end(size);
      control.set_done(size);
      control.tick(true);
      return false;
    }
    control.throw_if_cancelled();
    if (item.type == Item::hole) {
      runs.hole(item.off, item.len);
    } else if (item.type == Item::free) {
      runs.free(item.off, item.len);
    } else {
      // The buffer goes back even if the sink throws.
      struct Release {
        BufferPool<Chunk>& free_chunks;
        Chunk* chunk;
        ~Release() { free_chunks.give(chunk); }
      } release{free_chunks, item.chunk};
      deliver_chunk(item, opt.block_size, runs);
      if (opt.drop_behind) reader.advise_done(item.off, item.len);
    }
    control.set_done(item.off + item.len);
    control.tick();
    return true;
  };
  Delivery delivery(deliver);
  ReadGate gate;

  std::vector<std::thread> threads;
  // Whatever happens below, stop and join the readers before buffers go away.
  struct Joiner {
    Planner& planner;
    Delivery& delivery;
    BufferPool<Chunk>& free_chunks;
    ReadGate& gate;
    std::vector<std::thread>& threads;
    ~Joiner() {
      planner.stop();
      gate.close();
      delivery.abandon();
      free_chunks.close();
      for (auto& t : threads) t.join();
    }
  } joiner{planner, delivery, free_chunks, gate, threads};
  for (size_t i = 0; i < readers; ++i) {
    threads.emplace_back(read_pieces, std::ref(reader), std::cref(opt), std::ref(planner), std::ref(delivery),
                         std::ref(free_chunks), std::ref(gate), readers > 1);
  }
  delivery.wait();
}

}  // namespace blocksmith
