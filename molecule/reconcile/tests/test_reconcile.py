"""Removing a service: gamma is taken out of service_specs and removed, with its
data kept, a last restic snapshot, its UID retired; a service that takes the
retired UID is refused before anything changes; gamma comes back with its data.

One converged host for all the tests; they run in order and build on each
other (the names sort in that order).
"""
import json

from conftest import declared, fetch, run_playbook

DOMAIN = "%s.reconcile.test"
VOLUME = "/home/gamma/.local/share/containers/storage/volumes/gamma-data/_data"
UNIT_DIR = "/home/gamma/.config/containers/systemd"
UNIT = UNIT_DIR + "/gamma.container"
HANDMADE_UNIT = UNIT_DIR + "/gamma-sidecar.container"  # named like gamma's units, but no header: a person's
SITE = "/etc/nginx/sites-available/gamma.conf"
SITE_LINK = "/etc/nginx/sites-enabled/gamma.conf"
HANDMADE_SITE = "/etc/nginx/sites-enabled/handmade.conf"
RECORD = "/var/lib/selfhost-pi/managed.json"
BACKUP_CONFIG = "/etc/selfhost-pi/backup.json"
LINGER = "/var/lib/systemd/linger/gamma"
PAYLOAD = b"gamma's own data, written before it was removed\n"

# Every file under the paths with its owner, mode and SHA-256.
CHECKSUMS = r"""
import hashlib, json, os, sys
out = {}
for top in sys.argv[1:]:
    for root, dirs, files in os.walk(top):
        for name in [""] + sorted(dirs) + sorted(files):
            path = os.path.join(root, name) if name else root
            st = os.lstat(path)
            entry = "%d:%d %o" % (st.st_uid, st.st_gid, st.st_mode)
            if os.path.isfile(path):
                with open(path, "rb") as handle:
                    entry += " " + hashlib.sha256(handle.read()).hexdigest()
            out[path] = entry
print(json.dumps(out, sort_keys=True))
"""

# An HTTP GET that reports a refused or closed connection instead of failing.
PROBE = (
    "import sys, urllib.request\n"
    "req = urllib.request.Request(sys.argv[1], headers={'Host': sys.argv[2]})\n"
    "try:\n"
    "    print(urllib.request.urlopen(req, timeout=10).status)\n"
    "except Exception as exc:\n"
    "    print('no answer: %s' % exc)\n"
)


def specs(without=(), extra=()):
    return [s for s in declared("reconcile")["service_specs"] if s["name"] not in without] + list(extra)


def checksums(node, *paths):
    cmd = node.run("python3 -c %s %s", CHECKSUMS, " ".join(paths))
    assert cmd.rc == 0, cmd.stderr
    return json.loads(cmd.stdout)


def sha(node, path):
    cmd = node.run("sha256sum %s", path)
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.split()[0]


def probe(node, url, host):
    return node.run("python3 -c %s %s %s", PROBE, url, host).stdout.strip()


def host_state(node):
    """What must not move when a run is refused or only checked."""
    paths = [RECORD, BACKUP_CONFIG, UNIT, SITE]
    return dict((p, sha(node, p) if node.file(p).exists else None) for p in paths)


def playbook_output(result):
    """stdout and stderr, with whitespace collapsed (Ansible wraps its warnings)."""
    return " ".join((result.stdout + result.stderr).split())


def test_1_three_services_answer_with_their_data(node, record):
    for name in ("alpha", "beta", "gamma"):
        status, body = fetch(node, DOMAIN % name)
        assert status == 200, (name, body)
    # gamma's own data in its volume, served by it; a person's files beside the managed ones.
    node.run_expect([0], "install -o 2803 -g 2803 -m 0644 /dev/stdin %s/payload.txt <<'EOF'\n%sEOF"
                    % (VOLUME, PAYLOAD.decode()))
    status, body = fetch(node, DOMAIN % "gamma", "/data/payload.txt")
    assert status == 200 and body.encode() == PAYLOAD
    node.run_expect([0], "install -o gamma -g gamma -m 0644 /dev/stdin %s <<'EOF'\n"
                    "[Container]\nImage=localhost/selfhost-hello:1\nEOF" % HANDMADE_UNIT)
    node.run_expect([0], "cat > %s <<'EOF'\nserver {\n    listen 80;\n    server_name handmade.reconcile.test;\n"
                    "    location / { return 200 \"by hand\\n\"; }\n}\nEOF\nnginx -t && systemctl reload nginx"
                    % HANDMADE_SITE)
    status, body = fetch(node, "handmade.reconcile.test")
    assert status == 200 and body == "by hand\n"
    recorded = json.loads(node.file(RECORD).content_string)
    assert sorted(recorded["services"]) == ["alpha", "beta", "gamma"]
    assert recorded["services"]["gamma"]["uid"] == 2803
    assert recorded["services"]["gamma"]["units"] == ["gamma.container"]
    assert node.file(RECORD).mode == 0o600 and node.file(RECORD).user == "root"
    record["data"] = checksums(node, VOLUME)
    assert VOLUME + "/payload.txt" in record["data"]


