"""Host A is converged, written to and backed up; then it is destroyed, and a
fresh host B (same name, same inventory, same backup disk) is converged.
Every file, owner and row of A's data must be on B.

The tests run in order and build on each other, as the story does.
"""
import json
import os
import subprocess
import time

from conftest import DISK, HOST, PROJECT, fetch, run_playbook

NOTES = "notes.dr.test"
GREETER = "greeter.dr.test"  # tls: internal
DOMAINS = ("blog.dr.test", NOTES, GREETER)
CA_CERT = "/etc/selfhost-pi/ca/ca.crt"
GREETER_CERT = "/etc/selfhost-pi/tls/%s/fullchain.pem" % GREETER
VOLUMES = "/home/%s/.local/share/containers/storage/volumes/%s/_data"
DATA_PATHS = ["/home/notes/dumps", VOLUMES % ("notes", "notes-data"), VOLUMES % ("notes", "notes-state"),
              VOLUMES % ("greeter", "greeter-data")]
LIVE_DB = ("notes.db", "notes.db-wal", "notes.db-shm", "notes.db-journal")
STAGED_DB = "/var/lib/selfhost-pi/backup/sqlite/notes" + VOLUMES % ("notes", "notes-data") + "/notes.db"

# Run on the host: every entry under the data paths with its owner, mode and
# (for files) SHA-256; the live database files are compared by their rows.
INVENTORY_SCRIPT = r"""
import hashlib, json, os, sys
out = {}
for top in sys.argv[1:]:
    if not os.path.lexists(top):
        out[top] = None
        continue
    for root, dirs, files in os.walk(top):
        for name in [""] + sorted(dirs) + sorted(files):
            path = os.path.join(root, name) if name else root
            if name in %r:
                continue
            st = os.lstat(path)
            entry = "%%d:%%d %%o" %% (st.st_uid, st.st_gid, st.st_mode)
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as handle:
                    entry += " " + hashlib.sha256(handle.read()).hexdigest()
            out[path] = entry
print(json.dumps(out, sort_keys=True))
""" % (LIVE_DB,)

WRITER = r"""
import os, urllib.request
n = errors = 0
while not os.path.exists("/tmp/stop-writer"):
    try:
        req = urllib.request.Request("http://127.0.0.1:9191/notes", data=b"written during the backup %d" % n)
        urllib.request.urlopen(req, timeout=10).read()
        n += 1
    except Exception:
        errors += 1
with open("/tmp/writer.out", "w") as handle:
    handle.write("%d %d\n" % (n, errors))
"""


def sh(node, command, *args):
    cmd = node.run(command, *args)
    assert cmd.rc == 0, "%s: rc=%d\n%s\n%s" % (command, cmd.rc, cmd.stdout, cmd.stderr)
    return cmd.stdout


def notes_rows(node):
    status, body = fetch(node, NOTES, "/notes")
    assert status == 200, body
    return json.loads(body)


def data_inventory(node):
    return json.loads(sh(node, "python3 -c %s " + " ".join(["%s"] * len(DATA_PATHS)), INVENTORY_SCRIPT, *DATA_PATHS))


# GET https://NAME/ on the host through nginx (the name resolved to 127.0.0.1), trusting only CA_CERT.
FETCH_HTTPS = r"""
import http.client, socket, ssl, sys
name, cafile = sys.argv[1], sys.argv[2]
context = ssl.create_default_context(cafile=cafile)
conn = http.client.HTTPSConnection(name, 443, context=context, timeout=10)
conn.sock = context.wrap_socket(socket.create_connection(("127.0.0.1", 443), timeout=10), server_hostname=name)
conn.request("GET", "/")
print(conn.getresponse().status)
"""


def answers(node, domain):
    """The site's status: over HTTPS, trusting only the host's CA, for the internal-TLS site; else over HTTP."""
    if domain != GREETER:
        return fetch(node, domain)[0]
    cmd = node.run("python3 -c %s %s %s", FETCH_HTTPS, GREETER, CA_CERT)
    return int(cmd.stdout) if cmd.rc == 0 and cmd.stdout.strip().isdigit() else 0


def fingerprint(node, path):
    return sh(node, "openssl x509 -noout -fingerprint -sha256 -in %s", path).strip()


def backup(node):
    cmd = node.run("systemctl start selfhost-backup.service")
    return cmd.rc


def recap_changed(output):
    line = [ln for ln in output.splitlines() if HOST in ln and "ok=" in ln][-1]
    return int(line.split("changed=")[1].split()[0])


def test_repository_initialized_and_timers_running(node):
    assert node.file("/mnt/backup/restic/config").exists
    for timer in ("selfhost-backup.timer", "selfhost-backup-check.timer"):
        assert node.service(timer).is_enabled and node.service(timer).is_running
    for path in ("/etc/selfhost-pi/restic/password", "/etc/selfhost-pi/restic/env", "/etc/selfhost-pi/backup.json"):
        assert node.file(path).user == "root" and node.file(path).mode == 0o600, path
    assert node.file("/etc/selfhost-pi/restic").mode == 0o700
    # No data and no snapshot yet: the first converge restored nothing, the services run.
    for domain in DOMAINS:
        assert answers(node, domain) == 200, domain


