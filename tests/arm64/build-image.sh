#!/usr/bin/env bash
# Build (or reuse) the disk image of an emulated Debian 13 arm64 host: what a
# freshly flashed Raspberry Pi brings (systemd, sudo, ssh, python3, a first
# user "admin" with sudo and a key), booted by Debian's own arm64 kernel under
# qemu-system-aarch64 (tests/arm64/smoke.sh).
#
# debootstrap runs the arm64 maintainer scripts through qemu-user (binfmt),
# which is slow (tens of minutes on 2 cores), so the result is cached under
# CACHE/HASH/, HASH being this script's hash: a second run prints the
# directory and does nothing else. The directory holds
#   disk.img            raw ext4 root filesystem (never booted: runs use an overlay)
#   vmlinuz, initrd.img Debian's arm64 kernel and initramfs, for qemu -kernel/-initrd
#   id_ed25519[.pub]    the admin's key pair
#   ssh_host_ed25519_key.pub   the host's key, to check what ssh-keyscan collects
#   busybox             Debian 13's arm64 busybox-static, for the service's image
#
# Heavy packages the converge would install are pre-installed (podman and its
# helpers, nginx, hugo, git, ...): apt and dpkg under full-system emulation
# are the slowest part of a converge. The light ones (acl,
# unattended-upgrades, systemd-timesyncd) are left to the roles, so the
# converge still runs apt on arm64.
#
# Usage: tests/arm64/build-image.sh [CACHE]   -> prints CACHE/HASH
#        (CACHE defaults to $SELFHOST_ARM64_CACHE or /var/cache/selfhost-pi-arm64)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${1:-${SELFHOST_ARM64_CACHE:-/var/cache/selfhost-pi-arm64}}
hash=$(sha256sum "$here/build-image.sh" | cut -c1-16)
dir="$cache/$hash"
if [ -f "$dir/complete" ]; then
  echo "$dir"
  exit 0
fi

mirror=http://deb.debian.org/debian
# debootstrap's own resolver installs these (the x86 test host's set); with
# many more it fails ordering dependencies (libsystemd-shared), so the rest
# goes through apt in the chroot, in one run.
base_packages=systemd,systemd-sysv,dbus,python3,sudo,openssh-server,iproute2,ca-certificates
more_packages="linux-image-arm64 systemd-resolved libpam-systemd python3-apt busybox-static"
more_packages="$more_packages podman crun catatonit nginx hugo git passt uidmap nftables dbus-user-session"

for tool in debootstrap qemu-aarch64-static update-binfmts mkfs.ext4 ssh-keygen; do
  command -v "$tool" >/dev/null || { echo "build-image.sh: $tool is missing (make smoke-arm64 installs it)" >&2; exit 1; }
done
# arm64 binaries run through qemu-user: binfmt_misc must be mounted and the
# handler enabled (flags PF, as update-binfmts registers it: it works inside
# the chroot). binfmt_misc is one for the whole machine: a privileged
# container booting systemd (other test hosts on the same machine) runs
# systemd-binfmt, which removes every handler. A watchdog puts ours back
# within a tenth of a second; an emulated program started in that gap fails,
# so each stage below is retried.
binfmt=/proc/sys/fs/binfmt_misc
[ -e "$binfmt/register" ] || mount -t binfmt_misc binfmt_misc "$binfmt"
[ -e "$binfmt/qemu-aarch64" ] || update-binfmts --enable qemu-aarch64
interpreter=$(awk '/^interpreter/{print $2}' "$binfmt/qemu-aarch64")
handler=':qemu-aarch64:M::\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
handler+=':\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
handler+=":$interpreter:PF"
keep_binfmt() {
  while sleep 0.1; do
    if [ ! -e "$binfmt/qemu-aarch64" ]; then
      echo "$handler" >"$binfmt/register" 2>/dev/null \
        && printf '%s binfmt handler removed by someone else, registered again\n' "$(date -u +%H:%M:%S)" >&2
    fi
  done
}
keep_binfmt &
watchdog=$!

