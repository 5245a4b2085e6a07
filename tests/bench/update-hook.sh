#!/usr/bin/env bash
# Push-to-deploy benchmark (make bench-updates). Not run by CI.
#
# Starts its own Debian 13 test host (bench-updates), prepares it like the
# molecule "updates" scenario (docker-registry on 127.0.0.1:5000, a bare
# blog repository) and converges playbooks/site.yml with that scenario's
# inventory. Then, on the host (tests/bench/update-probe.py):
#   - image hook path: seconds from the signed request to the new version
#     answering through nginx, the pull excluded (the new image's layers are
#     pulled beforehand, so podman auto-update only compares manifests), and
#     how many requests failed while probing every 20 ms during each update;
#   - blog hook path: seconds from the signed push request to the new commit served.
# Prints figures only; it asserts nothing. BENCH_ROUNDS (default 3); BENCH_KEEP=1 leaves the host running.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
. tests/host/env.sh
rounds=${BENCH_ROUNDS:-3}
host=bench-updates
out=$root/.build/bench-updates
rm -rf "$out" && mkdir -p "$out"
cat >"$out/hosts.yml" <<HOSTS
selfhost:
  hosts:
    $host:
      ansible_connection: containers.podman.podman
HOSTS
ln -s "$root/molecule/updates/inventory/group_vars" "$out/group_vars"
secret() { python3 -c "import yaml,sys; d=yaml.safe_load(open('$out/group_vars/selfhost/main.yml')); print($1)"; }
app_secret=$(secret "d['service_specs'][0]['update_webhook_secret']")
blog_secret=$(secret "d['blog_webhook_secret']")

echo "starting a fresh test host ($host)" >&2
tests/host/start.sh "$host" >/dev/null
[ -n "${BENCH_KEEP:-}" ] || trap 'tests/host/stop.sh "$host"' EXIT   # BENCH_KEEP=1 keeps the host
export MOLECULE_PROJECT_DIRECTORY=$root
echo "preparing and converging (a few minutes)" >&2
ansible-playbook -i "$out/hosts.yml" molecule/updates/prepare.yml >"$out/prepare.log" 2>&1 \
  || { tail -n 30 "$out/prepare.log" >&2; exit 1; }
ansible-playbook -i "$out/hosts.yml" playbooks/site.yml >"$out/converge.log" 2>&1 \
  || { tail -n 30 "$out/converge.log" >&2; exit 1; }

podman cp tests/bench/update-probe.py "$host:/usr/local/bin/update-probe"
# Open the window whatever the time (the runner reads it from this file), and
# put both good images' layers in the service user's store: the pull is excluded.
podman exec "$host" sh -ec '
  python3 -c "import json; p=\"/etc/selfhost-pi/updates/app.json\"; c=json.load(open(p)); c[\"window\"]={}; json.dump(c, open(p, \"w\"))"
  for v in v1 v2; do runuser -u app -- env XDG_RUNTIME_DIR=/run/user/2701 podman pull -q localhost:5000/selfhost-upd:$v >/dev/null; done'
echo "cores: $(nproc), host load: $(cut -d' ' -f1-3 /proc/loadavg)"
podman exec "$host" python3 /usr/local/bin/update-probe image "$rounds" "$app_secret"
podman exec "$host" python3 /usr/local/bin/update-probe blog "$rounds" "$blog_secret"
