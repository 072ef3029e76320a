#!/usr/bin/env bash
# cluster.sh start DIR | stop DIR
#
# A throwaway single-node Ceph cluster for blocksmith's RBD tests and
# benchmarks: one mon, OSDS OSDs (default 1; bluestore on a sparse file each,
# or memstore with STORE=memstore), cephx on, 127.0.0.1 only, pool "rbd"
# initialised for RBD with min(3, OSDS) replicas (the OSDs are the failure
# domain: they all live on this host).
# `start` prints the path of its ceph.conf as the last line of stdout.
# Daemons are stopped by the pid files under DIR/run, checked against DIR's
# ceph.conf in their command line, never by name.
set -euo pipefail
export LC_ALL=C

cmd=${1:?usage: cluster.sh start|stop DIR}
DIR=${2:?usage: cluster.sh start|stop DIR}
STORE=${STORE:-bluestore}
OSD_BYTES=${OSD_BYTES:-$((32 * 1024 * 1024 * 1024))}
POOL=${POOL:-rbd}
WAIT=${WAIT:-120}
OSDS=${OSDS:-1}
# Each OSD aims at this much memory (1 GiB: modest, the machine is shared;
# three OSDs stay near 3 GiB).
OSD_MEMORY=${OSD_MEMORY:-1073741824}

fail() { echo "cluster.sh: $*" >&2; exit 1; }

ours() { tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$DIR/ceph.conf"; }

stop_daemons() {
  local pattern=$1 f pid i
  local pids=()
  for f in "$DIR"/run/$pattern.pid; do
    [ -e "$f" ] || continue
    pid=$(tr -dc 0-9 < "$f")
    [ -n "$pid" ] && ours "$pid" && pids+=("$pid")
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for ((i = 0; i < 60; i++)); do
    local alive=0
    for pid in "${pids[@]}"; do ours "$pid" && alive=1; done
    [ $alive = 0 ] && return 0
    sleep 0.05
  done
  for pid in "${pids[@]}"; do ours "$pid" && kill -KILL "$pid" 2>/dev/null; done
  return 0
}

if [ "$cmd" = stop ]; then
  [ -d "$DIR" ] || exit 0
  DIR=$(cd "$DIR" && pwd)
  stop_daemons 'osd.*'   # OSDs first, while the mon can still hear them leave
  stop_daemons '*'
  rm -rf "$DIR"
  exit 0
fi
[ "$cmd" = start ] || fail "unknown command $cmd"
[[ "$OSDS" =~ ^[1-9][0-9]?$ ]] || fail "OSDS must be a number from 1 to 99, got '$OSDS'"
REPLICAS=$(( OSDS < 3 ? OSDS : 3 ))

# Packages (CI runs as root on a fresh Debian machine).
missing=()
for tool in ceph-mon:ceph-mon ceph-osd:ceph-osd ceph:ceph-common rbd:ceph-common monmaptool:ceph-base ceph-authtool:ceph-common; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || fail "Ceph is not installed (${missing[*]}) and we are not root to install it"
  export DEBIAN_FRONTEND=noninteractive
  pkgs=$(printf '%s\n' "${missing[@]}" | sort -u)
  apt-get install -y -qq --no-install-recommends $pkgs >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $pkgs >/dev/null; } ||
    fail "apt-get install $pkgs failed"
fi

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
[ -z "$(ls -A "$DIR")" ] || fail "$DIR is not empty"
if [ "$STORE" = bluestore ] && [ "$(stat -f -c %T "$DIR")" = tmpfs ]; then
  fail "$DIR is on tmpfs; bluestore needs O_DIRECT (use a disk directory or STORE=memstore)"
fi
mkdir -p "$DIR"/{mon,osd,run,log}
CONF=$DIR/ceph.conf
trap 'status=$?; if [ $status -ne 0 ]; then stop_daemons "*"; echo "cluster.sh: start failed; logs in $DIR/log" >&2; fi' EXIT

