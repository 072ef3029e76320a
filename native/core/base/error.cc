#include "core/base/error.h"

#include <cctype>
#include <cstring>

namespace blocksmith {

Error::Error(int errnum, std::string code, std::string syscall, std::string path,
             const std::string& message)
    : std::runtime_error(message),
      errnum_(errnum),
      code_(std::move(code)),
      syscall_(std::move(syscall)),
      path_(std::move(path)) {}

std::string errno_name(int errnum) {
  // glibc >= 2.32 knows the symbolic names; keep a fallback for other libcs.
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  if (const char* name = strerrorname_np(errnum)) return name;
#endif
  std::string name = "E";
  name += std::to_string(errnum);
  return name;
}

void throw_sys(int errnum, const char* syscall, const std::string& path, const std::string& what) {
  std::string reason = std::strerror(errnum);
  if (!reason.empty()) reason[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(reason[0])));
  std::string message;
  if (!what.empty()) {
    message = what + ": " + reason;
  } else {
    message = std::string(syscall) + (path.empty() ? "" : " '" + path + "'") + ": " + reason;
  }
  throw Error(errnum, errno_name(errnum), syscall, path, message);
}

}  // namespace blocksmith
