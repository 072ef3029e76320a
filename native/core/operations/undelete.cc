#include "core/operations/undelete.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <set>

#include "core/base/error.h"
#include "core/base/unique_fd.h"
#include "core/carve/sha256.h"
#include "core/host/mount_check.h"
#include "core/operations/undelete_reassemble.h"

namespace blocksmith::undelete {

using fs::DeletedFile;
using fs::DeletedStatus;
using fs::Recovery;
using fs::Timestamp;

const char* rule_name(Recovery r) {
  switch (r) {
    case Recovery::contiguous: return "contiguous";
    case Recovery::skip_live_clusters: return "skip-live-clusters";
    case Recovery::fat_chain: return "fat-chain";
    case Recovery::block_map: return "block-map";
    case Recovery::extent_tree: return "extent-tree";
    case Recovery::indirect_guess: return "indirect-guess";
  }
  return "?";
}

const char* status_name(DeletedStatus s) {
  switch (s) {
    case DeletedStatus::recoverable: return "recoverable";
    case DeletedStatus::overwritten: return "overwritten";
    case DeletedStatus::empty: return "empty";
    case DeletedStatus::unreadable: return "unreadable";
  }
  return "?";
}

std::string iso_time(const Timestamp& t) {
  if (!t.known) return "";
  time_t s = static_cast<time_t>(t.seconds);
  struct tm tm;
  if (!gmtime_r(&s, &tm)) return "";
  char buf[64];
  unsigned ms = t.nanoseconds / 1000000;
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out(buf, n);
  if (ms != 0) {
    snprintf(buf, sizeof buf, ".%03u", ms);
    out += buf;
  }
  if (!t.local_time) out += "Z";
  return out;
}

namespace {

// Length of the valid UTF-8 sequence at s[i] (1-4), or 0 when it is not one
// (overlong forms, surrogates and code points past U+10FFFF are not).
size_t utf8_len(const std::string& s, size_t i) {
  auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  uint8_t c = b(i);
  if (c < 0x80) return 1;
  size_t n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; k++)
    if ((b(i + k) & 0xC0) != 0x80) return 0;
  if (c == 0xE0 && b(i + 1) < 0xA0) return 0;   // overlong
  if (c == 0xED && b(i + 1) >= 0xA0) return 0;  // surrogate
  if (c == 0xF0 && b(i + 1) < 0x90) return 0;   // overlong
  if (c == 0xF4 && b(i + 1) >= 0x90) return 0;  // past U+10FFFF
  return n;
}

constexpr size_t kMaxComponent = 200;

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) parts.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  if (parts.empty()) parts.push_back("");
  return parts;
}

// "name (n).ext": the suffix goes before the extension (not before a leading dot).
std::string with_suffix(const std::string& name, unsigned n) {
  if (n <= 1) return name;
  std::string suffix = " (" + std::to_string(n) + ")";
  size_t dot = name.rfind('.');
  if (dot == std::string::npos || dot == 0) return name + suffix;
  return name.substr(0, dot) + suffix + name.substr(dot);
}

bool is_jpeg_name(const std::string& path) {
  size_t dot = path.rfind('.');
  if (dot == std::string::npos || path.find('/', dot) != std::string::npos) return false;
  std::string ext = path.substr(dot + 1);
  for (auto& c : ext) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return ext == "jpg" || ext == "jpeg" || ext == "jpe" || ext == "jfif";
}

// FAT's local wall-clock time (read by the reader as if it were UTC) as the
// instant it names in this machine's time zone.
struct timespec host_time(const Timestamp& t) {
  struct timespec ts{};
  if (!t.known) {
    ts.tv_nsec = UTIME_OMIT;
    return ts;
  }
  time_t s = static_cast<time_t>(t.seconds);
  if (t.local_time) {
    struct tm tm;
    if (gmtime_r(&s, &tm)) {
      tm.tm_isdst = -1;
      time_t local = mktime(&tm);
      if (local != static_cast<time_t>(-1)) s = local;
    }
  }
  ts.tv_sec = s;
  ts.tv_nsec = t.nanoseconds < 1000000000u ? t.nanoseconds : 0;
  return ts;
}

