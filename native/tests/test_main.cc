// Runs every registered test; prints one line per test and a final
// "N passed, N failed". With CORE_TESTS_JSON=FILE it also writes
// {"passed":N,"failed":N,"failures":[...]} for .ci/run to add up.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>

#include "test.h"

namespace coretest {

std::vector<TestCase>& registry() {
  static std::vector<TestCase> tests;
  return tests;
}

void fail(const char* file, int line, const std::string& message) {
  throw Failure{std::string(file) + ":" + std::to_string(line) + ": " + message};
}

}  // namespace coretest

static std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
      continue;
    }
    out += c;
  }
  return out;
}

int main(int argc, char** argv) {
  const char* filter = argc > 1 ? argv[1] : nullptr;
  int passed = 0, failed = 0;
  std::vector<std::string> failures;
  for (const auto& t : coretest::registry()) {
    if (filter && !std::strstr(t.name, filter)) continue;
    std::string error;
    try {
      t.fn();
    } catch (const coretest::Failure& f) {
      error = f.message;
    } catch (const std::exception& e) {
      error = std::string("unexpected exception: ") + e.what();
    } catch (...) {
      error = "unexpected non-standard exception";
    }
    if (error.empty()) {
      ++passed;
      std::printf("  ok    %s\n", t.name);
    } else {
      ++failed;
      failures.push_back(std::string(t.name) + ": " + error);
      std::printf("  FAIL  %s\n        %s\n", t.name, error.c_str());
    }
  }
  std::printf("core_tests: %d passed, %d failed\n", passed, failed);
  if (const char* path = std::getenv("CORE_TESTS_JSON"); path && *path) {
    std::ofstream out(path);
    out << "{\"passed\":" << passed << ",\"failed\":" << failed << ",\"failures\":[";
    for (size_t i = 0; i < failures.size(); ++i) out << (i ? "," : "") << '"' << json_escape(failures[i]) << '"';
    out << "]}\n";
  }
  return failed == 0 ? 0 : 1;
}
