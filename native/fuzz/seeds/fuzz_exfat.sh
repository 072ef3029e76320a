#!/usr/bin/env bash
# Seeds for fuzz_exfat: tiny real exFAT volumes (mkfs.exfat, 512-byte and
# 4 KiB clusters). As root with exfat-fuse and a free loop device, one more
# holding live files, a fragmented (FAT-chained) file, and deleted files and
# a deleted directory, so the fuzzer starts from real deleted entry sets.
set -euo pipefail
out=$1
tmp=$(mktemp -d)
loop=
cleanup() {
  mountpoint -q "$tmp/m" 2>/dev/null && umount "$tmp/m"
  [ -n "$loop" ] && losetup -d "$loop"
  rm -rf "$tmp"
}
trap cleanup EXIT
command -v mkfs.exfat >/dev/null || exit 0
truncate -s 256K "$tmp/small512" && mkfs.exfat -b 4K -c 512 "$tmp/small512" >/dev/null 2>&1 && cp "$tmp/small512" "$out/small512"
truncate -s 256K "$tmp/small4k" && mkfs.exfat -b 4K -c 4K -L SEED "$tmp/small4k" >/dev/null 2>&1 && cp "$tmp/small4k" "$out/small4k"
[ "$(id -u)" = 0 ] && command -v mount.exfat-fuse >/dev/null || exit 0
truncate -s 256K "$tmp/files" && mkfs.exfat -b 4K -c 512 "$tmp/files" >/dev/null 2>&1
loop=$(losetup -f --show "$tmp/files" 2>/dev/null) || exit 0
mkdir -p "$tmp/m"
mount.exfat-fuse "$loop" "$tmp/m" >/dev/null 2>&1 || exit 0
(
  cd "$tmp/m"
  mkdir -p dir/sub keep
  head -c 3000 /dev/urandom > "dir/sub/a long name, deleted.jpg"
  head -c 700 /dev/urandom > frag && sync && head -c 600 /dev/urandom > keep/live && sync && head -c 900 /dev/urandom >> frag
  head -c 2000 /dev/urandom > gone.bin
  : > empty
  sync
  rm -r dir gone.bin empty frag
)
umount "$tmp/m"
cp "$tmp/files" "$out/files"
exit 0
