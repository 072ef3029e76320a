#include "core/guest_fs/fat_short_names.h"

namespace blocksmith::fs {

// "IMG_0001.JPG" -> "12|MG_|JPG": what must match for the first characters to
// be comparable. Names shorter than four characters before the dot have no
// pattern to speak of.
std::string ShortNameGuesser::shape(const std::string& name) {
  const size_t dot = name.find('.');
  const std::string base = name.substr(0, dot);
  if (base.size() < 4) return "";
  const std::string ext = dot == std::string::npos ? "" : name.substr(dot + 1);
  return std::to_string(name.size()) + "|" + base.substr(1, 3) + "|" + ext;
}

void ShortNameGuesser::note(const std::string& key, char first) {
  auto [it, fresh] = seen_.try_emplace(key);
  if (fresh) {
    it->second.first = first;
  } else if (it->second.first != first) {
    it->second.conflict = true;
  }
}

void ShortNameGuesser::add_live(const std::string& dir, const std::string& name) {
  const std::string s = shape(name);
  if (s.empty() || static_cast<unsigned char>(name[0]) < 0x21 || name[0] == '_') return;
  // Bounded: one entry per directory and shape, plus one per shape.
  note(dir + "\n" + s, name[0]);
  note("\n" + s, name[0]);
}

void ShortNameGuesser::add_lost(size_t index, const std::string& dir, const std::string& name) {
  if (!shape(name).empty()) lost_.push_back({index, dir, name});
}

void ShortNameGuesser::apply(std::vector<DeletedFile>& deleted) const {
  for (const Lost& l : lost_) {
    const std::string s = shape(l.name);
    char first = 0;
    for (const std::string& key : {l.dir + "\n" + s, "\n" + s}) {
      auto it = seen_.find(key);
      if (it != seen_.end()) {
        if (!it->second.conflict) first = it->second.first;
        break;  // the directory's own names decide when it has any
      }
    }
    if (!first || l.index >= deleted.size()) continue;
    DeletedFile& f = deleted[l.index];
    const size_t slash = f.path.rfind('/');
    const size_t at = slash == std::string::npos ? 0 : slash + 1;
    if (at >= f.path.size() || f.path[at] != '_') continue;
    const std::string old_path = f.path;
    f.path[at] = first;
    f.name_guessed = true;
    // Files found inside it (a deleted directory) carry its path.
    if (f.directory) {
      for (DeletedFile& g : deleted) {
        if (g.path.size() > old_path.size() && g.path.compare(0, old_path.size(), old_path) == 0 &&
            g.path[old_path.size()] == '/') {
          g.path.replace(0, old_path.size(), f.path);
        }
      }
    }
  }
}

}  // namespace blocksmith::fs
