#!/usr/bin/env bash
# Seeds for fuzz_jbd2: the first blocks of journals the kernel wrote (ext4
# with metadata_csum and 64bit: v3 tags; ext3: v2 32-bit tags) on 1 KiB-block
# filesystems where files were written, synced and deleted, behind a block
# whose byte 256 selects the harness's own journal inode (bytes 260-263:
# the filesystem's 8192 blocks); s_maxlen cut to
# the blocks kept (the superblock checksum redone). Needs root for the loop
# mount; without it, the journals mkfs writes (empty logs).
set -euo pipefail
out=$1
tmp=$(mktemp -d)
trap 'umount "$tmp/mnt" 2>/dev/null || true; rm -rf "$tmp"' EXIT
command -v mke2fs >/dev/null && command -v python3 >/dev/null || exit 0
mkdir -p "$tmp/mnt"
for fs in "ext4:-t ext4" "ext3:-t ext3"; do
  name=${fs%%:*}
  truncate -s 8M "$tmp/$name.img"
  mke2fs -q -F ${fs#*:} -b 1024 -J size=1 "$tmp/$name.img" >/dev/null 2>&1 || continue
  if [ "$(id -u)" = 0 ] && mount -o loop "$tmp/$name.img" "$tmp/mnt" 2>/dev/null; then
    head -c 20000 /dev/urandom > "$tmp/mnt/kept"
    head -c 30000 /dev/urandom > "$tmp/mnt/gone"
    mkdir "$tmp/mnt/dir" && echo x > "$tmp/mnt/dir/small"
    sync
    rm -r "$tmp/mnt/gone" "$tmp/mnt/dir"
    sync
    umount "$tmp/mnt"
  fi
  debugfs -R "dump <8> $tmp/$name.journal" "$tmp/$name.img" >/dev/null 2>&1 || continue
  python3 - "$tmp/$name.journal" "$out/$name-journal" <<'PY'
import struct, sys
keep = 40
j = bytearray(open(sys.argv[1], 'rb').read()[:keep * 1024])
def crc32c(crc, data):
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc & 0xFFFFFFFF
struct.pack_into('>I', j, 0x10, keep)
if struct.unpack_from('>I', j, 0x28)[0] & 0x18:  # csum v2/v3: the superblock's checksum
    struct.pack_into('>I', j, 0xFC, 0)
    struct.pack_into('>I', j, 0xFC, crc32c(0xFFFFFFFF, bytes(j[:1024])))
head = bytearray(1024)
head[256] = 1
struct.pack_into('<I', head, 260, 8192)  # the filesystem's blocks, as the tags name them
open(sys.argv[2], 'wb').write(bytes(head) + bytes(j))
PY
done
exit 0
