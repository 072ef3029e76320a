#!/usr/bin/env bash
# Seeds for fuzz_qcow2: small qcow2 images (512-byte clusters keep them a few
# KiB) in each variant qemu-img can make: v2, v3, zero clusters, compressed
# (zlib, zstd), extended L2, a backing file name. Needs qemu-img and qemu-io.
set -euo pipefail
out=$1
command -v qemu-img >/dev/null || { echo "seeds: qemu-img missing" >&2; exit 0; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mk() {  # name options size
  qemu-img create -q -f qcow2 -o "cluster_size=512,$2" "$tmp/$1" "$3"
  qemu-io -f qcow2 -c 'write -P 0xab 0 2k' -c 'write -z 4k 1k' -c 'write -P 0x11 9k 512' "$tmp/$1" >/dev/null
  cp "$tmp/$1" "$out/$1"
}
mk v3.qcow2 compat=1.1 16k
mk v2.qcow2 compat=0.10 16k
qemu-img create -q -f qcow2 -o cluster_size=16k,extended_l2=on "$tmp/ext.qcow2" 64k
qemu-io -f qcow2 -c 'write -P 0xab 0 1k' -c 'write -z 2k 512' -c 'write -P 0x22 20k 512' "$tmp/ext.qcow2" >/dev/null
cp "$tmp/ext.qcow2" "$out/"
qemu-img convert -c -f qcow2 -O qcow2 -o cluster_size=512 "$tmp/v3.qcow2" "$out/zlib.qcow2"
qemu-img convert -c -f qcow2 -O qcow2 -o cluster_size=512,compression_type=zstd "$tmp/v3.qcow2" "$out/zstd.qcow2" 2>/dev/null || true
qemu-img create -q -f qcow2 -o cluster_size=512 -b v3.qcow2 -F qcow2 "$tmp/top.qcow2" 
qemu-io -f qcow2 -c 'write -P 0xcd 1k 512' "$tmp/top.qcow2" >/dev/null
cp "$tmp/top.qcow2" "$out/"
# Containers for the probe table (the small ones qemu-img makes): sparse and
# descriptor-file VMDK, dynamic and fixed VHD (footer at the end), VDI.
qemu-img create -q -f vmdk "$out/c.vmdk" 1M
qemu-img create -q -f vmdk -o subformat=monolithicFlat "$tmp/flat.vmdk" 64k && cp "$tmp/flat.vmdk" "$out/desc.vmdk"
qemu-img create -q -f vpc "$out/c.vhd" 1M
qemu-img create -q -f vpc -o subformat=fixed "$tmp/fixed.vhd" 64k && tail -c 4096 "$tmp/fixed.vhd" > "$out/fixed-tail.vhd"
qemu-img create -q -f vdi "$out/c.vdi" 1M
ls -l "$out" >&2
