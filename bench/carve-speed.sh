#!/usr/bin/env bash
# Issue 19 item 1: carve against `foremost -q` and an earlier build, warm and
# cold, alternating (the machine is shared: medians of rounds in turn).
#   bash bench/carve-speed.sh BEFORE_ROOT AFTER_ROOT IMG ROUNDS COLD_ROUNDS OUT.json
# BEFORE_ROOT / AFTER_ROOT: package roots with dist/ and build/Release/ built.
# Warm: the image is read into the page cache (cat) before each round; cold:
# sync; echo 3 > /proc/sys/vm/drop_caches before each run, with a cold
# `dd bs=4M` of the image in the same round (the disk's floor). Outputs go to
# /dev/shm (written, as a user's run writes them) and are removed after.
# Then the warm floors (below). Needs cc and libjpeg's headers (libjpeg-dev).
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

# Floors, warm (what no carve that reads the image and decodes every JPEG in
# it can go below on this machine): Node's start-up; reading the image from
# the page cache (dd's CPU is the kernel's copy); decoding the JPEG data alone
# on one thread (bench/carve-decode-only.mjs over the carved files laid end
# to end: CPU seconds of both builds); and, for scale, libjpeg-turbo's own
# entropy decoding of the same files (bench/jpeg-entropy-floor.c).
here=$(cd "$(dirname "$0")" && pwd)
mkdir "$tmp/files"
node "$after/dist/cli/bin/carve.js" "$img" -o "$tmp/files" --scope all --quiet > /dev/null 2>&1
find "$tmp/files" -maxdepth 1 -name '*.jpg' | sort > "$tmp/list"
xargs cat < "$tmp/list" > "$tmp/jpegs.img"
cc -O2 -o "$tmp/jpeg-entropy-floor" "$here/jpeg-entropy-floor.c" -ljpeg
for ((r = 0; r < rounds; r++)); do
  timed floor-node node -e 0
  cat "$img" > /dev/null
  timed floor-dd-warm dd if="$img" of=/dev/null bs=4M status=none
done
for root in "$before" "$after"; do
  label=decode-before; [ "$root" = "$after" ] && label=decode-after
  node "$here/carve-decode-only.mjs" "$root" "$tmp/jpegs.img" 2> /dev/null | sed -n "s|^.* cpu s |$label |p" >> "$tmp/decode"
done
for ((r = 0; r < 3; r++)); do
  xargs "$tmp/jpeg-entropy-floor" < "$tmp/list" | sed 's/^/libjpeg-turbo /' >> "$tmp/decode"
done

python3 - "$rows" "$out" "$before" "$after" "$img" "$rounds" "$cold_rounds" "$tmp/decode" <<'EOF'
import json, statistics, sys, datetime, os
rows, out, before, after, img, rounds, cold_rounds, decode = sys.argv[1:]

def commit_of(root):
    import subprocess
    r = subprocess.run(["git", "-C", root, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True)
    return r.stdout.strip() or "not a git checkout"
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
# Decode-only CPU seconds (one thread) of both builds, and libjpeg-turbo's.
dec = {}
for line in open(decode):
    f = line.split()
    if f[0] == "libjpeg-turbo":
        dec.setdefault("libjpeg-turbo", []).append(float(f[3]))
        dec["jpeg_files"], dec["jpeg_bytes"], dec["libjpeg_failed"] = int(f[1]), int(f[2]), int(f[4])
    else:
        dec.setdefault(f[0], []).extend(float(x) for x in f[1:])
decode_cpu = {k: round(statistics.median(v), 3) for k, v in dec.items() if isinstance(v, list)}
cpu = lambda k: med[k]["user_s"] + med[k]["sys_s"]
# With both cores busy all the time, a carve cannot take less wall time than
# Node's start-up plus half the CPU of reading the image and decoding its JPEGs.
floor_s = w("floor-node") + (cpu("floor-dd-warm") + decode_cpu["decode-after"]) / 2
floors = {
    "node_start_s": w("floor-node"),
    "read_warm_dd_wall_s": w("floor-dd-warm"),
    "read_warm_dd_cpu_s": round(cpu("floor-dd-warm"), 3),
    "decode_only_cpu_s": decode_cpu,
    "jpeg_files": dec.get("jpeg_files"), "jpeg_bytes": dec.get("jpeg_bytes"), "libjpeg_turbo_failed": dec.get("libjpeg_failed"),
    "warm_floor_s": round(floor_s, 3),
    "warm_floor_over_foremost_q": round(floor_s / w("foremost-q"), 3),
    "warm_after_over_floor": round(w("warm-after") / floor_s, 3),
    "formula": "node start + (CPU of a warm dd read of the image + decode-only CPU of this build) / 2 cores",
}
json.dump({
    # Machine paths stay out of the result: the roots are named by their commit, the image by its name.
    "command": f"bash bench/carve-speed.sh BEFORE AFTER {os.path.basename(img)} {rounds} {cold_rounds} OUT",
    "before": commit_of(before),
    "after": commit_of(after),
    "floors": floors,
    "carve": "node ROOT/dist/cli/bin/carve.js IMG -o OUT --scope all --quiet (OUT on tmpfs)",
    "foremost": "foremost -q -t jpg -i IMG -o OUT (OUT on tmpfs)",
    "date": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%MZ"),
    "load_average_after": open("/proc/loadavg").read().split()[:3],
    "medians": med,
    "ratios": ratios,
    "runs": runs,
}, open(out, "w"), indent=1)
print(json.dumps({"medians": med, "ratios": ratios, "floors": floors}, indent=1))
EOF
