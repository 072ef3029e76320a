// Errors of the core layer: one type, carrying what Node's fs errors carry
// (errno, code name, syscall, path) plus a sentence a person understands.
// The binding maps it to a JS error once (native/binding/errors.cc).
#pragma once

#include <stdexcept>
#include <string>

namespace blocksmith {

class Error : public std::runtime_error {
 public:
  // errnum may be 0 for conditions that have no errno (then `code` names it).
  Error(int errnum, std::string code, std::string syscall, std::string path,
        const std::string& message);

  int errnum() const noexcept { return errnum_; }
  const std::string& code() const noexcept { return code_; }
  const std::string& syscall() const noexcept { return syscall_; }
  const std::string& path() const noexcept { return path_; }

 private:
  int errnum_;
  std::string code_;
  std::string syscall_;
  std::string path_;
};

// Thrown when the caller cancelled the operation (AbortSignal in JS).
// `note` says what was left behind when it matters (e.g. a partial RBD image
// that could not be removed); the CLI prints it after "stopped".
class Cancelled : public std::exception {
 public:
  Cancelled() = default;
  explicit Cancelled(std::string note) : note_(std::move(note)) {}
  const char* what() const noexcept override { return "The operation was aborted"; }
  const std::string& note() const { return note_; }

 private:
  std::string note_;
};

// "ENOENT" for ENOENT, "E123" for an errno without a name.
std::string errno_name(int errnum);

// Builds an Error from errno: message "<what>: <strerror>" or, without `what`,
// "<syscall> '<path>': <strerror>".
[[noreturn]] void throw_sys(int errnum, const char* syscall, const std::string& path,
                            const std::string& what = "");

}  // namespace blocksmith
