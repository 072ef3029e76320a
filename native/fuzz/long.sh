#!/usr/bin/env bash
# Long fuzzing outside CI: native/fuzz/long.sh SECONDS HARNESS...
# Runs each harness (built by build.sh) at nice 19 for SECONDS of wall time,
# in libFuzzer's fork mode so a crash is kept and the run goes on, from its
# kept corpus (build/fuzz/corpus/NAME, seeded like run.sh), then
# minimises that corpus into native/fuzz/corpus/NAME.tar.xz (committed:
# later runs and CI start from it) and appends one JSON line per harness to
# build/fuzz/long.ndjson: wall and CPU seconds, executions, coverage,
# features, corpus size, crashes (left in build/fuzz/crashes/).
set -uo pipefail
cd "$(dirname "$0")/../.."
secs=${1:?usage: long.sh SECONDS HARNESS...}; shift
mkdir -p build/fuzz/corpus build/fuzz/crashes build/fuzz/logs
for name in "$@"; do
  bin=build/fuzz/$name
  corpus=build/fuzz/corpus/$name
  kept=native/fuzz/corpus/$name
  log=build/fuzz/logs/$name.long.log
  mkdir -p "$corpus" native/fuzz/corpus
  if [ -z "$(ls -A "$corpus")" ]; then
    [ -x "native/fuzz/seeds/$name.sh" ] && "native/fuzz/seeds/$name.sh" "$corpus"
    [ -f "$kept.tar.xz" ] && tar -xJf "$kept.tar.xz" -C "$corpus"
  fi
  dict=()
  [ -f "native/fuzz/$name.dict" ] && dict=("-dict=native/fuzz/$name.dict")
  start=$(date +%s)
  # CPU seconds from the child's rusage (bash's `times` after it ends).
  /usr/bin/time -f '%U %S' -o "$log.time" nice -n 19 "$bin" -fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 \
    -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -artifact_prefix="build/fuzz/crashes/$name-" "${dict[@]}" "$corpus" >"$log" 2>&1
  rc=$?
  wall=$(( $(date +%s) - start ))
  cpu=$(tail -n 1 "$log.time" | awk '{printf "%d", $1 + $2}')
  # Fork mode's status lines: "#EXECS: cov: N ft: N corp: ...".
  execs=$(grep -oE '^#[0-9]+: cov' "$log" | tail -1 | grep -oE '[0-9]+')
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$')
  ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$')
  # Minimise into the kept corpus: only inputs that add coverage survive.
  rm -rf "$kept.new" && mkdir -p "$kept.new"
  nice -n 19 "$bin" -merge=1 -rss_limit_mb=2048 -timeout=10 "$kept.new" "$corpus" >"$log.merge" 2>&1
  files=$(ls "$kept.new" | wc -l); bytes=$(du -sb "$kept.new" | cut -f1)
  # Committed packed (filesystem images are mostly zeros); run.sh unpacks it.
  tar -C "$kept.new" -cJf "$kept.tar.xz" . && rm -rf "$kept.new"
  crashes=$(ls build/fuzz/crashes | grep -c "^$name-")
  echo "{\"harness\":\"$name\",\"wallSeconds\":$wall,\"cpuSeconds\":${cpu:-0},\"executions\":${execs:-0},\"coverage\":${cov:-0},\"features\":${ft:-0},\"corpusFiles\":$files,\"corpusBytes\":$bytes,\"exit\":$rc,\"crashes\":$crashes}" | tee -a build/fuzz/long.ndjson
done
