#!/usr/bin/env bash
# Seeds for fuzz_fs: tiny real ext2/ext4 images (1 KiB blocks, no journal),
# unpartitioned, in an MBR partition and in a GPT partition.
set -euo pipefail
out=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
command -v mke2fs >/dev/null || exit 0
i=0
for opts in "-t ext2" "-t ext4 -O ^has_journal" "-t ext4 -O ^has_journal,^metadata_csum,uninit_bg" "-t ext4 -O ^has_journal,meta_bg,^resize_inode"; do
  i=$((i + 1))
  truncate -s 96K "$tmp/whole$i"
  mke2fs -q -F $opts -b 1024 -N 16 "$tmp/whole$i" >/dev/null 2>&1 && cp "$tmp/whole$i" "$out/whole$i"
done
truncate -s 160K "$tmp/mbr"
printf 'label: dos\n64,192,83\n' | sfdisk -q "$tmp/mbr" >/dev/null 2>&1 && \
  mke2fs -q -F -t ext4 -O ^has_journal -b 1024 -N 16 -E offset=32768 "$tmp/mbr" 96k >/dev/null 2>&1 && cp "$tmp/mbr" "$out/mbr"
truncate -s 192K "$tmp/gpt"
printf 'label: gpt\nfirst-lba: 64\n64,192,L\n' | sfdisk -q "$tmp/gpt" >/dev/null 2>&1 && \
  mke2fs -q -F -t ext4 -O ^has_journal -b 1024 -N 16 -E offset=32768 "$tmp/gpt" 96k >/dev/null 2>&1 && cp "$tmp/gpt" "$out/gpt"
exit 0