void set_times(int fd, const fs::FileTimes& times) {
  struct timespec ts[2] = {host_time(times.accessed), host_time(times.modified)};
  if (ts[0].tv_nsec == UTIME_OMIT && ts[1].tv_nsec == UTIME_OMIT) return;
  // A filesystem that cannot store a time (or a date before its epoch) keeps
  // the file's own: the report still says what the original was.
  (void)::futimens(fd, ts);
}

UniqueFd open_dir_at(int parent, const std::string& name, const std::string& shown) {
  UniqueFd fd(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) throw_sys(errno, "open", shown);
  return fd;
}

// The tree under OUT/recovered, created by this run only.
class Tree {
 public:
  Tree(const std::string& out_dir) : out_dir_(out_dir) {
    UniqueFd out(::open(out_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!out) throw_sys(errno, "open", out_dir);
    if (::mkdirat(out.get(), "recovered", 0755) != 0) {
      int e = errno;
      if (e == EEXIST)
        throw_sys(EEXIST, "mkdir", out_dir + "/recovered", "'" + out_dir + "/recovered' already exists (recover into a new or empty directory)");
      throw_sys(e, "mkdir", out_dir + "/recovered");
    }
    root_ = open_dir_at(out.get(), "recovered", out_dir + "/recovered");
  }

  // The directory for `parts` (original components), created as needed; the
  // safe relative path of it (from OUT) in `rel`.
  int dir(const std::vector<std::string>& parts, std::string& rel) {
    std::string key;
    for (const auto& p : parts) key += p + '/';
    if (cached_ && key == cached_key_) {
      rel = cached_rel_;
      return cached_.get();
    }
    UniqueFd fd(::fcntl(root_.get(), F_DUPFD_CLOEXEC, 0));
    if (!fd) throw_sys(errno, "fcntl", out_dir_ + "/recovered");
    std::string orig, safe = "recovered";
    for (const auto& p : parts) {
      std::string parent_safe = safe;
      orig += p + '/';
      auto it = made_.find(orig);
      std::string name;
      if (it != made_.end()) {
        name = it->second;
      } else {
        std::string base = safe_component(p);
        for (unsigned n = 1;; n++) {
          name = with_suffix(base, n);
          if (taken_[parent_safe].count(name)) continue;
          if (::mkdirat(fd.get(), name.c_str(), 0755) == 0) break;
          // Taken by something this run did not make: never opened.
          if (errno == EEXIST && n < 100000) continue;
          throw_sys(errno, "mkdir", out_dir_ + "/" + parent_safe + "/" + name);
        }
        taken_[parent_safe].insert(name);
        made_[orig] = name;
      }
      safe += "/" + name;
      fd = open_dir_at(fd.get(), name, out_dir_ + "/" + safe);
    }
    rel = safe;
    cached_key_ = key;
    cached_rel_ = safe;
    cached_ = std::move(fd);
    return cached_.get();
  }

  // Creates a new file in `dfd` (safe path `rel`) from `name`; its fd, and
  // its name in `created`.
  UniqueFd create(int dfd, const std::string& rel, const std::string& name, std::string& created) {
    std::string base = safe_component(name);
    for (unsigned n = 1;; n++) {
      std::string cand = with_suffix(base, n);
      if (taken_[rel].count(cand)) continue;
      UniqueFd fd(::openat(dfd, cand.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
      if (fd) {
        taken_[rel].insert(cand);
        created = cand;
        return fd;
      }
      if (errno == EEXIST && n < 100000) continue;
      throw_sys(errno, "open", out_dir_ + "/" + rel + "/" + cand);
    }
  }

 private:
  std::string out_dir_;
  UniqueFd root_;
  std::map<std::string, std::string> made_;           // original dir path -> its safe name
  std::map<std::string, std::set<std::string>> taken_;  // safe dir path -> names used in it
  std::string cached_key_, cached_rel_;
  UniqueFd cached_;
};

void write_all(int fd, const uint8_t* p, size_t n, const std::string& shown) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) throw_sys(errno, "write", shown);
    p += w;
    n -= static_cast<size_t>(w);
  }
}

