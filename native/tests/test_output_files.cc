// The rule for the files a copy creates (sparse_file_sink.h): never a device,
// never the source, never through a symbolic link, never an existing file
// without overwrite; temporary names created O_EXCL|O_NOFOLLOW; a refusal
// creates nothing.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/sinks/sparse_file_sink.h"
#include "test.h"

using namespace blocksmith;

namespace {
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/blocksmith-out-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

void write_file(const std::string& path, const std::string& bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CHECK(fd >= 0);
  CHECK(::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

std::string read_file(const std::string& path) {
  std::string out;
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return "<missing>";
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + ",";
  return s;
}

FileId id_of(const std::string& path) {
  auto id = file_id(path);
  CHECK(id.has_value());
  return *id;
}
}  // namespace

TEST("create_exclusive never opens what is already at the name: a planted link (dangling or not), a file") {
  TempDir dir;
  const std::string victim = dir.path + "/victim";
  write_file(victim, "precious");
  const std::string to_file = dir.path + "/link-to-file";
  const std::string dangling = dir.path + "/dangling";
  const std::string would_create = dir.path + "/created-through-link";
  CHECK(::symlink(victim.c_str(), to_file.c_str()) == 0);
  CHECK(::symlink(would_create.c_str(), dangling.c_str()) == 0);
  for (const std::string& name : {to_file, dangling, victim}) {
    errno = 0;
    CHECK_EQ(create_exclusive(name, 0644), -1);
    CHECK_EQ(errno, EEXIST);
  }
  CHECK_EQ(read_file(victim), std::string("precious"));
  CHECK_EQ(read_file(would_create), std::string("<missing>"));
  int fd = create_exclusive(dir.path + "/new", 0644);
  CHECK(fd >= 0);
  ::close(fd);
}

TEST("check_copy_target: a device, also through a link, is refused whatever --overwrite says") {
  TempDir dir;
  const std::string link = dir.path + "/null-link";
  CHECK(::symlink("/dev/null", link.c_str()) == 0);
  for (bool overwrite : {false, true}) {
    CHECK_THROWS_CODE(check_copy_target("/dev/null", overwrite, {}), "EINVAL");
    CHECK_THROWS_CODE(check_copy_target(link, overwrite, {}), "EINVAL");
  }
  try {
    check_copy_target(link, true, {});
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("character device (through a symbolic link)") != std::string::npos);
  }
}

TEST("check_copy_target: the source, through a symlink or a hard link, is refused even with --overwrite") {
  TempDir dir;
  const std::string src = dir.path + "/src.raw";
  write_file(src, "source bytes");
  const std::string sym = dir.path + "/sym";
  const std::string hard = dir.path + "/hard";
  CHECK(::symlink(src.c_str(), sym.c_str()) == 0);
  CHECK(::link(src.c_str(), hard.c_str()) == 0);
  const std::vector<FileId> protect{id_of(src)};
  for (const std::string& t : {src, sym, hard}) {
    for (bool overwrite : {false, true}) CHECK_THROWS_CODE(check_copy_target(t, overwrite, protect), "EINVAL");
  }
  try {
    check_copy_target(hard, true, protect);
  } catch (const Error& e) {
    CHECK_EQ(std::string(e.what()), "refusing to write the copy to '" + hard + "': it is the source '" + src + "'");
  }
  CHECK_EQ(read_file(src), std::string("source bytes"));
}

TEST("check_copy_target: links are neither followed nor replaced; files need --overwrite; new names pass") {
  TempDir dir;
  const std::string file = dir.path + "/existing.raw";
  write_file(file, "x");
  const std::string dangling = dir.path + "/dangling";
  CHECK(::symlink((dir.path + "/elsewhere").c_str(), dangling.c_str()) == 0);
  const std::string fifo = dir.path + "/fifo";
  CHECK(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_CODE(check_copy_target(dangling, false, {}), "EEXIST");
  CHECK_THROWS_CODE(check_copy_target(dangling, true, {}), "ELOOP");
  CHECK_THROWS_CODE(check_copy_target(file, false, {}), "EEXIST");
  check_copy_target(file, true, {});
  CHECK_THROWS_CODE(check_copy_target(dir.path, true, {}), "EISDIR");
  CHECK_THROWS_CODE(check_copy_target(fifo, true, {}), "EINVAL");
  check_copy_target(dir.path + "/new.raw", false, {});
}

TEST("a refused SparseFileSink creates nothing in the target's directory") {
  TempDir dir;
  const std::string src = dir.path + "/src.raw";
  write_file(src, "source bytes");
  const std::string dangling = dir.path + "/planted";
  CHECK(::symlink((dir.path + "/through-link").c_str(), dangling.c_str()) == 0);
  const auto before = entries(dir.path);
  CHECK_THROWS_CODE(SparseFileSink(src, true, {id_of(src)}), "EINVAL");
  CHECK_THROWS_CODE(SparseFileSink(src, false, {}), "EEXIST");
  CHECK_THROWS_CODE(SparseFileSink(dangling, false, {}), "EEXIST");
  CHECK_THROWS_CODE(SparseFileSink(dangling, true, {}), "ELOOP");
  CHECK_EQ(joined(entries(dir.path)), joined(before));
  CHECK_EQ(read_file(src), std::string("source bytes"));
}

TEST("a target that became a symbolic link during the copy is refused at commit; nothing is left") {
  TempDir dir;
  const std::string target = dir.path + "/copy.raw";
  const std::string victim = dir.path + "/victim";
  write_file(victim, "precious");
  {
    SparseFileSink sink(target, false, {});
    const uint8_t data[4] = {1, 2, 3, 4};
    sink.on_data(0, data, sizeof data);
    sink.on_end(4);
    CHECK(::symlink(victim.c_str(), target.c_str()) == 0);  // planted while the copy ran
    CHECK_THROWS_CODE(sink.commit(), "EEXIST");
  }
  CHECK_EQ(read_file(victim), std::string("precious"));
  CHECK_EQ(joined(entries(dir.path)), std::string("copy.raw,victim,"));
  struct stat st {};
  CHECK(::lstat(target.c_str(), &st) == 0 && S_ISLNK(st.st_mode));
}
