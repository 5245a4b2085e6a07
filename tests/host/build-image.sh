#!/usr/bin/env bash
# Build (or reuse) the local "freshly flashed Debian 13" test host image.
#
# The image is a debootstrap minbase of Debian 13 "trixie" with only what a
# Raspberry Pi OS Lite image would bring (systemd, sudo, ssh, python3). The
# roles install everything else themselves. It is cached under a tag derived
# from this script's hash, so reruns cost nothing.
#
# Usage: tests/host/build-image.sh           -> prints the image reference
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"

tag=$(cat "$here/build-image.sh" "$here/harness.conf" | sha256sum | cut -c1-12)
image="localhost/selfhost-pi-trixie:$tag"
if podman image exists "$image"; then
  echo "$image"
  exit 0
fi

work=$(mktemp -d /var/tmp/selfhost-rootfs.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
echo "building $image (debootstrap trixie, about 2 minutes)" >&2
debootstrap --variant=minbase \
  --include=systemd,systemd-sysv,dbus,python3,sudo,openssh-server,iproute2,ca-certificates \
  trixie "$rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 \
  || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }

# Test-harness only: the outer container delegates no cgroup controllers, so
# rootless podman inside cannot set a pids limit. A real Pi needs none of this.
install -d "$rootfs/etc/containers/containers.conf.d"
install -m 0644 "$here/harness.conf" "$rootfs/etc/containers/containers.conf.d/50-test-harness.conf"
# Boot wrapper: systemd 257 refuses the host's cgroup v1 hierarchy, so give
# it a private cgroup2 mount. The container's /dev/net/tun copies this
# machine's mode (0600); udev makes it 0666 on a real host, and rootless
# pasta needs that.
cat >"$rootfs/usr/local/sbin/harness-init" <<'INIT'
#!/bin/sh
umount -R /sys/fs/cgroup 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup
chmod 0666 /dev/net/tun 2>/dev/null
exec /sbin/init
INIT
chmod 0755 "$rootfs/usr/local/sbin/harness-init"
# A real Pi reaches network-online.target through its network manager's
# wait-online service; this container's network is set up before boot, so a
# oneshot stands in for that. Rootless Quadlet services wait for the target
# (podman-user-wait-network-online.service) and would stall 90 s without it.
cat >"$rootfs/etc/systemd/system/harness-network-online.service" <<'UNIT'
[Unit]
Description=Test harness: the network is configured before boot
Before=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
ExecStart=/bin/true
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
UNIT
ln -s /etc/systemd/system/harness-network-online.service \
  "$rootfs/etc/systemd/system/multi-user.target.wants/harness-network-online.service"
# The HTTPS proxy's CA, so the host reaches PyPI like the controller does.
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/usr/local/share/ca-certificates/controller-bundle.crt" 2>/dev/null || true
# Keep the image small and the first boot quick.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
echo "selfhost-test" >"$rootfs/etc/hostname"

tar -C "$rootfs" -c . | podman import --change 'CMD ["/usr/local/sbin/harness-init"]' - "$image" >/dev/null
echo "$image"
