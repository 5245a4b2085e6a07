#!/usr/bin/env bash
# No-op converge benchmark (make bench).
#
# Starts a fresh Debian 13 test host, converges an inventory of N rootless
# services with playbooks/site.yml twice; starts another fresh host and runs
# ../shared/bench/baseline.yml (ansible.builtin + containers.podman for the
# same N services) twice. Both use the same connection (podman exec) and the
# same ansible.cfg. Prints the four wall times and the ratio of the no-op runs.
# Prints figures only; it asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
. tests/host/env.sh
n=${BENCH_SERVICES:-10}
baseline=${BENCH_BASELINE:-$root/../shared/bench/baseline.yml}
out=$root/.build/bench
mkdir -p "$out"
tests/images/build.sh localhost/selfhost-hello:1 inventory/files/hello .build/images

# The inventory under test: N services shaped like the baseline's.
inv=$out/inventory
rm -rf "$inv" && mkdir -p "$inv/group_vars/selfhost"
cat >"$inv/hosts.yml" <<HOSTS
selfhost:
  hosts:
    bench-ours:
      ansible_connection: containers.podman.podman
HOSTS
{
  echo "service_specs:"
  for i in $(seq 0 $((n - 1))); do
    cat <<SPEC
  - name: svc$i
    uid: $((3000 + i))
    image: localhost/selfhost-hello:1
    image_archive: $root/.build/images/selfhost-hello.tar
    exec: /bin/httpd -f -p 8080 -h /srv/www
    publish_ports: ["127.0.0.1:$((18000 + i)):8080"]
SPEC
  done
} >"$inv/group_vars/selfhost/main.yml"

timed() { # label logfile command...
  local label=$1 log=$2; shift 2
  local start end
  start=$(date +%s.%N)
  if ! "$@" >"$log" 2>&1; then
    echo "$label failed; see $log" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
  end=$(date +%s.%N)
  python3 -c "print(f'{$end - $start:.1f}')"
}
recap() { grep -E '^(bench|localhost|[a-z0-9-]+) +:' "$1" | tail -n 1 | sed 's/  */ /g'; }

echo "starting fresh test hosts (bench-ours, bench-baseline)" >&2
tests/host/start.sh bench-ours >/dev/null
tests/host/start.sh bench-baseline >/dev/null
trap 'tests/host/stop.sh bench-ours; tests/host/stop.sh bench-baseline' EXIT

ours1=$(timed "site.yml first run" "$out/ours-1.log" ansible-playbook -i "$inv" playbooks/site.yml)
ours2=$(timed "site.yml second run" "$out/ours-2.log" ansible-playbook -i "$inv" playbooks/site.yml)
base1=$(timed "baseline first run" "$out/baseline-1.log" ansible-playbook -i bench-baseline, -c containers.podman.podman \
  "$baseline" -e n="$n" -e image_tar="$root/.build/images/selfhost-hello-rootfs.tar")
base2=$(timed "baseline second run" "$out/baseline-2.log" ansible-playbook -i bench-baseline, -c containers.podman.podman \
  "$baseline" -e n="$n" -e image_tar="$root/.build/images/selfhost-hello-rootfs.tar")

echo
echo "no-op converge benchmark: $n rootless services, connection containers.podman.podman"
printf '  %-34s %8s s   %s\n' "selfhost.pi site.yml, first run" "$ours1" "$(recap "$out/ours-1.log")"
printf '  %-34s %8s s   %s\n' "selfhost.pi site.yml, no-op run" "$ours2" "$(recap "$out/ours-2.log")"
printf '  %-34s %8s s   %s\n' "baseline.yml, first run" "$base1" "$(recap "$out/baseline-1.log")"
printf '  %-34s %8s s   %s\n' "baseline.yml, no-op run" "$base2" "$(recap "$out/baseline-2.log")"
python3 -c "print(f'  no-op ratio (ours / baseline): {$ours2 / $base2:.3f}  (target <= 0.2)')"
echo "  logs: $out/"
