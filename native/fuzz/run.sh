#!/usr/bin/env bash
# npm run fuzz [-- SECONDS]: builds and runs every libFuzzer harness for
# SECONDS each (default 60; CI smoke: 20). First replays the committed
# regression inputs (test/fixtures/fuzz/NAME/*), then fuzzes from a corpus
# kept in build/fuzz/corpus/NAME (seeded by native/fuzz/seeds/NAME.sh when
# present, plus the committed minimised corpus native/fuzz/corpus/NAME.tar.xz;
# NAME.dict is used as a dictionary). Long runs: native/fuzz/long.sh. A crash leaves its input in
# build/fuzz/crashes/ and fails the run. With FUZZ_JSON=FILE, writes per
# harness results (executions, coverage, features, crashes) as JSON.
set -uo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-${FUZZ_SECONDS:-60}}

bash native/fuzz/build.sh || exit 1
mkdir -p build/fuzz/corpus build/fuzz/crashes build/fuzz/logs
results=()
failed=0
for harness in native/fuzz/fuzz_*.cc; do
  name=$(basename "$harness" .cc)
  bin=build/fuzz/$name
  corpus=build/fuzz/corpus/$name
  log=build/fuzz/logs/$name.log
  mkdir -p "$corpus"
  if [ -z "$(ls -A "$corpus")" ]; then
    if [ -x "native/fuzz/seeds/$name.sh" ]; then
      "native/fuzz/seeds/$name.sh" "$corpus" || { echo "fuzz: seeding $name failed" >&2; }
    fi
    # The minimised corpus of the long runs (native/fuzz/long.sh), packed as
    # native/fuzz/corpus/NAME.tar.xz: every input in it runs first, so each
    # smoke also replays what those runs reached.
    [ -f "native/fuzz/corpus/$name.tar.xz" ] && tar -xJf "native/fuzz/corpus/$name.tar.xz" -C "$corpus"
  fi
  status=ok
  # Regression inputs: each must run clean.
  fixtures=(test/fixtures/fuzz/$name/*)
  if [ -e "${fixtures[0]}" ]; then
    if ! "$bin" "${fixtures[@]}" >"$log.replay" 2>&1; then
      status=regression
      echo "fuzz: $name fails on a committed regression input (see $log.replay)" >&2
    fi
  fi
  dict=()
  [ -f "native/fuzz/$name.dict" ] && dict=("-dict=native/fuzz/$name.dict")
  start=$(date +%s%N)
  "$bin" -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="build/fuzz/crashes/$name-" "${dict[@]}" "$corpus" >"$log" 2>&1
  rc=$?
  wall_ms=$(( ($(date +%s%N) - start) / 1000000 ))
  [ $rc -ne 0 ] && status=crash
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
  cov=$(grep -oE '(DONE|pulse|NEW|REDUCE|INITED)[^c]*cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$')
  ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$')
  echo "fuzz: $name ${secs}s: ${execs:-0} executions, coverage ${cov:-0} edges, ${ft:-0} features, $status"
  [ "$status" = ok ] || { failed=$((failed + 1)); tail -30 "$log" >&2; }
  results+=("{\"harness\":\"$name\",\"seconds\":$secs,\"wallMs\":$wall_ms,\"executions\":${execs:-0},\"coverage\":${cov:-0},\"features\":${ft:-0},\"status\":\"$status\"}")
done
if [ -n "${FUZZ_JSON:-}" ]; then
  (IFS=,; echo "[${results[*]}]") > "$FUZZ_JSON"
fi
[ $failed -eq 0 ]
