// What a filesystem's metadata says about its files, for recovery: the
// deleted files it still describes (names, sizes, times, where their content
// lies and how sure we are), and which bytes of the volume live files and
// metadata own. One shape for every filesystem reader (FAT12/16/32, exFAT;
// ext2/3/4): `blocksmith undelete` recovers the deleted files by name from
// it, and `carve --scope free` scans only what it calls free.
//
// Every reader treats every byte as hostile: fields are bounds-checked,
// cluster chains and directory trees are walked with cycle and size limits,
// memory is bounded, and a volume that cannot be trusted throws one line
// (blocksmith::Error, code ERR_FS_CORRUPT or ERR_FS_UNSUPPORTED).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/guest_fs/free_map.h"
#include "core/pipeline/reader.h"

namespace blocksmith::fs {

// Seconds since the Unix epoch (UTC) and nanoseconds; known = false when the
// filesystem does not record it (FAT has no access time of day, exFAT and
// FAT times are local time unless a UTC offset is stored: see `local_time`).
struct Timestamp {
  bool known = false;
  int64_t seconds = 0;
  uint32_t nanoseconds = 0;
  // The filesystem stored local time without an offset (FAT; exFAT without
  // its OffsetValid bit): `seconds` reads it as if it were UTC.
  bool local_time = false;
};

struct FileTimes {
  Timestamp modified, accessed, created;
};

// How the bytes of a deleted file were located.
enum class Recovery : uint8_t {
  // exFAT NoFatChain: the file was contiguous from its first cluster.
  contiguous,
  // FAT (and exFAT with a FAT chain): the chain is zeroed on delete, so the
  // file is taken from its first cluster on, skipping clusters that live
  // files own, as many clusters as its size needs.
  skip_live_clusters,
  // The chain is still in the FAT (a deleted entry whose clusters were not
  // freed, e.g. an unclean delete): followed as written.
  fat_chain,
  // ext2/3: the direct and indirect block pointers of an inode copy (the
  // inode table, or a journal copy from before the delete).
  block_map,
  // ext4: the extent tree of an inode copy (index blocks from the journal
  // or the disk).
  extent_tree,
  // ext3: the pointers end at an indirect block that is gone (zeroed, no
  // copy): the data is taken as resuming right after it, contiguous, as
  // ext3's allocator lays it out (to be proven by decoding for JPEGs).
  indirect_guess,
};

// What can be said about the content before it is read.
enum class DeletedStatus : uint8_t {
  recoverable,  // every cluster it needs is free now
  overwritten,  // some cluster it needs is owned by a live file now: do not present as recovered
  empty,        // size 0: recreated with its name and times only
  unreadable,   // the first cluster or the size is impossible (past the volume, cluster < 2)
};

struct DeletedFile {
  // Path from the volume's root with '/' separators, as stored (long names
  // where they survive; a FAT 8.3 name whose first byte the delete replaced
  // has '_' there). Not yet made safe for writing: the writer does that.
  std::string path;
  bool directory = false;
  bool parent_deleted = false;  // found inside a deleted directory
  // FAT: the first character of this 8.3 name (lost on delete) was taken
  // from the live names of the same pattern around it (fat_short_names.h).
  bool name_guessed = false;
  uint64_t size = 0;
  FileTimes times;
  uint64_t first_cluster = 0;
  Recovery rule = Recovery::skip_live_clusters;
  DeletedStatus status = DeletedStatus::recoverable;
  // Where its bytes lie in the SOURCE (volume offset included), in file
  // order; their lengths add up to `size` when status is recoverable.
  std::vector<ByteRange> extents;
  // status overwritten: how many of its bytes lie in clusters live files own.
  uint64_t overwritten_bytes = 0;
  // Bytes from this one on read as zeros whatever the extents hold (exFAT's
  // ValidDataLength below DataLength: space allocated but never written).
  // At least `size` when every byte is valid (the default, and FAT's case).
  uint64_t valid_size = UINT64_MAX;
  // ext: the inode number (0 on FAT/exFAT), and where the metadata that
  // locates its bytes came from ("the inode table", "journal transaction
  // 4123").
  uint32_t inode = 0;
  std::string found_in;
  // Empty: the extents are the file's bytes back to back. Else one entry
  // per extent: the file offset its bytes go to; the gaps between them (and
  // up to `size`) read as zeros (ext holes and unwritten extents). The
  // extents plus the gaps add up to `size`.
  std::vector<uint64_t> file_offsets;
};

struct VolumeFiles {
  std::string filesystem;  // "fat12", "fat16", "fat32", "exfat", "ext2", "ext3", "ext4"
  std::string label;
  uint64_t offset = 0, length = 0;  // of the volume in the source
  uint32_t cluster_size = 0;
  uint64_t data_offset = 0;  // where cluster 2 starts, in the source
  uint64_t cluster_count = 0;
  // Bytes of the source that live files, directories and the filesystem's
  // own structures own (boot sectors, FATs, bitmap, root directory).
  FreeMap allocated;
  // Clusters no live file owns (source coordinates).
  FreeMap free;
  std::vector<DeletedFile> deleted;
  uint64_t live_files = 0, live_directories = 0;
  // Consistency problems found that do not stop the walk (a cross-linked
  // cluster, a directory loop cut short; ext: a bad inode bitmap, what the
  // journal reader skipped): on FAT/exFAT, carving scope falls back to
  // "all" when this is not empty (ext volumes take theirs from the bitmaps).
  std::vector<std::string> problems;
};

// The filesystem readers: `offset`/`length` delimit the volume in `reader`
// (a partition, or the whole source). Each probe looks at the boot sector
// only; each read_* throws one line when the volume cannot be trusted.
bool probe_fat(Reader& reader, uint64_t offset, uint64_t length);
VolumeFiles read_fat(Reader& reader, uint64_t offset, uint64_t length);
bool probe_exfat(Reader& reader, uint64_t offset, uint64_t length);
VolumeFiles read_exfat(Reader& reader, uint64_t offset, uint64_t length);
// ext2/3/4 (guest_fs/ext_deleted.cc): the free inodes whose newest copy (the
// inode table, or the jbd2 journal's copies: jbd2.h) still maps blocks,
// named from live and deleted directory blocks and their journal copies,
// "lost+found/#INODE" when no name survives. cluster_size is the block size,
// data_offset the volume's offset (block 0). Probe: probe_ext (ext.h).
VolumeFiles read_ext_files(Reader& reader, uint64_t offset, uint64_t length);

}  // namespace blocksmith::fs
