#!/usr/bin/env bash
# Makes the small bootable guest the real-guest test boots (direct kernel
# boot, no network needed): Debian's cloud kernel, unpacked from its
# package, and a busybox initramfs whose init prints a marker on the serial
# console and stays up. Output, once per cache:
#   $NOVALOG_CACHE/guest/vmlinuz      the kernel
#   $NOVALOG_CACHE/guest/initrd.img   the initramfs (gzip'd newc cpio)
#   $NOVALOG_CACHE/guest/root.qcow2   a blank 64 MiB root disk image
# Needs apt-get (to download the kernel package), busybox-static, cpio,
# gzip and qemu-img. Prints the guest directory.
set -euo pipefail
NOVALOG_CACHE=${NOVALOG_CACHE:-$HOME/.cache/novalog}
out="$NOVALOG_CACHE/guest"
mkdir -p "$out"
cd "$out"
if [ -s vmlinuz ] && [ -s initrd.img ] && [ -s root.qcow2 ]; then
  echo "$out"
  exit 0
fi
work=$(mktemp -d "$out/build.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [ ! -s vmlinuz ]; then
  pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
  [ -n "$pkg" ] || { echo "guest-image: no linux-image-cloud-amd64 in apt's lists (apt-get update?)" >&2; exit 1; }
  (cd "$work" && apt-get download "$pkg" >/dev/null 2>&1)
  dpkg-deb -x "$work"/"$pkg"_*.deb "$work/kernel"
  cp "$work"/kernel/boot/vmlinuz-* "$work/vmlinuz"
  mv "$work/vmlinuz" vmlinuz
fi

if [ ! -s initrd.img ]; then
  bb=/bin/busybox
  [ -x "$bb" ] || { echo "guest-image: needs busybox-static (/bin/busybox)" >&2; exit 1; }
  root="$work/initramfs"
  mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp}
  cp "$bb" "$root/bin/busybox"
  for t in sh mount echo cat sleep poweroff reboot uname; do ln -s busybox "$root/bin/$t"; done
  cat >"$root/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "novalog-guest: up, kernel $(uname -r)" >/dev/console
# No init daemon: the guest ignores ACPI power-button presses, so a clean
# stop or a soft reboot falls back to a hard one after its timeout.
while true; do
  echo "novalog-guest: alive" >/dev/console
  sleep 5
done
INIT
  chmod +x "$root/init"
  (cd "$root" && find . | cpio -o -H newc --quiet | gzip -9) >"$work/initrd.img"
  mv "$work/initrd.img" initrd.img
fi

if [ ! -s root.qcow2 ]; then
  qemu-img create -q -f qcow2 "$work/root.qcow2" 64M
  mv "$work/root.qcow2" root.qcow2
fi
echo "$out"
