#!/usr/bin/env bash
# Installs the Debian packages the tests drive (peer tools, filesystem tools)
# when they are missing and we are root. Without root, it lists what is
# missing; the tests that need a tool then fail and say which.
set -uo pipefail

need=()
check() { command -v "$1" >/dev/null 2>&1 || need+=("$2"); }
check losetup util-linux
check mkfs.ext4 e2fsprogs
check fallocate util-linux
check qemu-img qemu-utils
check sfdisk fdisk
# The RBD suites' throwaway cluster (test/ceph/cluster.sh) and the runtime
# libraries the addon dlopens (ceph-common pulls librbd1 and librados2 in).
check ceph-mon ceph-mon
check ceph-osd ceph-osd
check ceph ceph-common
check rbd ceph-common
check monmaptool ceph-base
lib() { ldconfig -p 2>/dev/null | grep -q "$1" || need+=("$2"); }
lib 'librbd\.so\.1 ' librbd1
lib 'librados\.so\.2 ' librados2
# qcow2's zlib clusters are inflated with libdeflate when it is there (zlib
# otherwise); the qcow2 suite reads through both.
lib 'libdeflate\.so\.0 ' libdeflate0
check cjpeg libjpeg-turbo-progs
check djpeg libjpeg-turbo-progs
check mcopy mtools
check mkfs.vfat dosfstools
# undelete's exFAT and GPT cards.
check mkfs.exfat exfatprogs
check mount.exfat-fuse exfat-fuse
check sgdisk gdisk
check debugfs e2fsprogs
check zerofree zerofree
# exFAT volumes for the exFAT reader's tests: formatted, then written and
# deleted through exfat-fuse (native/tests/test_exfat.cc).
check mkfs.exfat exfatprogs
check mount.exfat-fuse exfat-fuse
# The migrate suites: this host's libvirt (test/libvirt/host.sh starts the
# daemons when they do not run), TCG guests, QEMU's RBD block driver (a
# module file of qemu-block-extra) and the XML validators. Installed without
# recommends: those would upgrade systemd.
check virsh libvirt-clients
check libvirtd libvirt-daemon-system
check virtlogd libvirt-daemon-system
check qemu-system-x86_64 qemu-system-x86
check virt-xml-validate libvirt-clients
check xmllint libxml2-utils
compgen -G '/usr/lib/*/qemu/block-rbd.so' >/dev/null || need+=(qemu-block-extra)
# Without systemd the daemons are started by their sysv scripts' binaries.
[ -d /run/systemd/system ] || [ -e /etc/init.d/libvirtd ] || need+=(libvirt-daemon-system-sysv)
# The gallery tests open the carve gallery in headless Chromium (playwright-core).
check chromium chromium

[ ${#need[@]} -eq 0 ] && exit 0
mapfile -t pkgs < <(printf '%s\n' "${need[@]}" | sort -u)
if [ "$(id -u)" -ne 0 ]; then
  echo "test setup: missing tools from Debian packages: ${pkgs[*]} (run as root to install them)" >&2
  exit 0
fi
echo "test setup: installing ${pkgs[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null && apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