struct Stop {};  // cancelled in the middle of a file

// ext: extents placed at file offsets with zeros between them.
bool has_holes(const DeletedFile& d) {
  uint64_t at = 0;
  for (size_t i = 0; i < d.file_offsets.size() && i < d.extents.size(); i++) {
    if (d.file_offsets[i] != at) return true;
    at += d.extents[i].end - d.extents[i].begin;
  }
  return !d.file_offsets.empty() && at != d.size;
}

// Why the extents (and, on ext, their file offsets) cannot be the file's
// `size` bytes; "" when they are: back to back they hold exactly `size`
// bytes; placed at file offsets, one offset per extent, in order, none
// overlapping the one before, the last one ending at or before `size` (the
// gaps and the tail read as zeros).
std::string layout_problem(const DeletedFile& d) {
  if (d.file_offsets.empty()) {
    uint64_t covered = 0;
    for (const auto& e : d.extents) covered += e.end - e.begin;
    if (covered == d.size) return "";
    return "its extents hold " + std::to_string(covered) + " bytes, its size is " + std::to_string(d.size);
  }
  if (d.file_offsets.size() != d.extents.size())
    return "it has " + std::to_string(d.extents.size()) + " extents but " + std::to_string(d.file_offsets.size()) + " file offsets";
  uint64_t at = 0;
  for (size_t i = 0; i < d.extents.size(); i++) {
    const uint64_t len = d.extents[i].end - d.extents[i].begin;
    if (d.file_offsets[i] < at)
      return "its extent " + std::to_string(i) + " goes to file offset " + std::to_string(d.file_offsets[i]) +
             ", inside the one before (which ends at " + std::to_string(at) + ")";
    if (len > d.size || d.file_offsets[i] > d.size - len)
      return "its extent " + std::to_string(i) + " ends at file offset " + std::to_string(d.file_offsets[i] + len) +
             ", past its size " + std::to_string(d.size);
    at = d.file_offsets[i] + len;
  }
  return "";
}

class Recoverer {
 public:
  Recoverer(Reader& reader, const UndeleteOptions& opt, Control& control, UndeleteReport& rep)
      : reader_(reader), opt_(opt), control_(control), rep_(rep) {}

  void file(UndeletedFile& f, Tree& tree, const std::string& prefix) {
    const DeletedFile& d = entry(rep_, f);
    std::vector<std::string> parts = split_path(d.path);
    if (!prefix.empty()) parts.insert(parts.begin(), prefix);
    if (d.directory) {
      std::string rel;
      tree.dir(parts, rel);
      f.written_as = rel;
      f.status = "recovered";
      dirs_.push_back({parts, &d.times});
      return;
    }
    if (d.status == DeletedStatus::overwritten || d.status == DeletedStatus::unreadable) {
      f.status = status_name(d.status);
      return;
    }
    if (d.status == DeletedStatus::recoverable) {
      std::string why = layout_problem(d);
      if (!why.empty()) {
        f.status = "unreadable";
        f.reason = why;
        return;
      }
    }
    std::string name = parts.back();
    parts.pop_back();
    std::string rel;
    int dfd = tree.dir(parts, rel);
    std::string created;
    UniqueFd fd = tree.create(dfd, rel, name, created);
    std::string shown = rel + "/" + created;
    try {
      if (d.status == DeletedStatus::empty || d.size == 0) {
        f.status = "empty";
        f.sha256 = carve::sha256_hex(nullptr, 0);
      } else {
        copy(f, d, fd.get(), rel + "/" + created);
        unproven_guess(f, d);
      }
      set_times(fd.get(), d.times);
    } catch (...) {
      ::unlinkat(dfd, created.c_str(), 0);
      throw;
    }
    if (f.status == "unreadable") {
      // Nothing half-read is presented as the file.
      ::unlinkat(dfd, created.c_str(), 0);
      return;
    }
    f.written_as = shown;
  }

