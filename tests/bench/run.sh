#!/usr/bin/env bash
# Converge benchmark (make bench), over SSH as a user reaches a Pi.
#
# Two fresh Debian 13 test hosts, each with an SSH admin user (sudo, a key;
# tests/host/ssh-admin.sh), reached over SSH with become and pipelining, as
# inventory/hosts.yml tells a user:
#   bench-ours      playbooks/site.yml with N services (first converge, then
#                   a no-op converge, then one with drift_check off, which
#                   runs every role: printed, not a target), then with N30
#                   services (20 more: the converge that adds them, then a
#                   no-op converge);
#   bench-baseline  ../shared/bench/baseline.yml (ansible.builtin and
#                   containers.podman, one task per step per service) with N
#                   services, first converge and no-op converge.
# Prints every figure in one table and exits non-zero when a target is missed:
#   ours no-op at N <= 0.1 x the baseline's no-op at N (same run);
#   ours no-op grows by less than 0.1 s per added service from N to N30.
# BENCH_SERVICES (10) and BENCH_SERVICES_MORE (30) set N and N30;
# BENCH_BASELINE the baseline playbook.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
. tests/host/env.sh
n=${BENCH_SERVICES:-10}
n30=${BENCH_SERVICES_MORE:-30}
baseline=${BENCH_BASELINE:-$root/../shared/bench/baseline.yml}
out=$root/.build/bench
[ -f "$baseline" ] || { echo "no baseline playbook at $baseline (set BENCH_BASELINE)" >&2; exit 2; }
mkdir -p "$out"
# Ansible waits 10 s for SSH and for sudo's answer; a busy test machine can take longer.
export ANSIBLE_TIMEOUT=${ANSIBLE_TIMEOUT:-60}
tests/images/build.sh localhost/selfhost-hello:1 inventory/files/hello .build/images

# An inventory reaching HOST over SSH as admin; group_vars are added per run.
inventory() { # DIR HOST
  local dir=$1 host=$2 ssh=$out/ssh-$2
  rm -rf "$dir" && mkdir -p "$dir/group_vars/selfhost"
  cat >"$dir/hosts.yml" <<HOSTS
selfhost:
  hosts:
    $host:
      ansible_host: $(cat "$ssh/address")
      ansible_user: admin
      ansible_become: true
      ansible_ssh_private_key_file: $ssh/id_ed25519
      ansible_ssh_common_args: -o UserKnownHostsFile=$ssh/known_hosts -o StrictHostKeyChecking=yes -o HostKeyAlias=$host
HOSTS
}

# N services shaped like the baseline's, and the admin's key as a user declares it.
services() { # COUNT
  echo "base_ssh_authorized_keys: [\"$(cat "$out/ssh-bench-ours/id_ed25519.pub")\"]"
  echo "service_specs:"
  for i in $(seq 0 $(($1 - 1))); do
    cat <<SPEC
  - name: svc$i
    uid: $((3000 + i))
    image: localhost/selfhost-hello:1
    image_archive: $root/.build/images/selfhost-hello.tar
    exec: /bin/httpd -f -p 8080 -h /srv/www
    publish_ports: ["127.0.0.1:$((18000 + i)):8080"]
SPEC
  done
}

timed() { # LABEL LOGFILE COMMAND...
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
recap() { grep -E '^[a-z0-9-]+ +: ok=' "$1" | tail -n 1 | sed 's/  */ /g; s/^[^:]*: //'; }

echo "starting fresh test hosts (bench-ours, bench-baseline) with an SSH admin" >&2
trap 'tests/host/stop.sh bench-ours; tests/host/stop.sh bench-baseline' EXIT
for host in bench-ours bench-baseline; do
  tests/host/start.sh "$host" >/dev/null
  tests/host/ssh-admin.sh "$host" "$out/ssh-$host" >/dev/null
done

inventory "$out/ours" bench-ours
services "$n" >"$out/ours/group_vars/selfhost/main.yml"
ours1=$(timed "site.yml first run, $n services" "$out/ours-$n-1.log" ansible-playbook -i "$out/ours" playbooks/site.yml)
ours2=$(timed "site.yml no-op run, $n services" "$out/ours-$n-2.log" ansible-playbook -i "$out/ours" playbooks/site.yml)
# For comparison, not a target: the same no-op with the drift check off, every role's tasks run.
ours2full=$(timed "site.yml no-op run in full, $n services" "$out/ours-$n-2-full.log" \
  ansible-playbook -i "$out/ours" playbooks/site.yml -e drift_check=false)
services "$n30" >"$out/ours/group_vars/selfhost/main.yml"
ours3=$(timed "site.yml adding services up to $n30" "$out/ours-$n30-1.log" ansible-playbook -i "$out/ours" playbooks/site.yml)
ours4=$(timed "site.yml no-op run, $n30 services" "$out/ours-$n30-2.log" ansible-playbook -i "$out/ours" playbooks/site.yml)

inventory "$out/baseline" bench-baseline
base_args=("$baseline" -e n="$n" -e image_tar="$root/.build/images/selfhost-hello-rootfs.tar")
base1=$(timed "baseline first run" "$out/baseline-$n-1.log" ansible-playbook -i "$out/baseline" "${base_args[@]}")
base2=$(timed "baseline no-op run" "$out/baseline-$n-2.log" ansible-playbook -i "$out/baseline" "${base_args[@]}")

echo
echo "converge benchmark over SSH (admin with sudo, pipelining), $(nproc) cores"
printf '  %-44s %8s   %s\n' "run" "wall" "recap"
printf '  %-44s %8s s   %s\n' \
  "site.yml, $n services, first converge" "$ours1" "$(recap "$out/ours-$n-1.log")" \
  "site.yml, $n services, no-op" "$ours2" "$(recap "$out/ours-$n-2.log")" \
  "site.yml, $n services, no-op, drift_check off" "$ours2full" "$(recap "$out/ours-$n-2-full.log")" \
  "site.yml, $n -> $n30 services, converge" "$ours3" "$(recap "$out/ours-$n30-1.log")" \
  "site.yml, $n30 services, no-op" "$ours4" "$(recap "$out/ours-$n30-2.log")" \
  "baseline.yml, $n services, first converge" "$base1" "$(recap "$out/baseline-$n-1.log")" \
  "baseline.yml, $n services, no-op" "$base2" "$(recap "$out/baseline-$n-2.log")"
status=0
python3 - "$ours2" "$base2" "$ours4" "$n" "$n30" <<'CHECK' || status=1
import sys
ours, base, ours30, n, n30 = (float(v) for v in sys.argv[1:])
ratio = ours / base
growth = (ours30 - ours) / (n30 - n)
checks = [
    ("no-op ratio at N=%d (ours / baseline)" % n, "%.3f" % ratio, "<= 0.1", ratio <= 0.1),
    ("no-op growth per service, N=%d -> %d" % (n, n30), "%.3f s" % growth, "< 0.1 s", growth < 0.1),
]
for label, value, target, ok in checks:
    print("  %-44s %8s   target %s: %s" % (label, value, target, "met" if ok else "MISSED"))
sys.exit(0 if all(ok for *_, ok in checks) else 1)
CHECK
echo "  logs: $out/"
exit $status
