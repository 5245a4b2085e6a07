#!/usr/bin/env bash
# The Pi's architecture, end to end (`make smoke-arm64`; slow, not in `make test`):
# boot a Debian 13 arm64 host under full-system emulation
# (qemu-system-aarch64 -M virt, TCG, Debian's own arm64 kernel), converge
# playbooks/site.yml over SSH as the unprivileged admin with become and
# pipelining (tests/arm64/inventory), converge again (must report changed=0),
# then check on the guest that the blog and the service answer through nginx
# and that the service runs as its pinned UID. Prints the time of each step
# and exits non-zero on any failure.
#
# The disk image is cached by tests/arm64/build-image.sh (keyed by its hash);
# each run boots a fresh copy-on-write overlay of it, so every run converges a
# fresh host. The run's files (overlay, keys, known_hosts, console and Ansible
# logs) are in $SELFHOST_ARM64_RUN (default .build/arm64).
#
# Environment: SELFHOST_ARM64_CACHE (image cache, default /var/cache/selfhost-pi-arm64),
# SELFHOST_ARM64_PORT (SSH forward on 127.0.0.1, default 2299),
# SELFHOST_ARM64_KEEP=1 (leave the guest running at the end).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"
run=${SELFHOST_ARM64_RUN:-$repo/.build/arm64}
port=${SELFHOST_ARM64_PORT:-2299}
host=selfhost-arm64
playbook=${ANSIBLE_PLAYBOOK:-$repo/.venv/bin/ansible-playbook}
export SELFHOST_ARM64_RUN=$run
export ANSIBLE_CONFIG=${ANSIBLE_CONFIG:-$repo/ansible.cfg}
# Every module run is emulated: SSH and sudo answer in seconds, not tenths.
export ANSIBLE_TIMEOUT=${ANSIBLE_TIMEOUT:-120}
export ANSIBLE_FORCE_COLOR=0

steps=() times=() notes=()
failed=""
step_start=0
begin() { current=$1; step_start=$(date +%s); echo "== $1 ($(date -u +%H:%M:%S))"; }
end() {
  steps+=("$current"); times+=("$(($(date +%s) - step_start))"); notes+=("${1:-}")
  current=""
}
report() {
  local rc=$? i
  [ -n "${current:-}" ] && { steps+=("$current"); times+=("$(($(date +%s) - step_start))"); notes+=("FAILED"); failed=${failed:-$current}; }
  if [ "${SELFHOST_ARM64_KEEP:-0}" != 1 ] && [ -f "$run/qemu.pid" ]; then
    kill "$(cat "$run/qemu.pid")" 2>/dev/null || true
    rm -f "$run/qemu.pid"
  fi
  echo
  echo "make smoke-arm64: Debian 13 arm64 (qemu-system-aarch64 -M virt, TCG) over SSH"
  printf '| %-16s | %9s | %s\n' step "time" note
  printf '| %-16s | %9s | %s\n' ---------------- --------- ----
  for i in "${!steps[@]}"; do
    printf '| %-16s | %7d s | %s\n' "${steps[$i]}" "${times[$i]}" "${notes[$i]}"
  done
  if [ "$rc" -ne 0 ] || [ -n "$failed" ]; then
    echo "FAILED at: ${failed:-unknown} (logs in $run)"
    [ "$rc" -ne 0 ] || rc=1
  else
    echo "passed (logs in $run)"
  fi
  exit "$rc"
}
trap report EXIT
fail() { echo "smoke-arm64: $*" >&2; exit 1; }