def test_wrong_password_or_unreachable_repository_changes_nothing(node):
    before = sh(node, "sha256sum /etc/selfhost-pi/restic/password /etc/selfhost-pi/restic/env")
    # services.yml runs the backup role first, as site.yml does after base, podman and nginx.
    wrong = run_playbook({"backup_password": "not-the-right-passphrase"}, playbook="playbooks/services.yml")
    assert wrong.returncode != 0
    assert "wrong password" in wrong.stdout, wrong.stdout[-3000:]
    assert "not-the-right-passphrase" not in wrong.stdout + wrong.stderr
    unreachable = run_playbook({"backup_repository": "rest:http://127.0.0.1:9/nowhere", "backup_repository_timeout": 10},
                               playbook="playbooks/services.yml")
    assert unreachable.returncode != 0
    assert "no answer within 10 s" in unreachable.stdout, unreachable.stdout[-3000:]
    assert sh(node, "sha256sum /etc/selfhost-pi/restic/password /etc/selfhost-pi/restic/env") == before
    assert "127.0.0.1:9" not in sh(node, "cat /etc/selfhost-pi/restic/env")


def test_write_data_through_the_service(node, record):
    # Files of 1 KiB .. 2 MiB, uploaded through nginx; then rows.
    upload = (
        "import hashlib, os, urllib.request\n"
        "for i in range(24):\n"
        "    data = os.urandom(1024 << (i % 12))\n"
        "    req = urllib.request.Request('http://127.0.0.1/files/upload-%02d.bin' % i, data=data, method='PUT',\n"
        "                                 headers={'Host': '" + NOTES + "'})\n"
        "    assert urllib.request.urlopen(req).read().decode().strip() == hashlib.sha256(data).hexdigest()\n"
        "for i in range(300):\n"
        "    req = urllib.request.Request('http://127.0.0.1/notes', data=b'note %d' % i, headers={'Host': '" + NOTES + "'})\n"
        "    urllib.request.urlopen(req).read()\n"
    )
    sh(node, "python3 -c %s", upload)
    assert len(notes_rows(node)) == 300


def test_backup_while_the_database_is_written(node, record):
    node.run("rm -f /tmp/stop-writer /tmp/writer.out")
    sh(node, "cat > /tmp/writer.py <<'EOF'\n%s\nEOF" % WRITER)
    sh(node, "systemd-run --unit selfhost-dr-writer python3 /tmp/writer.py")
    time.sleep(1)
    started = time.time()
    assert backup(node) == 0, sh(node, "journalctl -u selfhost-backup.service -n 40 --no-pager")
    record["backup_seconds"] = time.time() - started
    sh(node, "touch /tmp/stop-writer")
    for _ in range(50):
        if node.run("test -s /tmp/writer.out").rc == 0:
            break
        time.sleep(0.2)
    written, errors = map(int, sh(node, "cat /tmp/writer.out").split())
    print("\nwrites during the first backup: %d (failed: %d), backup took %.1f s"
          % (written, errors, record["backup_seconds"]))
    assert written > 0 and errors == 0
    # The snapshot's copy of the database is consistent: it opens, passes
    # integrity_check, and holds an unbroken prefix of the rows.
    sh(node, "rm -rf /tmp/r1 && selfhost-restic restore latest --tag service:notes --target /tmp/r1 --include %s",
       STAGED_DB)
    check = sh(node, "python3 -c %s %s", (
        "import sqlite3, sys\n"
        "db = sqlite3.connect(sys.argv[1])\n"
        "ids = [r[0] for r in db.execute('SELECT id FROM notes ORDER BY id')]\n"
        "print(db.execute('PRAGMA integrity_check').fetchone()[0], len(ids), ids == list(range(1, len(ids) + 1)))\n"),
        "/tmp/r1" + STAGED_DB).split()
    assert check[0] == "ok" and check[2] == "True", check
    assert int(check[1]) >= 300
    print("rows in that snapshot: %s of %d written by then" % (check[1], 300 + written))


def test_backup_failure_is_visible(node):
    sh(node, "mv /mnt/backup/restic /mnt/backup/restic.away")
    try:
        assert backup(node) != 0
        assert node.run("systemctl is-failed selfhost-backup.service").stdout.strip() == "failed"
        assert "FAILED" in sh(node, "journalctl -u selfhost-backup.service -n 60 --no-pager")
    finally:
        sh(node, "mv /mnt/backup/restic.away /mnt/backup/restic && systemctl reset-failed selfhost-backup.service")


