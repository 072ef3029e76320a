#include "output.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "../error.h"

namespace blocksmith::carve {

void ensure_dir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) throw_sys(errno, "mkdir", dir);
}

// Writes `data` to dir/name through a temporary name, renamed when complete.
void write_file(const std::string& dir, const std::string& name, const uint8_t* data, size_t len) {
  std::string final_path = dir + "/" + name;
  std::string tmp = dir + "/." + name + ".part";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw_sys(errno, "open", tmp);
  size_t done = 0;
  while (done < len) {
    ssize_t w = ::write(fd, data + done, len - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw_sys(e, "write", tmp);
    }
    done += size_t(w);
  }
  if (::close(fd) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    throw_sys(e, "close", tmp);
  }
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) throw_sys(errno, "rename", final_path);
}

}  // namespace blocksmith::carve
