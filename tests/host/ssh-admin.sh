#!/usr/bin/env bash
# Give a test host what a freshly flashed Pi has for SSH: a user "admin" in
# group sudo, with sudo without a password (as Raspberry Pi OS sets up its
# first user) and the key pair DIR/id_ed25519 (made when missing) authorized.
# Then, from this machine: the host's key goes into DIR/known_hosts under the
# host's NAME (connect with -o HostKeyAlias=NAME, so a new address after a
# restart needs no new entry) and its address into DIR/address.
#
# Usage: tests/host/ssh-admin.sh NAME DIR     -> prints the address
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
name=${1:?usage: ssh-admin.sh NAME DIR}
dir=${2:?usage: ssh-admin.sh NAME DIR}
install -d -m 0700 "$dir"
[ -f "$dir/id_ed25519" ] || ssh-keygen -q -t ed25519 -N "" -C "admin@$name" -f "$dir/id_ed25519"
podman exec -i "$name" sh -euc '
  id admin >/dev/null 2>&1 || useradd --create-home --shell /bin/bash --groups sudo admin
  echo "admin ALL=(ALL) NOPASSWD: ALL" >/etc/sudoers.d/010-admin-nopasswd
  chmod 0440 /etc/sudoers.d/010-admin-nopasswd
  install -d -m 0700 -o admin -g admin /home/admin/.ssh
  key=$(cat)
  grep -qxF "$key" /home/admin/.ssh/authorized_keys 2>/dev/null || echo "$key" >>/home/admin/.ssh/authorized_keys
  chown admin:admin /home/admin/.ssh/authorized_keys
  chmod 0600 /home/admin/.ssh/authorized_keys
' <"$dir/id_ed25519.pub"
address=$(podman inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$name")
for _ in $(seq 1 30); do
  keys=$(ssh-keyscan -T 5 -t ed25519 "$address" 2>/dev/null || true)
  [ -n "$keys" ] && break
  sleep 1
done
[ -n "$keys" ] || { echo "no SSH host key from $name ($address)" >&2; exit 1; }
printf '%s %s\n' "$name" "${keys#* }" >"$dir/known_hosts"   # "ADDRESS TYPE KEY" -> "NAME TYPE KEY"
printf '%s' "$address" >"$dir/address"
echo "$address"
