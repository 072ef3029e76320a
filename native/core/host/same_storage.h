// Would files written under a directory land on the storage a source lives
// on? Carving (and recovery in general) must not write where the lost data
// still lies: the same filesystem as a file source; the same disk (or a
// partition of it) as a device source; for a loop device, the filesystem
// holding its backing file.
#pragma once

#include <optional>
#include <string>

namespace blocksmith::host {

// Why writing to out_dir could overwrite the source's sectors, or nullopt.
// out_dir need not exist: its nearest existing ancestor is where it would be
// created. Throws Error when the source cannot be stat'ed, or an ancestor of
// out_dir fails with anything but ENOENT/ENOTDIR.
std::optional<std::string> same_storage(const std::string& source, const std::string& out_dir);

}  // namespace blocksmith::host
