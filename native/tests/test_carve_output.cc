// Writing recovered files (core/carve/output.h): nothing is replaced, no
// planted symlink is followed, a resumed run keeps identical files.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/carve/output.h"
#include "core/base/error.h"
#include "test.h"

using namespace blocksmith::carve;
using Bytes = std::vector<uint8_t>;

namespace {

std::string temp_dir() {
  char tmpl[] = "/tmp/blocksmith-output-test-XXXXXX";
  const char* d = ::mkdtemp(tmpl);
  if (!d) coretest::fail(__FILE__, __LINE__, "mkdtemp failed");
  return d;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void spit(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

bool is_link(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

void remove_all(const std::string& dir) {
  std::string cmd = "rm -rf '" + dir + "'";
  CHECK_EQ(std::system(cmd.c_str()), 0);
}

const Bytes data = {0xFF, 0xD8, 1, 2, 3, 0xFF, 0xD9};

}  // namespace

TEST("write_file creates a file once and never replaces one, not even with the same bytes (unless resuming)") {
  std::string dir = temp_dir();
  CHECK(write_file(dir, "f.jpg", data.data(), data.size()) == Written::created);
  CHECK_EQ(slurp(dir + "/f.jpg"), std::string(data.begin(), data.end()));
  Bytes other = {9, 9, 9};
  CHECK_THROWS_CODE(write_file(dir, "f.jpg", other.data(), other.size()), "EEXIST");
  CHECK_THROWS_CODE(write_file(dir, "f.jpg", data.data(), data.size()), "EEXIST");
  CHECK_THROWS_CODE(write_file(dir, "f.jpg", other.data(), other.size(), true), "EEXIST");
  CHECK(write_file(dir, "f.jpg", data.data(), data.size(), true) == Written::identical);
  CHECK_EQ(slurp(dir + "/f.jpg"), std::string(data.begin(), data.end()));
  // Only f.jpg is left: temporary files are gone after success and failure.
  std::string ls = dir + "/ls";
  CHECK_EQ(std::system(("ls -A '" + dir + "' > '" + ls + "'").c_str()), 0);
  CHECK_EQ(slurp(ls), std::string("f.jpg\nls\n"));
  remove_all(dir);
}

TEST("write_file follows no planted symlink: not at the final name, not at any temporary name") {
  std::string dir = temp_dir();
  std::string victim = dir + "/victim";
  spit(victim, "precious");
  std::string out = dir + "/out";
  CHECK_EQ(::mkdir(out.c_str(), 0755), 0);
  // At the final name (even for a resumed run): EEXIST, the victim untouched.
  CHECK_EQ(::symlink(victim.c_str(), (out + "/f.jpg").c_str()), 0);
  CHECK_THROWS_CODE(write_file(out, "f.jpg", data.data(), data.size()), "EEXIST");
  CHECK_THROWS_CODE(write_file(out, "f.jpg", data.data(), data.size(), true), "EEXIST");
  CHECK(is_link(out + "/f.jpg"));
  // At the next temporary names this process would use: skipped.
  for (int i = 0; i < 4000; i++)
    CHECK_EQ(::symlink(victim.c_str(), (out + "/.g.jpg.part-" + std::to_string(::getpid()) + "-" + std::to_string(i)).c_str()), 0);
  CHECK(write_file(out, "g.jpg", data.data(), data.size()) == Written::created);
  CHECK(!is_link(out + "/g.jpg"));
  CHECK_EQ(slurp(out + "/g.jpg"), std::string(data.begin(), data.end()));
  CHECK_EQ(slurp(victim), std::string("precious"));
  remove_all(dir);
}

TEST("a directory replaced by a symlink is neither created into nor followed") {
  std::string dir = temp_dir();
  std::string elsewhere = dir + "/elsewhere";
  CHECK_EQ(::mkdir(elsewhere.c_str(), 0755), 0);
  std::string out = dir + "/out";
  CHECK_EQ(::mkdir(out.c_str(), 0755), 0);
  CHECK_EQ(::symlink(elsewhere.c_str(), (out + "/partial").c_str()), 0);
  CHECK_THROWS_CODE(ensure_dir(out + "/partial"), "EEXIST");
  CHECK_THROWS_CODE(write_file(out + "/partial", "f.jpg", data.data(), data.size()), "ELOOP");
  spit(elsewhere + "/f.jpg", "theirs");
  remove_file(out, "partial/f.jpg");  // not through the symlink
  CHECK_EQ(slurp(elsewhere + "/f.jpg"), std::string("theirs"));
  spit(out + "/thumbnails", "a file");
  CHECK_THROWS_CODE(ensure_dir(out + "/thumbnails"), "EEXIST");
  remove_all(dir);
}