def test_2_check_diff_lists_the_removal_and_changes_nothing(node, record):
    before = host_state(node)
    result = run_playbook({"service_specs": specs(without=["gamma"])}, playbook="playbooks/services.yml", check=True)
    out = playbook_output(result)
    assert result.returncode == 0, out[-3000:]
    assert "%s (absent)" % UNIT in out
    assert "%s (absent)" % SITE in out
    assert "%s (absent)" % HANDMADE_UNIT not in out and "handmade.conf (absent)" not in out
    assert "gamma (UID 2803) is no longer declared and would be removed" in out
    assert "its data is kept in /home/gamma" in out
    assert "--final gamma" in out
    assert host_state(node) == before
    assert node.file(LINGER).exists
    status, body = fetch(node, DOMAIN % "gamma", "/data/payload.txt")
    assert status == 200 and body.encode() == PAYLOAD


def test_3_removed_service_is_gone_and_its_data_kept(node, record):
    result = run_playbook({"service_specs": specs(without=["gamma"])}, playbook="playbooks/services.yml")
    out = playbook_output(result)
    assert result.returncode == 0, out[-3000:]
    assert "gamma (UID 2803) is no longer declared and was removed" in out
    assert "its data is kept in /home/gamma" in out
    # It no longer answers, through nginx or on its port; its units and site are gone.
    assert probe(node, "http://127.0.0.1:9283/", "x").startswith("no answer")
    assert probe(node, "http://127.0.0.1/", DOMAIN % "gamma") != "200"
    assert not node.file(UNIT).exists
    assert not node.file(SITE).exists and not node.file(SITE_LINK).exists
    assert not node.file(LINGER).exists
    # What a person made stays; nginx serves the others.
    assert node.file(HANDMADE_UNIT).exists
    assert node.file(HANDMADE_SITE).exists
    assert fetch(node, "handmade.reconcile.test") == (200, "by hand\n")
    for name in ("alpha", "beta"):
        assert fetch(node, DOMAIN % name)[0] == 200
    # Its account and data are where they were, unchanged.
    assert node.user("gamma").uid == 2803
    assert checksums(node, VOLUME) == record["data"]
    # The record retires its UID.
    recorded = json.loads(node.file(RECORD).content_string)
    assert sorted(recorded["services"]) == ["alpha", "beta"]
    assert recorded["retired"]["gamma"]["uid"] == 2803
    # A last snapshot, in the real repository, holds its data.
    snaps = node.run("selfhost-restic snapshots --json --tag service:gamma,final")
    assert snaps.rc == 0, snaps.stderr
    snaps = json.loads(snaps.stdout)
    assert len(snaps) == 1 and "final" in snaps[0]["tags"]
    listing = node.run("selfhost-restic ls %s", snaps[0]["id"])
    assert listing.rc == 0, listing.stderr
    assert VOLUME + "/payload.txt" in listing.stdout.split()
    dumped = node.run("selfhost-restic dump %s %s/payload.txt", snaps[0]["id"], VOLUME)
    assert dumped.rc == 0 and dumped.stdout.encode() == PAYLOAD
    # Converging again without gamma changes nothing.
    again = run_playbook({"service_specs": specs(without=["gamma"])}, playbook="playbooks/services.yml")
    assert again.returncode == 0
    assert "changed=0" in again.stdout, again.stdout[-3000:]
    assert "no longer declared" not in playbook_output(again)


def test_4_a_new_service_with_the_retired_uid_is_refused(node, record):
    before = host_state(node)
    delta = {"name": "delta", "uid": 2803, "image": "localhost/selfhost-hello:1",
             "image_archive": "{{ selfhost_project_dir }}/.build/images/selfhost-hello.tar",
             "exec": "/bin/httpd -f -p 8080 -h /srv/www", "publish_ports": ["127.0.0.1:9284:8080"],
             "domain": DOMAIN % "delta"}
    for playbook in ("playbooks/site.yml", "playbooks/services.yml"):
        result = run_playbook({"service_specs": specs(without=["gamma"], extra=[delta])}, playbook=playbook)
        out = playbook_output(result)
        assert result.returncode != 0, out[-3000:]
        assert "service_specs[2].uid: 2803 belonged to the removed service gamma" in out
        assert "changed=0" in out, out[-3000:]
    assert host_state(node) == before
    assert node.run("getent passwd delta").rc != 0
    assert not node.file("/etc/nginx/sites-available/delta.conf").exists


def test_5_it_comes_back_with_its_data_and_uid(node, record):
    result = run_playbook()  # the inventory as declared: gamma again
    out = playbook_output(result)
    assert result.returncode == 0, out[-3000:]
    assert node.user("gamma").uid == 2803
    assert node.file(UNIT).exists and node.file(LINGER).exists
    status, body = fetch(node, DOMAIN % "gamma", "/data/payload.txt")
    assert status == 200 and body.encode() == PAYLOAD
    assert checksums(node, VOLUME) == record["data"]
    recorded = json.loads(node.file(RECORD).content_string)
    assert sorted(recorded["services"]) == ["alpha", "beta", "gamma"]
    assert "gamma" not in recorded["retired"]
    assert node.file(HANDMADE_UNIT).exists and node.file(HANDMADE_SITE).exists
    for name in ("alpha", "beta"):
        assert fetch(node, DOMAIN % name)[0] == 200
