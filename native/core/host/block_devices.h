// What sysfs knows about a block device, read without opening it: the whole
// disk a device number belongs to, its size, a loop device's backing file.
// The one place blocksmith derives these (the C++ checks and, through the
// binding, the TypeScript ones).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace blocksmith::host {

// "sda" for sda1 and for sda itself; "M:m" when sysfs does not know it.
std::string whole_disk_name(dev_t dev);

// The size in bytes (sysfs counts 512-byte sectors whatever the device's
// logical sector size); nullopt when sysfs does not say.
std::optional<uint64_t> block_device_size(dev_t dev);

// The file a loop device (a whole-disk name, "loop3") reads; nullopt when it
// is not a loop device or has no backing file.
std::optional<std::string> loop_backing_file(const std::string& disk_name);

}  // namespace blocksmith::host
