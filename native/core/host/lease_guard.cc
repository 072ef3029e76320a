#include "core/host/lease_guard.h"

#include <fcntl.h>
#include <signal.h>

#include <cerrno>
#include <chrono>

#include "core/base/error.h"

namespace blocksmith {
namespace {

// How often the watcher looks: an opener waits at most this long (plus a
// punch in progress) before we give way.
constexpr auto kPollInterval = std::chrono::milliseconds(5);

}  // namespace

int LeaseGuard::try_take(int fd, int type) {
  // F_SETSIG first: the lease makes us the fd's owner, and a break between
  // F_SETLEASE and F_SETOWN 0 would otherwise send SIGIO, which kills Node.
  // (Releasing a lease resets the signal, so this is done for every take.)
  if (::fcntl(fd, F_SETSIG, SIGURG) != 0) return errno;
  if (::fcntl(fd, F_SETLEASE, type) != 0) return errno;
  ::fcntl(fd, F_SETOWN, 0);  // no owner: a break sends no signal at all
  return 0;
}

void LeaseGuard::release(int fd) { ::fcntl(fd, F_SETLEASE, F_UNLCK); }

LeaseGuard::LeaseGuard(int fd, int type, std::string path, std::function<std::string(uint64_t)> break_message,
                       std::function<void()> on_give_way)
    : fd_(fd),
      type_(type),
      path_(std::move(path)),
      break_message_(std::move(break_message)),
      on_give_way_(std::move(on_give_way)) {
  watcher_ = std::thread(&LeaseGuard::watch, this);
}

LeaseGuard::~LeaseGuard() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  watcher_.join();
  if (!broken()) release(fd_);
}

bool LeaseGuard::still_held_locked() {
  if (broken()) return false;
  // F_GETLEASE returns the type a pending break goes to (F_UNLCK, or F_RDLCK
  // for a reader breaking our write lease), and F_UNLCK once the kernel gave
  // up waiting for us: anything but our own type means somebody opened it.
  if (::fcntl(fd_, F_GETLEASE) == type_) return true;
  broken_.store(true, std::memory_order_release);
  if (on_give_way_) on_give_way_();
  release(fd_);
  return false;
}

void LeaseGuard::watch() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    if (!still_held_locked()) return;
    cv_.wait_for(lock, kPollInterval, [&] { return stop_; });
  }
}

void LeaseGuard::run_held(const std::function<void()>& act) {
  std::lock_guard lock(mu_);
  if (!still_held_locked()) throw_broken();
  act();
  actions_.fetch_add(1, std::memory_order_relaxed);
}

void LeaseGuard::throw_if_broken() const {
  if (broken()) throw_broken();
}

void LeaseGuard::throw_broken() const {
  throw Error(EBUSY, "EBUSY", "fcntl", path_, break_message_(actions_.load(std::memory_order_relaxed)));
}

}  // namespace blocksmith
