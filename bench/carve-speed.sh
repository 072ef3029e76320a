#!/usr/bin/env bash
# Issue 19 item 1: carve against `foremost -q` and an earlier build, warm and
# cold, alternating (the machine is shared: medians of rounds in turn).
#   bash bench/carve-speed.sh BEFORE_ROOT AFTER_ROOT IMG ROUNDS COLD_ROUNDS OUT.json
# BEFORE_ROOT / AFTER_ROOT: package roots with dist/ and build/Release/ built.
# Warm: the image is read into the page cache (cat) before each round; cold:
# sync; echo 3 > /proc/sys/vm/drop_caches before each run, with a cold
# `dd bs=4M` of the image in the same round (the disk's floor). Outputs go to
# /dev/shm (written, as a user's run writes them) and are removed after.
set -euo pipefail
before=$1 after=$2 img=$3 rounds=$4 cold_rounds=$5 out=$6
tmp=$(mktemp -d /dev/shm/carve-speed.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
rows="$tmp/rows"
: > "$rows"

# One timed run: label, then the command; appends "label wall user sys maxrss_kb".
timed() {
  local label=$1
  shift
  rm -rf "$tmp/out"
  mkdir "$tmp/out"
  /usr/bin/time -f "$label %e %U %S %M" -o "$tmp/t" "$@" > /dev/null 2>&1
  cat "$tmp/t" >> "$rows"
}
carve_run() { timed "$1" node "$2/dist/cli/bin/carve.js" "$img" -o "$tmp/out" --scope all --quiet; }
foremost_run() { rm -rf "$tmp/fm"; timed foremost-q foremost -q -t jpg -i "$img" -o "$tmp/fm"; rm -rf "$tmp/fm"; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }

for ((r = 0; r < rounds; r++)); do
  cat "$img" > /dev/null
  if ((r % 2 == 0)); then
    foremost_run; carve_run warm-before "$before"; carve_run warm-after "$after"
  else
    carve_run warm-after "$after"; carve_run warm-before "$before"; foremost_run
  fi
done
for ((r = 0; r < cold_rounds; r++)); do
  drop; timed cold-dd dd if="$img" of=/dev/null bs=4M status=none
  if ((r % 2 == 0)); then
    drop; carve_run cold-before "$before"; drop; carve_run cold-after "$after"
  else
    drop; carve_run cold-after "$after"; drop; carve_run cold-before "$before"
  fi
done

python3 - "$rows" "$out" "$before" "$after" "$img" "$rounds" "$cold_rounds" <<'EOF'
import json, statistics, sys, datetime, os
rows, out, before, after, img, rounds, cold_rounds = sys.argv[1:]
runs = {}
for line in open(rows):
    label, wall, user, sys_, rss = line.split()
    runs.setdefault(label, []).append({"wall_s": float(wall), "user_s": float(user), "sys_s": float(sys_), "max_rss_kb": int(rss)})
med = {k: {f: statistics.median(r[f] for r in v) for f in ("wall_s", "user_s", "sys_s", "max_rss_kb")} for k, v in runs.items()}
w = lambda k: med[k]["wall_s"]
ratios = {
    "warm_after_over_foremost_q": round(w("warm-after") / w("foremost-q"), 3),
    "warm_before_over_foremost_q": round(w("warm-before") / w("foremost-q"), 3),
    "warm_after_over_before": round(w("warm-after") / w("warm-before"), 3),
}
if cold_rounds != "0":
    floor = max(w("warm-after"), w("cold-dd"))
    ratios["cold_after_over_max_warm_or_dd"] = round(w("cold-after") / floor, 3)
    ratios["cold_before_over_max_warm_or_dd"] = round(max(0, w("cold-before")) / max(w("warm-before"), w("cold-dd")), 3)
json.dump({
    "command": f"bash bench/carve-speed.sh {before} {after} {img} {rounds} {cold_rounds} OUT",
    "carve": "node ROOT/dist/cli/bin/carve.js IMG -o OUT(/dev/shm) --scope all --quiet",
    "foremost": "foremost -q -t jpg -i IMG -o OUT(/dev/shm)",
    "date": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%MZ"),
    "load_average_after": open("/proc/loadavg").read().split()[:3],
    "medians": med,
    "ratios": ratios,
    "runs": runs,
}, open(out, "w"), indent=1)
print(json.dumps({"medians": med, "ratios": ratios}, indent=1))
EOF
