#!/usr/bin/env bash
# Seeds for fuzz_fs: tiny real ext2/ext4 images (1 KiB blocks, no journal),
# unpartitioned, in an MBR partition and in a GPT partition; and two holding
# files, so the cross-check's walker starts from real inodes: a file with
# indirect blocks (ext2), an extent tree with a leaf block (ext4), an
# extended-attribute block, fast and slow symlinks.
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
mkdir -p "$tmp/files"
head -c 20000 /dev/urandom > "$tmp/files/ind"          # 20 blocks: 12 direct + an indirect block
printf 'x%.0s' $(seq 1 80) > "$tmp/files/target"
ln -s target "$tmp/files/fast"
ln -s "$(cat "$tmp/files/target")" "$tmp/files/slow"
truncate -s 60K "$tmp/files/frag"                     # 6 pieces: more extents than the inode holds
for k in 0 2 4 6 8 10; do head -c 1024 /dev/urandom | dd of="$tmp/files/frag" bs=1024 seek=$((k * 5)) conv=notrunc 2>/dev/null; done
head -c 600 /dev/urandom | base64 -w0 | head -c 600 > "$tmp/xattr"
for fs in "ext2:-t ext2" "ext4:-t ext4 -O ^has_journal"; do
  name=files-${fs%%:*}
  truncate -s 256K "$tmp/$name"
  if mke2fs -q -F ${fs#*:} -b 1024 -N 32 -d "$tmp/files" "$tmp/$name" >/dev/null 2>&1; then
    debugfs -w -R "ea_set -f $tmp/xattr /ind user.v" "$tmp/$name" >/dev/null 2>&1 || true
    cp "$tmp/$name" "$out/$name"
  fi
done
exit 0
