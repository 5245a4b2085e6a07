#!/usr/bin/env bash
# Build a small Python 3.13 image locally (no registry is reachable here): the
# interpreter, its standard library and the shared libraries they load, taken
# from the Debian 13 test-host image, plus busybox (sh, wget) and one app.
#
# Usage: tests/images/build-python.sh NAME:TAG APPDIR OUTDIR
# Runs APPDIR/<name>.py (name from NAME), or `python3 -m <name>` when there is
# no such file. With APPDIR/requirements.txt, those packages (wheels only,
# for the image's Python 3.13 and this machine's architecture) are installed
# from PyPI with this machine's pip (the venv's) into the image's
# /usr/local/lib/python3.13/dist-packages. Writes OUTDIR/<name>.tar (`podman
# save` archive, for image_archive).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../host/env.sh"
ref=${1:?NAME:TAG}; app=${2:?APPDIR}; out=${3:?OUTDIR}
base=$(basename "${ref%%:*}")
host_image=$("$here/../host/build-image.sh")
mkdir -p "$out"
stamp=$( (cat "$0" /bin/busybox "$app"/*; echo "$host_image") | sha256sum | cut -c1-16)
if [ -f "$out/$base.tar" ] && [ "$(cat "$out/$base.stamp" 2>/dev/null)" = "$stamp" ]; then
  exit 0
fi
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root/bin" "$root/app" "$root/tmp" "$root/etc" "$root/data" "$root/state"
# Inside the test-host image: the interpreter, the stdlib without tests and
# tools, and every library that the interpreter or a stdlib extension needs.
podman run --rm --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --entrypoint /bin/sh "$host_image" -c '
  set -e
  libs=$( { ldd /usr/bin/python3.13; for so in /usr/lib/python3.13/lib-dynload/*.so; do ldd "$so"; done; } \
    | awk "/=> \\//{print \$3} /^\t\/lib64/{print \$1}" | sort -u | sed "s,^/lib,/usr/lib,")
  tar -c -h --exclude=/usr/lib/python3.13/test --exclude=/usr/lib/python3.13/idlelib \
    --exclude=/usr/lib/python3.13/tkinter --exclude=/usr/lib/python3.13/turtledemo \
    --exclude=/usr/lib/python3.13/ensurepip --exclude=/usr/lib/python3.13/pydoc_data \
    /usr/bin/python3.13 /usr/lib/python3.13 $libs 2>/dev/null' | tar -C "$root" -x
ln -s usr/lib "$root/lib"; ln -s usr/lib64 "$root/lib64"
ln -s python3.13 "$root/usr/bin/python3"
cp /bin/busybox "$root/bin/busybox"
for applet in sh wget cat ls sleep; do ln -s busybox "$root/bin/$applet"; done
cp "$app"/*.py "$root/app/" 2>/dev/null || true
for data in "$app"/*.csv; do [ -e "$data" ] && cp "$data" "$root/app/"; done
if [ -f "$app/requirements.txt" ]; then
  pip=${PIP:-$(command -v pip || true)}
  [ -n "$pip" ] || { echo "build-python.sh: pip is needed for $app/requirements.txt" >&2; exit 1; }
  "$pip" install -q --disable-pip-version-check --no-compile --target "$root/usr/local/lib/python3.13/dist-packages" \
    --python-version 3.13 --implementation cp --abi cp313 --only-binary=:all: \
    --platform "manylinux_2_17_$(uname -m)" --platform "manylinux2014_$(uname -m)" \
    -r "$app/requirements.txt"
  rm -rf "$root/usr/local/lib/python3.13/dist-packages/bin"
fi
cmd="[\"/usr/bin/python3\",\"/app/$base.py\"]"
[ -f "$app/$base.py" ] || cmd="[\"/usr/bin/python3\",\"-m\",\"$base\"]"
echo 'root:x:0:0:root:/:/bin/sh' > "$root/etc/passwd"
echo 'root:x:0:' > "$root/etc/group"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$root" -cf "$work/rootfs.tar" .
podman rmi -f "$ref" >/dev/null 2>&1 || true
podman import -q --change "CMD $cmd" \
  --change 'ENV PATH=/usr/bin:/bin' "$work/rootfs.tar" "$ref" >/dev/null
rm -f "$out/$base.tar"
podman save -q --format docker-archive -o "$out/$base.tar" "$ref" >/dev/null
echo "$stamp" > "$out/$base.stamp"
