// A minimal test registry for the core's unit tests (no third-party framework:
// the core must build and test with nothing but a C++20 compiler).
#pragma once

#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace coretest {

struct TestCase {
  const char* name;
  std::function<void()> fn;
};

std::vector<TestCase>& registry();

struct Registrar {
  Registrar(const char* name, std::function<void()> fn) { registry().push_back({name, std::move(fn)}); }
};

struct Failure {
  std::string message;
};

[[noreturn]] void fail(const char* file, int line, const std::string& message);

}  // namespace coretest

#define CT_CONCAT2(a, b) a##b
#define CT_CONCAT(a, b) CT_CONCAT2(a, b)
#define TEST(name)                                                                  \
  static void CT_CONCAT(test_fn_, __LINE__)();                                      \
  static coretest::Registrar CT_CONCAT(test_reg_, __LINE__)(name, CT_CONCAT(test_fn_, __LINE__)); \
  static void CT_CONCAT(test_fn_, __LINE__)()

#define CHECK(cond)                                                   \
  do {                                                                \
    if (!(cond)) coretest::fail(__FILE__, __LINE__, "CHECK(" #cond ")"); \
  } while (0)

#define CHECK_EQ(a, b)                                                          \
  do {                                                                          \
    auto&& ct_a = (a);                                                          \
    auto&& ct_b = (b);                                                          \
    if (!(ct_a == ct_b)) {                                                      \
      std::ostringstream ct_os;                                                 \
      ct_os << "CHECK_EQ(" #a ", " #b "): " << ct_a << " != " << ct_b;          \
      coretest::fail(__FILE__, __LINE__, ct_os.str());                          \
    }                                                                           \
  } while (0)

// Expects `stmt` to throw blocksmith::Error with the given code.
#define CHECK_THROWS_CODE(stmt, expected_code)                                  \
  do {                                                                          \
    bool ct_threw = false;                                                      \
    try {                                                                       \
      stmt;                                                                     \
    } catch (const blocksmith::Error& ct_e) {                                   \
      ct_threw = true;                                                          \
      if (ct_e.code() != (expected_code))                                       \
        coretest::fail(__FILE__, __LINE__, "threw " + ct_e.code() + " (" + ct_e.what() + "), expected " + (expected_code)); \
    }                                                                           \
    if (!ct_threw) coretest::fail(__FILE__, __LINE__, "did not throw " expected_code); \
  } while (0)
