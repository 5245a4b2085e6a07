#!/usr/bin/env bash
# The smoke service's image, for arm64: Debian 13's arm64 busybox-static
# (taken from the cached disk image's root filesystem by build-image.sh) and
# tests/arm64/www, imported with `podman import --arch arm64` and saved as a
# docker archive for the service's image_archive (no registry is reachable).
# Nothing in it runs on this x86_64 machine.
#
# Usage: tests/arm64/service-image.sh IMAGE_DIR OUT.tar
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/host/env.sh
. "$here/../host/env.sh"
image_dir=${1:?usage: service-image.sh IMAGE_DIR OUT.tar}
out=${2:?usage: service-image.sh IMAGE_DIR OUT.tar}
ref=localhost/selfhost-hello-arm64:1
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root/bin" "$root/srv/www" "$root/tmp" "$root/etc"
install -m 0755 "$image_dir/busybox" "$root/bin/busybox"
for applet in sh httpd wget cat ls echo sleep; do ln -s busybox "$root/bin/$applet"; done
cp -r "$here/www/." "$root/srv/www/"
echo 'root:x:0:0:root:/:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$root" -cf "$work/rootfs.tar" .
podman rmi -f "$ref" >/dev/null 2>&1 || true
podman import -q --arch arm64 --change 'CMD ["/bin/httpd","-f","-p","8080","-h","/srv/www"]' "$work/rootfs.tar" "$ref" >/dev/null
arch=$(podman image inspect -f '{{.Architecture}}' "$ref")
[ "$arch" = arm64 ] || { echo "service-image.sh: $ref is $arch, not arm64" >&2; exit 1; }
rm -f "$out"
podman save -q --format docker-archive -o "$out" "$ref" >/dev/null
podman rmi -f "$ref" >/dev/null
