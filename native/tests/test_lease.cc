// The kernel lease behaviour in-place sparsify relies on (lease_guard.h),
// checked on the running kernel: who may take a lease, that our own
// punches and reads do not break it, that another process's open() waits
// until we give way, and that no signal reaches us.
#include <fcntl.h>
#include <linux/falloc.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "core/base/error.h"
#include "core/host/lease_guard.h"
#include "test.h"

using namespace blocksmith;

namespace {

struct TempFile {
  std::string dir, path;
  TempFile() {
    char tmpl[] = "/tmp/blocksmith-lease-XXXXXX";
    dir = mkdtemp(tmpl);
    path = dir + "/img.raw";
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT, 0644);
    std::string zeros(1 << 20, '\0');
    CHECK(::write(fd, zeros.data(), zeros.size()) == static_cast<ssize_t>(zeros.size()));
    ::close(fd);
  }
  ~TempFile() { std::system(("rm -rf '" + dir + "'").c_str()); }
};

// A child that opens `path` (flags) and then writes one byte to `pipe_w`.
pid_t child_opening(const std::string& path, int flags, int pipe_w) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(path.c_str(), flags);
    char c = fd >= 0 ? 'y' : 'n';
    (void)!::write(pipe_w, &c, 1);
    ::_exit(0);
  }
  return pid;
}

bool readable_within(int fd, int ms) {
  struct pollfd p {fd, POLLIN, 0};
  return ::poll(&p, 1, ms) == 1;
}

}  // namespace

TEST("lease: F_WRLCK is refused while any other open file of it exists (a reader too), F_RDLCK while a writer does") {
  TempFile f;
  int ours = ::open(f.path.c_str(), O_RDWR);
  int reader = ::open(f.path.c_str(), O_RDONLY);
  CHECK_EQ(LeaseGuard::try_take(ours, F_WRLCK), EAGAIN);
  ::close(reader);
  CHECK_EQ(LeaseGuard::try_take(ours, F_WRLCK), 0);
  LeaseGuard::release(ours);

  int ro = ::open(f.path.c_str(), O_RDONLY);
  CHECK_EQ(LeaseGuard::try_take(ro, F_RDLCK), EAGAIN);  // `ours` is open for writing
  ::close(ours);
  CHECK_EQ(LeaseGuard::try_take(ro, F_RDLCK), 0);
  LeaseGuard::release(ro);
  ::close(ro);
}

TEST("lease: our own pread and fallocate(PUNCH_HOLE) keep it; another process's open() waits until the guard gives way") {
  TempFile f;
  int fd = ::open(f.path.c_str(), O_RDWR);
  CHECK_EQ(LeaseGuard::try_take(fd, F_WRLCK), 0);
  char buf[4096];
  CHECK(::pread(fd, buf, sizeof buf, 0) == static_cast<ssize_t>(sizeof buf));
  CHECK(::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 65536) == 0);
  CHECK_EQ(::fcntl(fd, F_GETLEASE), F_WRLCK);

  int p[2];
  CHECK(::pipe(p) == 0);
  pid_t child = child_opening(f.path, O_WRONLY, p[1]);
  // Nobody gives way yet: the child's open() waits in the kernel, and the
  // pending break shows in F_GETLEASE (the type it breaks to: F_UNLCK).
  CHECK(!readable_within(p[0], 200));
  CHECK_EQ(::fcntl(fd, F_GETLEASE), F_UNLCK);

  bool gave_way = false;
  {
    LeaseGuard guard(fd, F_WRLCK, f.path, [](uint64_t n) { return "gave way after " + std::to_string(n); },
                     [&] { gave_way = true; });
    CHECK(readable_within(p[0], 5000));  // the watcher gave way; the open returned
    char c = 0;
    CHECK(::read(p[0], &c, 1) == 1);
    CHECK_EQ(c, 'y');
    CHECK(guard.broken());
    CHECK(gave_way);
    bool refused = false;
    try {
      guard.run_held([] { CHECK(false); });  // never runs once broken
    } catch (const Error& e) {
      refused = e.code() == "EBUSY" && std::string(e.what()) == "gave way after 0";
    }
    CHECK(refused);
  }
  int status = 0;
  CHECK(::waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK_EQ(::fcntl(fd, F_GETLEASE), F_UNLCK);
  ::close(p[0]);
  ::close(p[1]);
  ::close(fd);  // still alive: no SIGIO reached us
}

TEST("lease: with the guard watching, actions run while it holds and are counted in the break message; a reader breaks it too") {
  TempFile f;
  int fd = ::open(f.path.c_str(), O_RDWR);
  CHECK_EQ(LeaseGuard::try_take(fd, F_WRLCK), 0);
  LeaseGuard guard(fd, F_WRLCK, f.path, [](uint64_t n) { return std::to_string(n) + " done"; });
  int runs = 0;
  guard.run_held([&] { ++runs; });
  guard.run_held([&] { ++runs; });
  CHECK_EQ(runs, 2);
  int p[2];
  CHECK(::pipe(p) == 0);
  pid_t child = child_opening(f.path, O_RDONLY, p[1]);
  CHECK(readable_within(p[0], 5000));
  bool refused = false;
  try {
    guard.throw_if_broken();
  } catch (const Error& e) {
    refused = std::string(e.what()) == "2 done";
  }
  CHECK(refused);
  ::waitpid(child, nullptr, 0);
  ::close(p[0]);
  ::close(p[1]);
  ::close(fd);
}
