#!/usr/bin/env bash
# Seeds for fuzz_ext_deleted: 4 MiB ext2/ext3/ext4 images (1 KiB blocks, 1 MiB journals)
# with deleted files. debugfs deletes as old ext2 did (block pointers and
# the name in its predecessor's rec_len slack survive); as root, the kernel
# also writes and deletes through a loop mount (then writes new files that
# take the freed inode numbers), so the jbd2 journal holds the older
# inode-table and directory blocks the reader looks for. Each
# image is written in the harness's sparse form: its non-zero 1 KiB blocks
# as (2-byte block number, 1024 bytes) records.
set -euo pipefail
out=$1
tmp=$(mktemp -d)
loop=
cleanup() { [ -n "$loop" ] && { umount "$tmp/m" 2>/dev/null || true; losetup -d "$loop" 2>/dev/null || true; }; rm -rf "$tmp"; }
trap cleanup EXIT
command -v mke2fs >/dev/null && command -v python3 >/dev/null || exit 0
sparse() {
  python3 - "$1" "$2" <<'PY'
import sys
data = open(sys.argv[1], 'rb').read()
with open(sys.argv[2], 'wb') as out:
    for b in range(len(data) // 1024):
        blk = data[b * 1024:(b + 1) * 1024]
        if any(blk):
            out.write(b.to_bytes(2, 'little') + blk)
PY
}
mkdir -p "$tmp/files/d/sub" "$tmp/m"
head -c 20000 /dev/urandom > "$tmp/files/d/ind"      # 20 blocks: an indirect block
head -c 3000 /dev/urandom > "$tmp/files/d/sub/small"
echo live > "$tmp/files/live"
i=0
for opts in "-t ext2" "-t ext3" "-t ext4" "-t ext4 -O ^metadata_csum,^64bit"; do
  i=$((i + 1))
  truncate -s 4M "$tmp/img$i"
  mke2fs -q -F $opts -b 1024 -N 32 -d "$tmp/files" "$tmp/img$i" >/dev/null 2>&1 || continue
  debugfs -w -R "rm /d/ind" "$tmp/img$i" >/dev/null 2>&1 || true
  debugfs -w -R "rm /d/sub/small" "$tmp/img$i" >/dev/null 2>&1 || true
  sparse "$tmp/img$i" "$out/debugfs$i"
done
# The kernel's own deletes (root only: loop devices).
[ "$(id -u)" = 0 ] || exit 0
for opts in "-t ext3" "-t ext4"; do
  i=$((i + 1))
  truncate -s 4M "$tmp/k$i"
  mke2fs -q -F $opts -b 1024 -N 32 -d "$tmp/files" "$tmp/k$i" >/dev/null 2>&1 || continue
  loop=$(losetup -f --show "$tmp/k$i" 2>/dev/null) || { loop=; continue; }
  if mount -t ext4 "$loop" "$tmp/m" 2>/dev/null; then
    head -c 15000 /dev/urandom > "$tmp/m/d/new" && sync && rm -r "$tmp/m/d" && sync
    # A new folder and file take the removed tree's inode numbers: the
    # journal then holds those numbers' earlier incarnations.
    mkdir "$tmp/m/n" && echo new > "$tmp/m/n/f" && sync
    umount "$tmp/m"
  fi
  losetup -d "$loop"; loop=
  sparse "$tmp/k$i" "$out/kernel$i"
done
exit 0
