#!/usr/bin/env bash
# Build a tiny busybox image locally (no registry is reachable here).
#
# Usage: tests/images/build.sh NAME:TAG WEBROOT OUTDIR
# Writes OUTDIR/<name>.tar (`podman save` archive, for image_archive) and
# OUTDIR/<name>-rootfs.tar (a rootfs for `podman import`, as the benchmark's
# baseline wants). Needs Debian's busybox-static on the controller.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../host/env.sh"
ref=${1:?NAME:TAG}; webroot=${2:?WEBROOT}; out=${3:?OUTDIR}
base=$(basename "${ref%%:*}")
mkdir -p "$out"
stamp=$(cat "$0" /bin/busybox "$webroot"/* | sha256sum | cut -c1-16)
if [ -f "$out/$base.tar" ] && [ "$(cat "$out/$base.stamp" 2>/dev/null)" = "$stamp" ]; then
  exit 0
fi
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root/bin" "$root/srv/www" "$root/tmp" "$root/etc"
cp /bin/busybox "$root/bin/busybox"
for applet in sh httpd wget cat ls echo sleep; do ln -s busybox "$root/bin/$applet"; done
cp -r "$webroot"/. "$root/srv/www/"
echo 'root:x:0:0:root:/:/bin/sh' > "$root/etc/passwd"
echo 'root:x:0:' > "$root/etc/group"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$root" -cf "$out/$base-rootfs.tar" .
podman rmi -f "$ref" >/dev/null 2>&1 || true
podman import -q --change 'CMD ["/bin/httpd","-f","-p","8080","-h","/srv/www"]' "$out/$base-rootfs.tar" "$ref" >/dev/null
rm -f "$out/$base.tar"
podman save -q --format docker-archive -o "$out/$base.tar" "$ref" >/dev/null
echo "$stamp" > "$out/$base.stamp"
