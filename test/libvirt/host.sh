#!/usr/bin/env bash
# host.sh start DIR | stop DIR
#
# Makes sure this host's libvirt answers at qemu:///system for the migrate
# tests. When `virsh version` already answers and virtlogd runs (an init
# script, another run), nothing is started. Otherwise (a fresh CI machine
# without systemd) it starts whichever of virtlogd and libvirtd is not running,
# with -d, and records their pids in DIR/started; `stop` ends exactly those,
# by pid, checked against their command line, never by name, and never a
# daemon it did not start.
set -euo pipefail
export LC_ALL=C

cmd=${1:?usage: host.sh start|stop DIR}
DIR=${2:?usage: host.sh start|stop DIR}
WAIT=${WAIT:-60}
URI=qemu:///system

fail() { echo "host.sh: $*" >&2; exit 1; }
answers() { timeout 5 virsh -c "$URI" version >/dev/null 2>&1; }

if [ "$cmd" = stop ]; then
  [ -e "$DIR/started" ] || exit 0
  pids=()
  while read -r pid name; do
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] && pids+=("$pid")
  done < "$DIR/started"
  [ ${#pids[@]} -gt 0 ] || exit 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    alive=()
    for pid in "${pids[@]}"; do [ -e "/proc/$pid" ] && alive+=("$pid"); done
    [ ${#alive[@]} -eq 0 ] && exit 0
    sleep 0.1
  done
  kill -KILL "${alive[@]}" 2>/dev/null || true
  exit 0
fi
[ "$cmd" = start ] || fail "unknown command $cmd"
mkdir -p "$DIR"
for tool in virsh libvirtd virtlogd qemu-system-x86_64; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool is not installed (test/setup.sh installs libvirt as root)"
done
# /dev/kvm made by the kernel without udev is root:root 0600. libvirt probes
# QEMU's capabilities as root (KVM found) but checks them as the QEMU user
# (KVM not usable), finds them outdated and probes again on every define
# (measured: 56 s per `virsh define`). Debian's udev rule gives it group kvm,
# mode 0660; do the same when udev did not.
if [ "$(id -u)" = 0 ] && [ -c /dev/kvm ] && getent group kvm >/dev/null && [ "$(stat -c %G /dev/kvm)" = root ]; then
  chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
fi
# A daemon already running (its pid file locked) is left alone: a second one
# would fail on the lock.
running() {
  local pid
  [ -e "$1" ] || return 1
  pid=$(tr -dc 0-9 < "$1")
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}
# libvirtd answering is not enough: starting a domain also needs virtlogd
# (QEMU's console log goes through it), which may have died on its own.
answers && running /run/virtlogd.pid virtlogd && exit 0
[ "$(id -u)" = 0 ] || fail "libvirtd or virtlogd is not running at $URI and we are not root to start it"

: > "$DIR/started"
for d in virtlogd libvirtd; do
  running "/run/$d.pid" "$d" && continue
  "$d" -d >>"$DIR/start.log" 2>&1 || fail "$d -d failed: $(tail -2 "$DIR/start.log" | tr '\n' ' ')"
  running "/run/$d.pid" "$d" || fail "$d started but /run/$d.pid names no $d"
  echo "$(tr -dc 0-9 < "/run/$d.pid") $d" >> "$DIR/started"
done
for ((i = 0; i < WAIT * 10; i++)); do
  answers && exit 0
  sleep 0.1
done
fail "libvirtd does not answer at $URI within $WAIT s (log: /var/log/libvirt/libvirtd.log)"