mkdir -p "$cache"
work=$(mktemp -d "$cache/build.XXXXXX")
cleanup() {
  kill "$watchdog" 2>/dev/null || true
  umount "$work/rootfs/proc" 2>/dev/null || true
  # Never into a file system still mounted in the chroot.
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
rootfs="$work/rootfs"
step() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

step "debootstrap trixie arm64 (emulated maintainer scripts: slow)"
for attempt in 1 2 3 4; do
  rm -rf --one-file-system "$rootfs"
  if debootstrap --arch=arm64 --variant=minbase --include="$base_packages" \
    trixie "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1; then
    break
  fi
  cat "$rootfs/debootstrap/debootstrap.log" >>"$work/debootstrap.log" 2>/dev/null || true
  umount "$rootfs/proc" "$rootfs/sys" 2>/dev/null || true
  cp "$work/debootstrap.log" "$cache/build-failed.log"
  grep -m3 'Exec format error' "$work/debootstrap.log" >&2 || true
  [ "$attempt" -lt 4 ] || { tail -n 40 "$work/debootstrap.log" >&2; exit 1; }
  step "debootstrap failed (attempt $attempt), again"
done

step "apt-get install (emulated): kernel, podman, nginx, hugo, ..."
# No service starts in the chroot.
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
mount -t proc proc "$rootfs/proc"
# shellcheck disable=SC2086 # one word per package
for attempt in 1 2 3 4 5; do
  # shellcheck disable=SC2086 # one word per package
  if chroot "$rootfs" sh -c "export DEBIAN_FRONTEND=noninteractive; dpkg --configure -a && apt-get update -qq \
      && apt-get install -y -q --no-install-recommends $more_packages" >>"$work/apt.log" 2>&1; then
    break
  fi
  cp "$work/apt.log" "$cache/build-failed.log"
  grep -m3 'Exec format error' "$work/apt.log" >&2 || true
  [ "$attempt" -lt 5 ] || { tail -n 40 "$work/apt.log" >&2; exit 1; }
  step "apt-get failed (attempt $attempt), again"
done
umount "$rootfs/proc"
rm -f "$rootfs/usr/sbin/policy-rc.d"

step "system configuration, admin user and keys"
echo selfhost-arm64 >"$rootfs/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 selfhost-arm64\n::1 localhost ip6-localhost ip6-loopback\n' >"$rootfs/etc/hosts"
printf '/dev/vda / ext4 defaults 0 1\n' >"$rootfs/etc/fstab"
cat >"$rootfs/etc/systemd/network/20-wired.network" <<'NET'
[Match]
Name=eth*

[Network]
DHCP=yes
NET
chroot "$rootfs" systemctl enable systemd-networkd.service systemd-resolved.service >/dev/null 2>&1
ln -sf ../run/systemd/resolve/stub-resolv.conf "$rootfs/etc/resolv.conf"
# What Raspberry Pi OS sets up for its first user: sudo without a password.
chroot "$rootfs" useradd --create-home --shell /bin/bash --groups sudo admin
echo "admin ALL=(ALL) NOPASSWD: ALL" >"$rootfs/etc/sudoers.d/010-admin-nopasswd"
chmod 0440 "$rootfs/etc/sudoers.d/010-admin-nopasswd"
ssh-keygen -q -t ed25519 -N "" -C admin@selfhost-arm64 -f "$work/id_ed25519"
install -d -m 0700 "$rootfs/home/admin/.ssh"
install -m 0600 "$work/id_ed25519.pub" "$rootfs/home/admin/.ssh/authorized_keys"
chroot "$rootfs" chown -R admin:admin /home/admin/.ssh
# The host's own key, made here (natively) so the smoke run can check what
# ssh-keyscan collects against it.
rm -f "$rootfs"/etc/ssh/ssh_host_*
ssh-keygen -q -t ed25519 -N "" -C root@selfhost-arm64 -f "$rootfs/etc/ssh/ssh_host_ed25519_key"
ssh-keygen -q -t rsa -b 3072 -N "" -C root@selfhost-arm64 -f "$rootfs/etc/ssh/ssh_host_rsa_key"
ssh-keygen -q -t ecdsa -N "" -C root@selfhost-arm64 -f "$rootfs/etc/ssh/ssh_host_ecdsa_key"
# Debian's nginx starts its default site at boot; a fresh Pi has no nginx at
# all, and the role enables what it needs.
chroot "$rootfs" systemctl disable nginx.service >/dev/null 2>&1 || true
# The HTTPS proxy's CA of these machines, as tests/host/build-image.sh does.
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/usr/local/share/ca-certificates/controller-bundle.crt" 2>/dev/null || true
# Like a flashed image some time after it was made: no package lists, and
# nothing that tells apt (or Ansible's cache_valid_time) they are fresh.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
rm -f "$rootfs/var/lib/apt/periodic/update-success-stamp"
touch -d @0 "$rootfs/var/lib/apt/lists"

step "kernel, initramfs and disk image"
mkdir -p "$work/out"
cp "$rootfs"/boot/vmlinuz-* "$work/out/vmlinuz"
cp "$rootfs"/boot/initrd.img-* "$work/out/initrd.img"
cp "$rootfs/bin/busybox" "$work/out/busybox"
cp "$rootfs/etc/ssh/ssh_host_ed25519_key.pub" "$work/out/"
install -m 0600 "$work/id_ed25519" "$work/out/id_ed25519"
install -m 0644 "$work/id_ed25519.pub" "$work/out/id_ed25519.pub"
mkfs.ext4 -q -F -L selfhost-root -d "$rootfs" "$work/out/disk.img" 10G
date -u +%FT%TZ >"$work/out/complete"
chmod 0700 "$work/out"
rm -rf "$dir"
mv "$work/out" "$dir"
step "cached in $dir"
echo "$dir"