# Two free loopback ports for the monitor (msgr2, msgr1).
read -r P2 P1 < <(/usr/bin/python3 -c '
import socket
a = socket.socket(); a.bind(("127.0.0.1", 0))
b = socket.socket(); b.bind(("127.0.0.1", 0))
print(a.getsockname()[1], b.getsockname()[1])')
FSID=$(cat /proc/sys/kernel/random/uuid)

{
  echo "[global]"
  echo "fsid = $FSID"
  echo "mon host = [v2:127.0.0.1:$P2,v1:127.0.0.1:$P1]"
  echo "public addr = 127.0.0.1"
  echo "cluster addr = 127.0.0.1"
  echo "auth cluster required = cephx"
  echo "auth service required = cephx"
  echo "auth client required = cephx"
  echo "auth allow insecure global id reclaim = false"
  echo "run dir = $DIR/run"
  echo "crash dir = $DIR/run"
  echo "osd pool default size = $REPLICAS"
  echo "osd pool default min size = 1"
  echo "osd crush chooseleaf type = 0"
  echo "osd pool default pg autoscale mode = off"
  echo "mon allow pool size one = true"
  echo "mon allow pool delete = true"
  echo "mon warn on pool no redundancy = false"
  echo "mon data avail warn = 1"
  echo "mon data avail crit = 0"
  echo "paxos propose interval = 0.1"
  echo "log file = $DIR/log/\$name.log"
  echo "pid file = $DIR/run/\$name.pid"
  echo
  echo "[mon]"
  echo "mon data = $DIR/mon"
  echo "mon cluster log file = $DIR/log/cluster.log"
  echo
  echo "[osd]"
  echo "osd data = $DIR/osd/\$id"
  echo "keyring = $DIR/osd/\$id/keyring"
  echo "osd objectstore = $STORE"
  if [ "$STORE" = bluestore ]; then
    echo "bluestore block size = $OSD_BYTES"
    echo "bluestore block create = true"
    echo "bluestore block db create = false"
    echo "bluestore block wal create = false"
    echo "bluestore fsck on mkfs = false"
    echo "bluestore fsck on mount = false"
    echo "bdev aio poll ms = 10"
    echo "osd memory target = $OSD_MEMORY"
  else
    echo "memstore device bytes = $OSD_BYTES"
  fi
  echo
  echo "[client]"
  echo "keyring = $DIR/keyring"
} > "$CONF"

ceph-authtool --create-keyring "$DIR/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n client.admin \
  --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
ceph-authtool "$DIR/mon.keyring" --import-keyring "$DIR/keyring" >/dev/null

monmaptool --create --clobber --fsid "$FSID" --addv a "[v2:127.0.0.1:$P2,v1:127.0.0.1:$P1]" \
  --enable-all-features --set-min-mon-release pacific "$DIR/monmap" >/dev/null
ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/mon.keyring" >>"$DIR/log/setup.log" 2>&1 ||
  fail "ceph-mon --mkfs failed"
ceph-mon -c "$CONF" -i a >>"$DIR/log/setup.log" 2>&1 || fail "ceph-mon did not start"

for ((n = 0; n < OSDS; n++)); do
  OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
  OSD_KEY=$(ceph-authtool --gen-print-key)
  printf '{"cephx_secret": "%s"}\n' "$OSD_KEY" > "$DIR/osd/new.json"
  OSD_ID=$(timeout "$WAIT" ceph -c "$CONF" osd new "$OSD_UUID" -i "$DIR/osd/new.json" 2>>"$DIR/log/setup.log") ||
    fail "the monitor did not answer 'osd new'"
  mkdir -p "$DIR/osd/$OSD_ID"
  printf '[osd.%s]\n\tkey = %s\n' "$OSD_ID" "$OSD_KEY" > "$DIR/osd/$OSD_ID/keyring"
  ceph-osd -c "$CONF" -i "$OSD_ID" --mkfs --osd-uuid "$OSD_UUID" >>"$DIR/log/setup.log" 2>&1 ||
    fail "ceph-osd --mkfs failed (osd.$OSD_ID)"
  ceph-osd -c "$CONF" -i "$OSD_ID" >>"$DIR/log/setup.log" 2>&1 || fail "ceph-osd did not start (osd.$OSD_ID)"
done
rm -f "$DIR/osd/new.json"

timeout "$WAIT" ceph -c "$CONF" osd pool create "$POOL" 32 32 replicated >/dev/null 2>>"$DIR/log/setup.log" || fail "pool create failed"
timeout "$WAIT" rbd -c "$CONF" pool init "$POOL" 2>>"$DIR/log/setup.log" || fail "rbd pool init failed"
deadline=$(( $(date +%s) + WAIT ))
until timeout 10 rbd -c "$CONF" ls "$POOL" >/dev/null 2>&1; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "the cluster did not become usable within ${WAIT}s"
  sleep 0.2
done
echo "$CONF"
