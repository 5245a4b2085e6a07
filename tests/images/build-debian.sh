#!/usr/bin/env bash
# Build a small image of programs from Debian 13 packages, locally (no
# registry is reachable here): the packages are installed in a throwaway
# container of the Debian 13 test-host image (plain-HTTP Debian mirror), and
# only the listed programs, the shared libraries they load and busybox (sh,
# wget) go into the image.
#
# Usage: tests/images/build-debian.sh NAME:TAG SPECDIR OUTDIR
# SPECDIR holds `packages` (Debian packages, one a line), `programs` (absolute
# paths of the programs to keep, one a line) and `cmd` (the image's CMD, a
# JSON list). Writes OUTDIR/<name>.tar (`podman save` archive, for
# image_archive). Cached: rebuilt only when this script, SPECDIR or the
# test-host image change.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../host/env.sh"
ref=${1:?NAME:TAG}; spec=${2:?SPECDIR}; out=${3:?OUTDIR}
base=$(basename "${ref%%:*}")
host_image=$("$here/../host/build-image.sh")
mkdir -p "$out"
stamp=$( (cat "$0" /bin/busybox "$spec"/*; echo "$host_image") | sha256sum | cut -c1-16)
if [ -f "$out/$base.tar" ] && [ "$(cat "$out/$base.stamp" 2>/dev/null)" = "$stamp" ]; then
  exit 0
fi
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/data"
packages=$(grep -v '^#' "$spec/packages" | xargs)
programs=$(grep -v '^#' "$spec/programs" | xargs)
podman run --rm --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --entrypoint /bin/sh "$host_image" -c "
  set -e
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages >/dev/null
  libs=\$(for p in $programs; do ldd \"\$p\"; done | awk '/=> \\//{print \$3} /^\t\\/lib64/{print \$1}' | sort -u \
    | sed 's,^/lib,/usr/lib,')
  tar -c -h $programs \$libs 2>/dev/null" | tar -C "$root" -x
ln -s usr/lib "$root/lib"; ln -s usr/lib64 "$root/lib64"
cp /bin/busybox "$root/bin/busybox"
for applet in sh wget cat ls sleep date; do ln -s busybox "$root/bin/$applet"; done
echo 'root:x:0:0:root:/:/bin/sh' > "$root/etc/passwd"
echo 'root:x:0:' > "$root/etc/group"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$root" -cf "$work/rootfs.tar" .
podman rmi -f "$ref" >/dev/null 2>&1 || true
podman import -q --change "CMD $(cat "$spec/cmd")" --change 'ENV PATH=/usr/bin:/bin' \
  --change 'WORKDIR /data' "$work/rootfs.tar" "$ref" >/dev/null
rm -f "$out/$base.tar"
podman save -q --format docker-archive -o "$out/$base.tar" "$ref" >/dev/null
echo "$stamp" > "$out/$base.stamp"
