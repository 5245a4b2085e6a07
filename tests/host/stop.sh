#!/usr/bin/env bash
# Remove a test host started by start.sh, with its volumes.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
name=${1:?usage: stop.sh NAME}
podman rm -f -t 5 "$name" >/dev/null 2>&1
podman volume rm -f "$name-containers" "$name-home" >/dev/null 2>&1
exit 0
