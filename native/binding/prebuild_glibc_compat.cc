// Compiled into the prebuilt addon only (binding.gyp, blocksmith_prebuild),
// which links libstdc++ statically. That libstdc++ (GCC 12, built on glibc
// 2.36) calls arc4random from std::random_device, and the linker pulls
// random_device in through the string and locale objects iostreams need. Left
// to glibc, that one symbol would raise the binary's floor from glibc 2.34
// (RHEL 9, Ubuntu 22.04) to 2.36; this hidden definition, bound at link time,
// takes its place. Declared noexcept like glibc's own declaration.
#include <unistd.h>

#include <cstdint>

extern "C" __attribute__((visibility("hidden"))) uint32_t arc4random(void) noexcept {
  uint32_t value = 0;
  // getentropy (glibc 2.25) fails only where getrandom(2) is missing, on
  // kernels before 3.17, which Node 20 does not run on (it needs 4.18).
  if (::getentropy(&value, sizeof value) != 0) __builtin_trap();
  return value;
}
