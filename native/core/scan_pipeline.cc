#include "scan_pipeline.h"

#include <algorithm>
#include <cerrno>
#include <exception>
#include <memory>
#include <thread>
#include <vector>

#include "aligned_buffer.h"
#include "channel.h"
#include "error.h"
#include "zero_detect.h"

namespace blocksmith {
namespace {

struct Item {
  enum Type { hole, data, end, free } type = end;
  uint64_t off = 0;
  uint64_t len = 0;
  AlignedBuffer* buf = nullptr;      // data only
  std::exception_ptr error;          // end only: why the reader stopped
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

// Runs on its own thread: walks data ranges, reads chunks into free buffers.
void read_source(Reader& reader, const ScanOptions& opt, Channel<Item>& out,
                 Channel<AlignedBuffer*>& free_buffers, const Control& control) {
  Item last;
  try {
    const uint64_t size = reader.size();
    const uint64_t bs = opt.block_size;
    uint64_t pos = 0;
    while (pos < size) {
      control.throw_if_cancelled();
      DataRange r = reader.next_data(pos);
      r.begin = std::clamp<uint64_t>(r.begin, pos, size);
      r.end = std::clamp<uint64_t>(r.end, r.begin, size);
      if (r.begin > pos) {
        if (!out.push(Item{Item::hole, pos, r.begin - pos, nullptr, nullptr})) return;
        pos = r.begin;
      }
      if (r.end == r.begin) {  // defensive: a reader that reports an empty range
        if (r.begin >= size) break;
        r.end = size;
      }
      while (pos < r.end) {
        control.throw_if_cancelled();
        // Chunks end on the block grid so a block is never split between reads.
        uint64_t chunk_end = std::min<uint64_t>(r.end, (pos / bs) * bs + opt.chunk_size);
        // Free in the filesystem: not read. A chunk stops where a free range
        // starts (its partial blocks are classified on their own).
        if (const fs::ByteRange* f = opt.free ? opt.free->next(pos) : nullptr) {
          if (f->begin <= pos) {
            uint64_t free_end = std::min<uint64_t>(f->end, r.end);
            if (!out.push(Item{Item::free, pos, free_end - pos, nullptr, nullptr})) return;
            pos = free_end;
            continue;
          }
          chunk_end = std::min<uint64_t>(chunk_end, f->begin);
        }
        auto buf = free_buffers.pop();
        if (!buf) return;  // consumer stopped
        size_t want = static_cast<size_t>(chunk_end - pos);
        size_t got = reader.read_at((*buf)->data(), want, pos);
        if (got < want) {
          throw Error(0, "ERR_SOURCE_CHANGED", "read", reader.path(),
                      "'" + reader.path() + "' shrank while being read: it had " +
                          std::to_string(size) + " bytes, reading stopped at byte " +
                          std::to_string(pos + got));
        }
        if (!out.push(Item{Item::data, pos, want, *buf, nullptr})) return;
        pos = chunk_end;
      }
    }
  } catch (...) {
    last.error = std::current_exception();
  }
  out.push(std::move(last));
}

void classify_chunk(const Item& item, uint64_t bs, RunCoalescer& runs) {
  const uint8_t* base = item.buf->data();
  uint64_t pos = item.off;
  const uint64_t end = item.off + item.len;
  uint64_t data_start = 0;
  bool in_data = false;
  while (pos < end) {
    uint64_t block_end = std::min(end, (pos / bs + 1) * bs);
    bool zero = is_zero(base + (pos - item.off), static_cast<size_t>(block_end - pos));
    if (zero) {
      if (in_data) {
        runs.data(data_start, base + (data_start - item.off), static_cast<size_t>(pos - data_start));
        in_data = false;
      }
      runs.zero(pos, block_end - pos);
    } else if (!in_data) {
      in_data = true;
      data_start = pos;
    }
    pos = block_end;
  }
  if (in_data) runs.data(data_start, base + (data_start - item.off), static_cast<size_t>(end - data_start));
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
  opt.buffers = std::max<size_t>(2, opt.buffers);

  const uint64_t size = reader.size();
  control.set_total(size);
  control.set_done(0);
  reader.advise_sequential();

  std::vector<std::unique_ptr<AlignedBuffer>> storage;
  Channel<AlignedBuffer*> free_buffers(opt.buffers);
  Channel<Item> items(opt.buffers + 1);
  for (size_t i = 0; i < opt.buffers; ++i) {
    storage.push_back(std::make_unique<AlignedBuffer>(opt.chunk_size));
    free_buffers.push(storage.back().get());
  }

  std::thread reader_thread(read_source, std::ref(reader), std::cref(opt), std::ref(items),
                            std::ref(free_buffers), std::cref(control));
  // Whatever happens below, stop and join the reader before buffers go away.
  struct Joiner {
    Channel<Item>& items;
    Channel<AlignedBuffer*>& free_buffers;
    std::thread& t;
    ~Joiner() {
      items.close();
      free_buffers.close();
      if (t.joinable()) t.join();
    }
  } joiner{items, free_buffers, reader_thread};

  RunCoalescer runs(sink);
  for (;;) {
    auto item = items.pop();
    if (!item) break;
    if (item->type == Item::end) {
      if (item->error) std::rethrow_exception(item->error);
      break;
    }
    control.throw_if_cancelled();
    if (item->type == Item::hole) {
      runs.hole(item->off, item->len);
    } else if (item->type == Item::free) {
      runs.free(item->off, item->len);
    } else {
      classify_chunk(*item, opt.block_size, runs);
      if (opt.drop_behind) reader.advise_done(item->off, item->len);
      free_buffers.push(item->buf);
    }
    control.set_done(item->off + item->len);
    control.tick();
  }
  control.throw_if_cancelled();
  runs.flush();
  sink.on_end(size);
  control.set_done(size);
  control.tick(true);
}

}  // namespace blocksmith
