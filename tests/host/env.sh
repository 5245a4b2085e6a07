# Sourced by the harness scripts: make the host's podman 4.3 use runc, which
# supports the host's cgroup v1 "hybrid" hierarchy (crun does not).
export CONTAINERS_CONF="${CONTAINERS_CONF:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/containers.conf}"
