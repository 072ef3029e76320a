#!/usr/bin/env bash
# Two builds' sparse copies of one image, cold, alternating A B A B (the disk
# drifts more between the suite's rotations than the builds differ).
#   bash bench/copy-ab.sh A_SPARSIFY_JS B_SPARSIFY_JS ROUNDS [SRC]
# SRC defaults to the suite's VM master (bench/work/sparsify-vm.raw); the copy
# goes next to it and is removed. Prints "CLI seconds" per run, the final
# `sync` of the copy inside the time.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=${4:-$here/work/sparsify-vm.raw}
out=$(dirname "$src")/ab-copy.raw
[ -e "$out" ] && { echo "copy-ab: $out exists; not overwriting it" >&2; exit 1; }
for ((r=0; r<$3; r++)); do
  for cli in "$1" "$2"; do
    rm -f "$out"; sync; echo 3 > /proc/sys/vm/drop_caches
    s=$(date +%s.%N); node "$cli" -q "$src" "$out"; sync "$out"; e=$(date +%s.%N)
    echo "$cli $(echo "$e - $s" | bc)"
  done
done
rm -f "$out"
