// A kernel lease (fcntl F_SETLEASE) on the image a run punches or copies,
// and the rule that goes with it: act on the image only while no other
// process can open it.
//
// Linux facts this relies on (checked on 6.18; see image_use.h):
// - F_WRLCK is granted on our O_RDWR fd only while no other open file of the
//   inode exists (writers, and readers: the kernel counts i_readcount with
//   CONFIG_FILE_LOCKING); F_RDLCK on an O_RDONLY fd only while nobody has it
//   open for writing. Both need the file's owner or CAP_LEASE.
// - Once held, another open() (any mode for F_WRLCK, a writing one for
//   F_RDLCK), truncate() or a loop/NFS/SMB server opening it blocks in the
//   kernel until we release the lease or fs.lease-break-time (45 s) passes;
//   F_GETLEASE then returns the type being broken to instead of ours.
// - Our own fallocate(PUNCH_HOLE), pread and lseek on the leased fd do not
//   break it; a second open() of the image by us would, so the run reads,
//   punches and leases through one fd.
// - Taking a lease makes us the fd's owner, and a break sends the owner a
//   signal (SIGIO by default, which kills the process). We set F_SETSIG to
//   SIGURG (default action: ignore; Node does not handle it) before the
//   lease and clear the owner (F_SETOWN 0) right after, so no signal is
//   sent at all; a break is seen by polling F_GETLEASE.
//
// A watcher thread polls every few milliseconds and, on a break, gives way:
// no further action runs, `on_give_way` drops what else we hold (QEMU-style
// lock bytes) and the lease is released, so the opener proceeds at once.
// Actions (punches) run under the same mutex, after checking the lease, so
// the opener's open() cannot return while one is in progress.
//
// What it cannot cover: a process stopped (SIGSTOP) between the check and
// its fallocate for longer than fs.lease-break-time, while another process
// opens and writes the range; and block devices, which have no leases.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>


namespace blocksmith {

class LeaseGuard {
 public:
  // Tries F_SETLEASE `type` (F_RDLCK or F_WRLCK) on `fd` without any signal.
  // Returns 0, or the errno: EAGAIN (another open file conflicts), EACCES
  // (neither owner nor CAP_LEASE), EINVAL (no leases here: not a regular
  // file, a filesystem without them, or fs.leases-enable = 0).
  static int try_take(int fd, int type);
  // Releases a lease taken with try_take (no-op when none is held).
  static void release(int fd);

  // Watches the lease `try_take(fd, type)` granted. `break_message(n)` is
  // the error text once it breaks (n: actions completed); `on_give_way` runs
  // (under the guard's lock) just before the lease is released.
  LeaseGuard(int fd, int type, std::string path, std::function<std::string(uint64_t)> break_message,
             std::function<void()> on_give_way = {});
  LeaseGuard(const LeaseGuard&) = delete;
  LeaseGuard& operator=(const LeaseGuard&) = delete;
  // Stops watching and releases the lease.
  ~LeaseGuard();

  // Runs `act` only while the lease still holds; throws the break error
  // (EBUSY) otherwise. Thread-safe.
  void run_held(const std::function<void()>& act);
  // Throws the break error once the lease was broken. Cheap (one atomic load).
  void throw_if_broken() const;
  bool broken() const { return broken_.load(std::memory_order_acquire); }

 private:
  void watch();
  bool still_held_locked();  // with mu_ held: checks, gives way on a break
  [[noreturn]] void throw_broken() const;

  int fd_;
  int type_;
  std::string path_;
  std::function<std::string(uint64_t)> break_message_;
  std::function<void()> on_give_way_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::atomic<bool> broken_{false};
  std::atomic<uint64_t> actions_{0};
  std::thread watcher_;
};

}  // namespace blocksmith
