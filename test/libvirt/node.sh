#!/usr/bin/env bash
# node.sh start DIR | stop DIR
#
# A second libvirt "node" on this host, for migration tests: its own
# libvirtd and virtlogd in a private mount namespace (unshare -m) where
# /run/libvirt, /var/lib/libvirt, /etc/libvirt, /var/log/libvirt and
# /var/cache/libvirt are bind mounts of private copies under DIR, with its
# own host_uuid (libvirt refuses to migrate to the "same host"). The network
# namespace is shared, so it listens on qemu+tcp://127.0.0.1:PORT/system
# (auth none, loopback only). `start` prints that URI as the last line.
#
# Its daemons and QEMUs are exactly the processes in its mount namespace;
# `stop` destroys its domains, then signals those processes by pid (never by
# name) and removes DIR.
set -euo pipefail
export LC_ALL=C

cmd=${1:?usage: node.sh start|stop DIR}
DIR=${2:?usage: node.sh start|stop DIR}
WAIT=${WAIT:-60}

fail() { echo "node.sh: $*" >&2; exit 1; }

# Processes whose mount namespace is the node's (recorded at start).
ns_pids() {
  local ns=$1 p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$ns" ] && echo "${p#/proc/}"
  done
  return 0
}

# The daemons by their pid files, when the namespace was never recorded.
pidfile_pids() {
  local f pid
  for f in "$DIR"/virtlogd.pid "$DIR"/libvirtd.pid; do
    [ -e "$f" ] || continue
    pid=$(tr -dc 0-9 < "$f")
    [ -n "$pid" ] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$f" && echo "$pid"
  done
  return 0
}

stop_node() {
  local ns="" pids i alive
  [ -e "$DIR/uri" ] && timeout 20 virsh -c "$(cat "$DIR/uri")" list --name 2>/dev/null | while read -r dom; do
    [ -n "$dom" ] && timeout 20 virsh -c "$(cat "$DIR/uri")" destroy "$dom" >/dev/null 2>&1
  done || true
  [ -e "$DIR/ns" ] && ns=$(cat "$DIR/ns")
  # Never the caller's own namespace (a start that failed before unshare).
  [ "$ns" = "$(readlink /proc/self/ns/mnt)" ] && ns=""
  for ((i = 0; i < 60; i++)); do
    if [ -n "$ns" ]; then pids=$(ns_pids "$ns"); else pids=$(pidfile_pids); fi
    [ -z "$pids" ] && return 0
    # TERM first (libvirtd and virtlogd exit cleanly), KILL after 3 s.
    if [ $i -lt 30 ]; then kill -TERM $pids 2>/dev/null || true; else kill -KILL $pids 2>/dev/null || true; fi
    sleep 0.1
  done
  echo "node.sh: processes of the node still alive: $pids" >&2
  return 1
}

if [ "$cmd" = stop ]; then
  [ -d "$DIR" ] || exit 0
  DIR=$(cd "$DIR" && pwd)
  status=0
  stop_node || status=1
  rm -rf "$DIR"
  exit $status
fi
[ "$cmd" = start ] || fail "unknown command $cmd"
[ "$(id -u)" = 0 ] || fail "a second libvirtd needs root"
for tool in libvirtd virtlogd virsh unshare; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool is not installed"
done

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
[ -z "$(ls -A "$DIR")" ] || fail "$DIR is not empty"
trap 'status=$?; if [ $status -ne 0 ]; then stop_node || true; echo "node.sh: start failed; logs in $DIR/log" >&2; fi' EXIT

# Directory skeleton of SRC (owners and modes kept), without per-domain state.
skeleton() {
  local src=$1 dst=$2 d
  mkdir -p "$dst"
  chown --reference="$src" "$dst"
  chmod --reference="$src" "$dst"
  (cd "$src" && find . -mindepth 1 -maxdepth 3 -type d ! -name 'domain-*' -print0) | while IFS= read -r -d '' d; do
    mkdir -p "$dst/$d"
    chown --reference="$src/$d" "$dst/$d"
    chmod --reference="$src/$d" "$dst/$d"
  done
}

# /etc/libvirt: the host's configuration, but none of its domains, networks,
# storage pools or secrets (the node starts empty).
cp -a /etc/libvirt "$DIR/etc"
rm -f "$DIR"/etc/qemu/*.xml "$DIR"/etc/qemu/autostart/* "$DIR"/etc/qemu/networks/*.xml "$DIR"/etc/qemu/networks/autostart/*
rm -rf "$DIR"/etc/storage "$DIR"/etc/secrets/* "$DIR"/etc/qemu/checkpoint "$DIR"/etc/qemu/snapshot
skeleton /var/lib/libvirt "$DIR/lib"
skeleton /var/log/libvirt "$DIR/log"
skeleton /run/libvirt "$DIR/run"
# The QEMU capabilities cache is valid for the same binaries: saves the probe.
cp -a /var/cache/libvirt "$DIR/cache"

read -r PORT < <(/usr/bin/python3 -c '
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
HOST_UUID=$(cat /proc/sys/kernel/random/uuid)
conf=$DIR/etc/libvirtd.conf
sed -i -E '/^[[:space:]]*(listen_tls|listen_tcp|listen_addr|tcp_port|auth_tcp|host_uuid|host_uuid_source|log_outputs)[[:space:]]*=/d' "$conf"
{
  echo
  echo "# node.sh: a second node for tests"
  echo "listen_tls = 0"
  echo "listen_tcp = 1"
  echo "listen_addr = \"127.0.0.1\""
  echo "tcp_port = \"$PORT\""
  echo "auth_tcp = \"none\""
  echo "host_uuid = \"$HOST_UUID\""
  echo "log_filters = \"${LOG_FILTERS:-}\""
  echo "log_outputs = \"3:file:/var/log/libvirt/libvirtd.log\""
} >> "$conf"
# Both nodes share the cgroup tree, and a migrated domain keeps its name and
# often gets the same id on both (qemu-1-NAME): the node places its QEMUs in
# no cgroup, so the two never share one.
sed -i -E '/^[[:space:]]*cgroup_controllers[[:space:]]*=/,/\]/d' "$DIR/etc/qemu.conf"
printf '\n# node.sh: no cgroups (shared with the main node)\ncgroup_controllers = [ ]\n' >> "$DIR/etc/qemu.conf"

unshare -m --propagation private /bin/bash -euc '
  DIR=$1
  mount --bind "$DIR/etc" /etc/libvirt
  mount --bind "$DIR/lib" /var/lib/libvirt
  mount --bind "$DIR/log" /var/log/libvirt
  mount --bind "$DIR/cache" /var/cache/libvirt
  mount --bind "$DIR/run" /run/libvirt
  readlink /proc/self/ns/mnt > "$DIR/ns"
  virtlogd -d -p "$DIR/virtlogd.pid"
  libvirtd -d -l -p "$DIR/libvirtd.pid"
' node "$DIR" >>"$DIR/log/start.log" 2>&1 || fail "the node's daemons did not start: $(tail -3 "$DIR/log/start.log" | tr '\n' ' ')"

URI="qemu+tcp://127.0.0.1:$PORT/system"
echo "$URI" > "$DIR/uri"
for ((i = 0; i < WAIT * 10; i++)); do
  timeout 2 virsh -c "$URI" version >/dev/null 2>&1 && { echo "$URI"; exit 0; }
  sleep 0.1
done
fail "libvirtd of the node does not answer at $URI within $WAIT s: $(tail -3 "$DIR/log/libvirtd.log" 2>/dev/null | tr '\n' ' ')"