  // ext3 whose indirect block is gone: the bytes past it follow a guess
  // (ext3's layout). Only a JPEG that decodes whole proves it; anything
  // else is written but not presented as recovered.
  static void unproven_guess(UndeletedFile& f, const DeletedFile& d) {
    if (d.rule != Recovery::indirect_guess || f.status != "recovered" || f.jpeg == "complete") return;
    f.status = "partial";
    f.reason = "its bytes past a lost indirect block were taken from right after it (ext3's layout), which nothing proves";
  }

  // Directories get their times last: writing into them changed them.
  void directory_times(Tree& tree) {
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
      std::string rel;
      int fd = tree.dir(it->parts, rel);
      set_times(fd, *it->times);
    }
  }

 private:
  // The volume's fragment search (built when first needed).
  FreeSpaceReassembler& reassembler(uint32_t volume) {
    auto& r = reassemblers_[volume];
    if (!r) r = std::make_unique<FreeSpaceReassembler>(reader_, rep_.found.volumes[volume].files);
    return *r;
  }

  // The planned bytes of a JPEG did not decode: the fragment search from its
  // first cluster. Found: the file written again from its fragments.
  bool reassembled(UndeletedFile& f, const DeletedFile& d, uint64_t broke_at, int fd, const std::string& shown) {
    // exFAT bytes past ValidDataLength read as zeros whatever the clusters
    // hold, and ext holes are zeros no cluster holds: not searched (the
    // search takes the file as its bytes back to back from its first cluster).
    if (d.status != DeletedStatus::recoverable || d.valid_size < d.size || has_holes(d)) return false;
    std::vector<uint8_t> bytes;
    FreeSpaceReassembler::Result r = reassembler(f.volume).run(d, broke_at, bytes);
    if (!r.ok) {
      if (!r.why.empty()) f.reason += "; " + r.why;
      return false;
    }
    if (::ftruncate(fd, 0) != 0) throw_sys(errno, "ftruncate", shown);
    if (::lseek(fd, 0, SEEK_SET) != 0) throw_sys(errno, "lseek", shown);
    write_all(fd, bytes.data(), bytes.size(), shown);
    f.status = "reassembled";
    f.jpeg = "complete";
    f.reason.clear();
    f.sha256 = carve::sha256_hex(bytes.data(), bytes.size());
    f.bytes_written = bytes.size();
    f.fragments = std::move(r.fragments);
    return true;
  }

  // The file's zeros from `pos` to `to` (an ext hole, or an unwritten
  // extent): hashed and kept as zeros, left as a hole in the written file
  // (lseek past it; the final ftruncate sets the size).
  void zeros(UndeletedFile& f, const DeletedFile& d, int fd, const std::string& shown, uint64_t& pos, uint64_t to,
             carve::Sha256& sha, std::vector<uint8_t>& whole, bool& first, bool& jpeg, bool& keep) {
    static const std::vector<uint8_t> zero(size_t(1) << 16, 0);
    if (to > pos && first) {
      // A file that starts with a hole is no JPEG by its content.
      first = false;
      keep = jpeg && d.size <= opt_.max_jpeg_check;
      if (keep) whole.reserve(static_cast<size_t>(d.size));
    }
    while (pos < to) {
      if (control_.cancelled()) throw Stop{};
      size_t n = static_cast<size_t>(std::min<uint64_t>(zero.size(), to - pos));
      sha.update(zero.data(), n);
      if (keep) whole.insert(whole.end(), zero.data(), zero.data() + n);
      pos += n;
      f.bytes_written += n;
      done_ += n;
    }
    if (::lseek(fd, static_cast<off_t>(pos), SEEK_SET) < 0) throw_sys(errno, "lseek", shown);
    control_.set_done(done_);
    control_.tick();
  }

  void copy(UndeletedFile& f, const DeletedFile& d, int fd, const std::string& shown) {
    carve::Sha256 sha;
    std::vector<uint8_t> buf(size_t(1) << 20);
    std::vector<uint8_t> whole;  // a JPEG's bytes, for the check
    bool jpeg = is_jpeg_name(d.path), first = true, keep = false;
    uint64_t pos = 0;  // in the file
    for (size_t i = 0; i < d.extents.size(); i++) {
      const fs::ByteRange& e = d.extents[i];
      // ext: the gap before this extent reads as zeros (layout_problem checked the offsets).
      if (!d.file_offsets.empty()) zeros(f, d, fd, shown, pos, d.file_offsets[i], sha, whole, first, jpeg, keep);
      for (uint64_t off = e.begin; off < e.end;) {
        if (control_.cancelled()) throw Stop{};
        size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), e.end - off));
        size_t got;
        try {
          got = reader_.read_at(buf.data(), want, off);
        } catch (const Error& err) {
          f.status = "unreadable";
          f.reason = err.what();
          return;
        }
        if (got < want) {
          f.status = "unreadable";
          f.reason = "its content at byte " + std::to_string(off + got) + " lies past the end of the source";
          return;
        }
        // exFAT: past ValidDataLength the file reads as zeros, whatever the clusters hold.
        if (pos + got > d.valid_size) {
          uint64_t from = d.valid_size > pos ? d.valid_size - pos : 0;
          std::memset(buf.data() + from, 0, got - static_cast<size_t>(from));
        }
        pos += got;
        if (first) {
          first = false;
          jpeg = jpeg || carve::header_check(buf.data(), got);
          keep = jpeg && d.size <= opt_.max_jpeg_check;
          if (keep) whole.reserve(static_cast<size_t>(d.size));
        }
        if (keep) whole.insert(whole.end(), buf.data(), buf.data() + got);
        sha.update(buf.data(), got);
        write_all(fd, buf.data(), got, shown);
        f.bytes_written += got;
        off += got;
        done_ += got;
        control_.set_done(done_);
        control_.tick();
      }
    }
    if (pos < d.size) {
      // A trailing hole: zeros up to the size, the file extended to it.
      zeros(f, d, fd, shown, pos, d.size, sha, whole, first, jpeg, keep);
      if (::ftruncate(fd, static_cast<off_t>(d.size)) != 0) throw_sys(errno, "ftruncate", shown);
    }
    f.sha256 = sha.hex();
    f.status = "recovered";
    if (keep) {
      carve::CheckResult r = carve::check_jpeg(whole.data(), whole.size(), true);
      f.jpeg = carve::status_name(r.status);
      if (r.status == carve::Status::complete) {
        // Verified: no other file's continuation is taken from its bytes.
        for (const auto& e : d.extents) reassembler(f.volume).claim(e.begin, e.end - e.begin);
      } else {
        f.status = "partial";
        f.reason = r.reason.empty() ? std::string("the JPEG does not decode") : "the JPEG does not decode: " + r.reason;
        // Its first fragment may end inside the header (a large EXIF
        // segment): the search handles that too, when it starts as a JPEG.
        if (r.status == carve::Status::partial || carve::header_check(whole.data(), whole.size()))
          reassembled(f, d, r.broke_at, fd, shown);
      }
    }
  }

  struct Dir {
    std::vector<std::string> parts;
    const fs::FileTimes* times;
  };
  Reader& reader_;
  const UndeleteOptions& opt_;
  Control& control_;
  UndeleteReport& rep_;
  uint64_t done_ = 0;
  std::vector<Dir> dirs_;
  std::map<uint32_t, std::unique_ptr<FreeSpaceReassembler>> reassemblers_;
};

