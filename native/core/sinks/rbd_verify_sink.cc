#include "core/sinks/rbd_verify_sink.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/base/error.h"
#include "core/rbd/librbd_api.h"
#include "core/zero/zero_detect.h"

namespace blocksmith::rbd {

VerifySink::VerifySink(Image& img, const Target& t, const std::string& source, uint64_t size, uint64_t object_size,
                       unsigned parallel)
    : img_(img), t_(t), source_(source), size_(size), object_size_(object_size), window_(std::max(1u, parallel)) {
  for (auto& r : window_) r.buf = std::make_unique<AlignedBuffer>(object_size);
}

VerifySink::~VerifySink() {
  for (auto& r : window_)
    if (r.c) {
      api().rbd_aio_wait_for_complete(r.c);
      api().rbd_aio_release(r.c);
    }
}

void VerifySink::issue() {
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

VerifySink::Read& VerifySink::oldest() {
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

void VerifySink::mismatch(uint64_t object) {
  throw Error(EIO, "ERR_VERIFY_MISMATCH", "verify", t_.spec(),
              "verification failed: " + t_.spec() + " differs from '" + source_ + "' in the object at byte " +
                  std::to_string(object));
}

void VerifySink::compare(uint64_t off, uint64_t len, const uint8_t* bytes) {
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

}  // namespace blocksmith::rbd