def test_last_backup_of_host_a(node, record):
    assert backup(node) == 0
    record["rows"] = notes_rows(node)
    record["files"] = data_inventory(node)
    assert all(record["files"][path] is not None for path in DATA_PATHS), record["files"]
    dump = json.loads(sh(node, "cat /home/notes/dumps/notes.json"))  # the service's own dump, via pre_backup
    assert dump == record["rows"]
    snapshots = json.loads(sh(node, "selfhost-restic snapshots --json"))
    assert {tag for snap in snapshots for tag in snap["tags"]} >= {
        "service:notes", "service:greeter", "host-state:tls", "selfhost-pi"}
    record["ca"], record["greeter_cert"] = fingerprint(node, CA_CERT), fingerprint(node, GREETER_CERT)


def test_rebuild_on_a_fresh_host(node, record):
    # Destroy host A (its /home and /var/lib/containers go too); boot a fresh
    # host B with the same name and the same backup disk.
    env = dict(os.environ, CONTAINERS_CONF=os.path.join(PROJECT, "tests", "host", "containers.conf"))
    subprocess.run([os.path.join(PROJECT, "tests", "host", "start.sh"), HOST, "-v", "%s:/mnt/backup" % DISK],
                   check=True, env=env, capture_output=True, timeout=300)
    assert not node.file("/home/notes").exists and not node.exists("restic")
    started = time.time()
    result = run_playbook()
    converged = time.time() - started
    assert result.returncode == 0, result.stdout[-5000:]
    answering = {}
    while len(answering) < len(DOMAINS) and time.time() - started < converged + 120:
        for domain in DOMAINS:
            if domain not in answering and answers(node, domain) == 200:
                answering[domain] = time.time() - started
        time.sleep(0.2)
    assert len(answering) == len(DOMAINS), answering
    record["recovery_seconds"] = max(answering.values())
    print("\nrecovery time: %.1f s from the start of site.yml on the fresh host to all %d sites answering "
          "(the converge itself: %.1f s)" % (record["recovery_seconds"], len(DOMAINS), converged))


def test_no_data_lost(node, record):
    rows = notes_rows(node)
    files = data_inventory(node)
    lost_rows = [row for row in record["rows"] if row not in rows]
    lost_files = sorted(path for path, entry in record["files"].items() if files.get(path) != entry)
    print("\ndata lost: %d of %d files and directories (content, owner or mode), %d of %d rows"
          % (len(lost_files), len(record["files"]), len(lost_rows), len(record["rows"])))
    assert lost_files == [], [(p, record["files"][p], files.get(p)) for p in lost_files]
    assert rows == record["rows"]
    # Owned by the pinned UIDs, as on host A.
    assert node.file("/home/notes").uid == 2701 and node.file(VOLUMES % ("notes", "notes-data")).uid == 2701
    assert node.file(VOLUMES % ("greeter", "greeter-data")).uid == 2702
    volumes = node.run("runuser -u notes -- env XDG_RUNTIME_DIR=/run/user/2701 podman volume ls -q").stdout.split()
    assert sorted(volumes) == ["notes-data", "notes-state"]  # podman adopted the restored volumes


def test_the_ca_and_certificates_came_back(node, record):
    # Restored before the tls role ran: the same CA (devices that trust it keep trusting the host) and the
    # same certificate, not a new one; over HTTPS with that CA (the loop above) the site answered.
    assert fingerprint(node, CA_CERT) == record["ca"]
    assert fingerprint(node, GREETER_CERT) == record["greeter_cert"]
    key = node.file("/etc/selfhost-pi/ca/ca.key")
    assert (key.uid, key.gid, key.mode) == (0, 0, 0o600)


def test_a_host_with_data_is_never_overwritten(node):
    # A note written after the last backup.
    sh(node, "python3 -c %s", "import urllib.request; urllib.request.urlopen(urllib.request.Request("
       "'http://127.0.0.1:9191/notes', data=b'after the rebuild')).read()")
    result = run_playbook()
    assert result.returncode == 0, result.stdout[-3000:]
    assert recap_changed(result.stdout) == 0, result.stdout[-3000:]
    assert notes_rows(node)[-1][1] == "after the rebuild"
    check = run_playbook(check=True)  # --check --diff: the repository is read, nothing would change
    assert check.returncode == 0 and recap_changed(check.stdout) == 0, check.stdout[-3000:]


def test_restore_playbook_replaces_data_on_request(node, record):
    result = run_playbook({"backup_restore_services": "notes"}, playbook="playbooks/restore.yml")
    assert result.returncode == 0, result.stdout[-3000:]
    # systemctl start returns once the container runs; the app then needs a moment to listen
    # (as after the rebuild above): wait for it, bounded.
    deadline = time.time() + 60
    while fetch(node, NOTES, "/health")[0] != 200 and time.time() < deadline:
        time.sleep(0.5)
    assert notes_rows(node) == record["rows"]  # the note written after the backup is gone from the service
    aside = sh(node, "ls -d %s.replaced-*" % (VOLUMES % ("notes", "notes-data"))).split()
    assert len(aside) == 1  # ... and kept aside
    assert node.file(aside[0] + "/notes.db").exists
    assert sh(node, "systemctl --user -M notes@ is-active notes.service").strip() == "active"
