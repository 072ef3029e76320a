#!/usr/bin/env bash
# Seeds for fuzz_fat: small real FAT12, FAT16 and FAT32 volumes (mkfs.fat +
# mtools) holding long names, nested directories, a file fragmented by
# delete-and-rewrite, deleted files and a deleted directory tree; their
# zero tails are cut off (the harness reads past the input as zeros).
set -euo pipefail
out=$(realpath "$1")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
command -v mkfs.fat >/dev/null && command -v mcopy >/dev/null || exit 0
export MTOOLS_SKIP_CHECK=1
cd "$tmp"
head -c 1500 /dev/urandom > a; head -c 2500 /dev/urandom > b; head -c 600 /dev/urandom > c; head -c 5000 /dev/urandom > d
fill() {
  local img=$1
  mmd -i "$img" ::DCIM ::DCIM/100CANON ::keep
  mcopy -i "$img" a '::DCIM/100CANON/Holiday Photo 001.jpg'
  mcopy -i "$img" c ::DCIM/NOTE.TXT
  mcopy -i "$img" a ::keep/a.bin; mcopy -i "$img" b '::keep/b long name.bin'; mcopy -i "$img" c ::keep/c.bin
  mdel -i "$img" '::keep/b long name.bin'
  mcopy -i "$img" d '::keep/d fragmented.dat'; mdel -i "$img" '::keep/d fragmented.dat'
  mdeltree -i "$img" ::DCIM
}
# Cut at the last non-zero byte, rounded up to 512.
trim() {
  local n
  n=$(python3 -c "import sys; d=open(sys.argv[1],'rb').read().rstrip(b'\0'); print((len(d)+511)//512*512)" "$1")
  head -c "$n" "$1" > "$2"
}
truncate -s 200K f12 && mkfs.fat -F 12 -s 1 -r 32 f12 >/dev/null && fill f12 && trim f12 "$out/fat12"
truncate -s 2200K f16 && mkfs.fat -F 16 -s 1 -r 64 f16 >/dev/null && fill f16 && trim f16 "$out/fat16"
truncate -s 34M f32 && mkfs.fat -F 32 -s 1 -f 1 f32 >/dev/null 2>&1 && fill f32 && trim f32 "$out/fat32"
exit 0