# What the host running this needs: qemu for the guest, qemu-user and
# binfmt for the arm64 debootstrap.
missing=$(for p in qemu-system-arm qemu-utils qemu-user-static binfmt-support debootstrap openssh-client; do
  dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
  echo "installing Debian packages: $missing"
  # shellcheck disable=SC2086 # one word per package
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
[ -x "$playbook" ] || fail "$playbook is missing (make deps)"

ssh_guest() {
  ssh -n -i "$run/id_ed25519" -p "$port" -o BatchMode=yes -o ConnectTimeout=30 \
    -o UserKnownHostsFile="$run/known_hosts" -o StrictHostKeyChecking=yes -o HostKeyAlias="$host" \
    admin@127.0.0.1 "$@"
}
# Like ssh_guest, with the script on standard input.
ssh_guest_stdin() {
  ssh -i "$run/id_ed25519" -p "$port" -o BatchMode=yes -o ConnectTimeout=30 \
    -o UserKnownHostsFile="$run/known_hosts" -o StrictHostKeyChecking=yes -o HostKeyAlias="$host" \
    admin@127.0.0.1 "$@"
}

# A guest left by a previous run with SELFHOST_ARM64_KEEP=1.
if [ -f "$run/qemu.pid" ]; then
  kill "$(cat "$run/qemu.pid")" 2>/dev/null || true
  sleep 2
fi
rm -rf "$run"
install -d -m 0700 "$run"

begin "build image"
cache=${SELFHOST_ARM64_CACHE:-/var/cache/selfhost-pi-arm64}
hash=$(sha256sum "$here/build-image.sh" | cut -c1-16)
note="cached ($hash)"
[ -f "$cache/$hash/complete" ] || note="built ($hash)"
image_dir=$("$here/build-image.sh" "$cache")
"$here/service-image.sh" "$image_dir" "$run/selfhost-hello-arm64.tar"
install -m 0600 "$image_dir/id_ed25519" "$run/id_ed25519"
install -m 0644 "$image_dir/id_ed25519.pub" "$run/id_ed25519.pub"
end "$note"

begin "boot"
qemu-img create -q -f qcow2 -F raw -b "$image_dir/disk.img" "$run/disk.qcow2"
qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 4096 \
  -display none -monitor none -serial "file:$run/console.log" \
  -daemonize -pidfile "$run/qemu.pid" \
  -kernel "$image_dir/vmlinuz" -initrd "$image_dir/initrd.img" \
  -append "root=/dev/vda rw console=ttyAMA0 net.ifnames=0" \
  -drive "if=virtio,format=qcow2,file=$run/disk.qcow2" \
  -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:22" \
  -device virtio-net-pci,netdev=n0,romfile=
# Collect the host's key as a user would (ssh-keyscan), and check it is the
# one the image was built with before trusting it.
keys=""
for _ in $(seq 1 180); do
  kill -0 "$(cat "$run/qemu.pid")" 2>/dev/null || fail "qemu exited (console: $run/console.log)"
  keys=$(ssh-keyscan -T 10 -p "$port" -t ed25519 127.0.0.1 2>/dev/null || true)
  [ -n "$keys" ] && break
  sleep 10
done
[ -n "$keys" ] || fail "no SSH on 127.0.0.1:$port after 30 min (console: $run/console.log)"
scanned=$(awk '{print $2, $3}' <<<"$keys")
expected=$(awk '{print $1, $2}' "$image_dir/ssh_host_ed25519_key.pub")
[ "$scanned" = "$expected" ] || fail "the host key on 127.0.0.1:$port is not the image's ($scanned)"
printf '%s %s\n' "$host" "$scanned" >"$run/known_hosts"
state=$(ssh_guest systemctl is-system-running --wait || true)
arch=$(ssh_guest uname -m)
[ "$arch" = aarch64 ] || fail "the guest is $arch, not aarch64"
case "$state" in
  running) ;;
  degraded) ssh_guest systemctl --failed --no-legend || true ;;
  *) fail "systemctl is-system-running: $state" ;;
esac
end "$arch, systemd $state"

converge() {
  local log=$1 recap
  "$playbook" -i tests/arm64/inventory/hosts.yml playbooks/site.yml >"$log" 2>&1 || {
    tail -n 40 "$log" >&2; fail "site.yml failed (log: $log)"; }
  recap=$(grep -E "^$host +:" "$log" | tail -n 1)
  echo "$recap"
  sed -E 's/.*(changed=[0-9]+).*(failed=[0-9]+).*/\1 \2/' <<<"$recap"
}

begin "converge"
recap=$(converge "$run/converge-1.log")
echo "$recap"
end "$(tail -n 1 <<<"$recap")"

begin "second converge"
recap=$(converge "$run/converge-2.log")
echo "$recap"
result=$(tail -n 1 <<<"$recap")
[ "$result" = "changed=0 failed=0" ] || fail "the second converge is not a no-op: $result"
end "$result"

begin "checks"
# Through nginx on the guest, by host name (the blog's title, the service's page).
http_check() {
  # ssh hands the guest's shell one command line: quote the arguments for it.
  ssh_guest_stdin python3 - "$(printf '%q' "$1")" "$(printf '%q' "$2")" <<'PY'
import sys, time, urllib.error, urllib.request
host, expect = sys.argv[1], sys.argv[2]
for attempt in range(12):
    request = urllib.request.Request("http://127.0.0.1/", headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, body = response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read().decode(errors="replace")
    except OSError as error:
        status, body = 0, str(error)
    if status == 200 and expect in body:
        print(f"{host}: HTTP {status}, {expect!r} found")
        sys.exit(0)
    time.sleep(5)
print(f"{host}: HTTP {status}, {expect!r} not in {body[:300]!r}")
sys.exit(1)
PY
}
http_check blog.arm64.test "Notes from a small server" || failed=checks
http_check hello.arm64.test "Hello from an arm64 rootless Quadlet service" || failed=checks
# The service's httpd runs as the pinned UID (2101) on the host side.
# shellcheck disable=SC2016 # expanded by the guest's shell
uids=$(ssh_guest 'for d in /proc/[0-9]*; do [ "$(cat "$d/comm" 2>/dev/null)" = httpd ] && awk "/^Uid:/{print \$2}" "$d/status"; done | sort -u' || true)
echo "httpd runs as UID: ${uids:-none}"
[ "$uids" = 2101 ] || failed=checks
image_arch=$(ssh_guest "cd /tmp && sudo -n -u hello XDG_RUNTIME_DIR=/run/user/2101 podman image inspect -f '{{.Architecture}}' localhost/selfhost-hello-arm64:1" || true)
echo "the service's image: ${image_arch:-not found}"
[ "$image_arch" = arm64 ] || failed=checks
[ -z "$failed" ] || fail "a check failed"
end "blog 200, hello 200, httpd UID $uids, image $image_arch"