std::string volume_name(const fs::FoundVolume& v) {
  return v.partition == 0 ? "the whole source" : "partition " + std::to_string(v.partition);
}

void count(UndeleteReport& rep, const UndeletedFile& f) {
  if (entry(rep, f).directory) {
    rep.directories++;
    return;
  }
  const std::string& s = f.status;
  if (s == "recovered") rep.recovered++;
  else if (s == "recoverable") rep.recovered++;
  else if (s == "reassembled") rep.reassembled++;
  else if (s == "partial") rep.partial++;
  else if (s == "overwritten") rep.overwritten++;
  else if (s == "empty") rep.empty++;
  else if (s == "unreadable") rep.unreadable++;
  rep.bytes_written += f.bytes_written;
}

}  // namespace

std::string safe_component(const std::string& name) {
  std::string out;
  for (size_t i = 0; i < name.size();) {
    unsigned char c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c == 0x7F || c == '/') {
      out += '_';
      i++;
      continue;
    }
    size_t n = utf8_len(name, i);
    if (n == 0) {
      out += '_';
      i++;
      continue;
    }
    // C1 controls (U+0080..U+009F) are control characters too.
    if (n == 2 && c == 0xC2 && static_cast<unsigned char>(name[i + 1]) < 0xA0) {
      out += '_';
      i += 2;
      continue;
    }
    if (out.size() + n > kMaxComponent) break;
    out.append(name, i, n);
    i += n;
  }
  if (out.empty()) return "_";
  if (out == ".") return "_";
  if (out == "..") return "__";
  return out;
}

