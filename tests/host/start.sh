#!/usr/bin/env bash
# Start a fresh, systemd-booted Debian 13 test host as a podman container.
#
# Usage: tests/host/start.sh NAME [PODMAN-RUN-OPTIONS...]
#   (replaces any host of that name, with its volumes; the options are added
#   to `podman run`, e.g. -v disk:/mnt/backup)
# Prints NAME once systemd has finished booting. Reach it with
#   ansible -c containers.podman.podman -i NAME, ...
# and remove it with tests/host/stop.sh NAME.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
name=${1:?usage: start.sh NAME [PODMAN-RUN-OPTIONS...]}
shift
image=$("$here/build-image.sh")
net=selfhost-test
# The inner podman's bridge uses 10.88.0.0/16; keep the outer one elsewhere.
podman network exists "$net" || podman network create --subnet 10.123.0.0/24 "$net" >/dev/null
"$here/stop.sh" "$name" >/dev/null 2>&1 || true
podman run -d --name "$name" --hostname "$name" --network "$net" \
  --privileged --systemd=false --cgroupns=private \
  --tmpfs /run --tmpfs /tmp --stop-signal=SIGRTMIN+3 \
  --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
  -v "$name-containers:/var/lib/containers" -v "$name-home:/home" "$@" \
  "$image" /usr/local/sbin/harness-init >/dev/null
for _ in $(seq 1 60); do
  state=$(podman exec "$name" systemctl is-system-running 2>/dev/null || true)
  case "$state" in running|degraded) echo "$name"; exit 0 ;; esac
  sleep 1
done
echo "test host $name did not finish booting (state: ${state:-unknown})" >&2
exit 1
