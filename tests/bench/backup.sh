#!/usr/bin/env bash
# Backup benchmark (make bench-backup).
#
# Starts a fresh Debian 13 test host with a "backup disk" (a podman volume),
# converges one service that declares a data directory with the backup role
# (restic, local repository on that disk), fills the directory with a
# generated data set, and times selfhost-backup.service three times:
#   first        the whole data set into an empty repository
#   incremental  after changing 2 % of the files and adding 16 new ones
#   unchanged    nothing changed since
# For each run it prints the wall time, the repository's size on disk and
# what restic says it added. Prints figures only; it asserts nothing.
#
# BENCH_DATA_MIB (default 1024) and BENCH_FILES (default 4096) size the data
# set: half the files are random bytes (photos, archives: incompressible),
# half are text (compressible, as exports and logs are).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
. tests/host/env.sh
mib=${BENCH_DATA_MIB:-1024}
files=${BENCH_FILES:-4096}
host=bench-backup
out=$root/.build/bench-backup
mkdir -p "$out"
tests/images/build.sh localhost/selfhost-hello:1 inventory/files/hello .build/images

inv=$out/inventory
rm -rf "$inv" && mkdir -p "$inv/group_vars/selfhost"
cat >"$inv/hosts.yml" <<HOSTS
selfhost:
  hosts:
    $host:
      ansible_connection: containers.podman.podman
HOSTS
cat >"$inv/group_vars/selfhost/main.yml" <<VARS
backup_repository: /mnt/backup/restic
backup_password: bench-only-passphrase
service_specs:
  - name: library
    uid: 3500
    image: localhost/selfhost-hello:1
    image_archive: $root/.build/images/selfhost-hello.tar
    exec: /bin/httpd -f -p 8080 -h /srv/www
    publish_ports: ["127.0.0.1:18500:8080"]
    volumes: ["%h/library:/srv/www/library:ro"]
    data:
      paths: [library]
VARS

echo "starting a fresh test host ($host) with a backup disk" >&2
podman volume rm -f "$host-disk" >/dev/null 2>&1 || true
tests/host/start.sh "$host" -v "$host-disk:/mnt/backup" >/dev/null
trap 'tests/host/stop.sh $host; podman volume rm -f $host-disk >/dev/null 2>&1 || true' EXIT
ansible-playbook -i "$inv/hosts.yml" playbooks/site.yml >"$out/converge.log" 2>&1 \
  || { tail -n 30 "$out/converge.log" >&2; exit 1; }

echo "generating $mib MiB in $files files" >&2
podman exec -i "$host" python3 - "$mib" "$files" <<'PY'
import os, random, sys
mib, files = int(sys.argv[1]), int(sys.argv[2])
size = mib * 1024 * 1024 // files
rng = random.Random(1)
words = [("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))).encode()
         for _ in range(2000)]
for i in range(files):
    d = "/home/library/library/%03d" % (i // 128)
    os.makedirs(d, exist_ok=True)
    if i % 2:
        data = os.urandom(size)
    else:
        chunk = b" ".join(rng.choice(words) for _ in range(4096)) + b"\n"
        data = (chunk * (size // len(chunk) + 1))[:size]
    with open("%s/file-%05d.%s" % (d, i, "bin" if i % 2 else "txt"), "wb") as f:
        f.write(data)
os.system("chown -R 3500:3500 /home/library/library")
PY

run_backup() { # label
  local start end
  podman exec "$host" sync
  start=$(date +%s.%N)
  podman exec "$host" systemctl start selfhost-backup.service
  end=$(date +%s.%N)
  local added repo
  added=$(podman exec "$host" journalctl -u selfhost-backup.service -o cat --since "@${start%.*}" \
    | sed -n 's/^Added to the repository: //p' | tail -n 1)
  repo=$(podman exec "$host" du -sm /mnt/backup/restic | cut -f1)
  printf '%-12s %8.1f s   repository %6s MiB   added: %s\n' "$1" "$(python3 -c "print($end - $start)")" "$repo" "${added:-?}"
}

data=$(podman exec "$host" du -sm /home/library/library | cut -f1)
echo
echo "data set: $data MiB in $files files (half random, half text); restic $(podman exec "$host" restic version | cut -d' ' -f2)"
run_backup first
podman exec -i "$host" python3 - "$files" <<'PY'
import os, sys, glob
paths = sorted(glob.glob("/home/library/library/*/file-*"))
for p in paths[:: 50]:                       # 2 % of the files: a few bytes change
    with open(p, "r+b") as f:
        f.seek(os.path.getsize(p) // 2)
        f.write(os.urandom(4096))
os.makedirs("/home/library/library/new", exist_ok=True)
for i in range(16):                          # and a few new ones
    with open("/home/library/library/new/new-%02d.bin" % i, "wb") as f:
        f.write(os.urandom(256 * 1024))
os.system("chown -R 3500:3500 /home/library/library")
PY
run_backup incremental
run_backup unchanged