void refuse_mounted_read_write(int fd, const std::string& path) {
  std::vector<std::string> mounts = host::read_write_mounts(fd);
  if (mounts.empty()) return;
  std::string list;
  for (const auto& m : mounts) list += (list.empty() ? "" : "; ") + m;
  throw Error(EBUSY, "EBUSY", "open", path,
              "'" + path + "' holds a filesystem mounted read-write (" + list +
                  "): what is on disk is not current while it is, and changes as it is read; unmount it or remount it read-only first");
}

UndeleteReport undelete(Reader& reader, const UndeleteOptions& opt, Control& control, const UndeleteSink& on_file) {
  fs::FindVolumesOptions fo;
  fo.ext_files = true;
  fs::SourceVolumes found = fs::find_volumes(reader, fo);
  control.throw_if_cancelled();
  return undelete_volumes(reader, std::move(found), opt, control, on_file);
}

UndeleteReport undelete_volumes(Reader& reader, fs::SourceVolumes found, const UndeleteOptions& opt, Control& control,
                                const UndeleteSink& on_file) {
  auto t0 = std::chrono::steady_clock::now();
  UndeleteReport rep;
  rep.source = reader.path();
  rep.size = reader.size();
  rep.found = std::move(found);

  std::vector<uint32_t> readable;
  for (uint32_t i = 0; i < rep.found.volumes.size(); i++)
    if (rep.found.volumes[i].read) readable.push_back(i);
  if (readable.empty()) {
    std::string why;
    if (!rep.found.table_problem.empty()) why = "the partition table: " + rep.found.table_problem + "; ";
    for (const auto& v : rep.found.volumes) {
      if (&v != &rep.found.volumes.front()) why += "; ";
      why += volume_name(v) + ": " + v.problem;
    }
    throw Error(0, "ERR_FS_UNSUPPORTED", "", reader.path(),
                "'" + reader.path() + "': no FAT, exFAT or ext filesystem could be read (" + why + ")");
  }

  uint64_t total = 0;
  for (uint32_t i : readable) {
    const auto& deleted = rep.found.volumes[i].files.deleted;
    for (size_t k = 0; k < deleted.size(); k++) {
      const DeletedFile& d = deleted[k];
      if (!d.directory && d.status == DeletedStatus::recoverable) total += d.size;
      UndeletedFile f;
      f.volume = i;
      f.index = k;
      rep.files.push_back(std::move(f));
    }
  }
  control.set_total(opt.list ? 0 : total);
  control.set_done(0);
  control.tick(true);

  if (opt.list) {
    for (auto& f : rep.files) {
      f.status = status_name(entry(rep, f).status);
      count(rep, f);
      if (on_file) on_file(rep, f);
    }
  } else {
    Tree tree(opt.out_dir);
    Recoverer rec(reader, opt, control, rep);
    size_t done_files = 0;
    try {
      for (auto& f : rep.files) {
        if (control.cancelled()) throw Stop{};
        // Several volumes: each under its own directory, so their paths do not mix.
        const auto& v = rep.found.volumes[f.volume];
        std::string prefix = readable.size() == 1 ? "" : v.partition == 0 ? "volume" : "partition-" + std::to_string(v.partition);
        rec.file(f, tree, prefix);
        count(rep, f);
        done_files++;
        if (on_file) on_file(rep, f);
      }
    } catch (const Stop&) {
      rep.cancelled = true;
      rep.files.resize(done_files);
    }
    rec.directory_times(tree);
  }
  control.tick(true);
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

}  // namespace blocksmith::undelete
