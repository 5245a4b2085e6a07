"""Pods and scheduled jobs on a real Debian 13 host (podman 5.4, systemd 257).

The tests run in order and build on each other: the pod answers, survives its
database being killed, the jobs run on their timers (one fails, visibly, and
keeps being run), malformed declarations change nothing, and the pod's data
comes back on a rebuilt host.
"""
import calendar
import json
import os
import subprocess
import time

from conftest import DISK, HOST, PROJECT, fetch, run_playbook

BOARD, DATA = "board.pods.test", "data.pods.test"
BOARD_UID, DATA_UID = 2801, 2802
VALKEY_DATA = "/home/board/.local/share/containers/storage/volumes/board-data/_data"

POST = (
    "import sys, urllib.request\n"
    "req = urllib.request.Request('http://127.0.0.1' + sys.argv[2], data=sys.argv[3].encode(),\n"
    "                             headers={'Host': sys.argv[1]})\n"
    "print(urllib.request.urlopen(req, timeout=10).read().decode().strip())\n"
)


def sh(node, command, *args):
    cmd = node.run(command, *args)
    assert cmd.rc == 0, "%s: rc=%d\n%s\n%s" % (command, cmd.rc, cmd.stdout, cmd.stderr)
    return cmd.stdout


def user_systemctl(node, user, *args):
    return node.run("systemctl --user -M %s@ " + " ".join(["%s"] * len(args)), user, *args)


def prop(node, user, unit, name):
    out = user_systemctl(node, user, "show", "-p", name, "--value", unit)
    assert out.rc == 0, out.stderr
    return out.stdout.strip()


def podman(node, user, uid, *args):
    return node.run("runuser -u %s -- env XDG_RUNTIME_DIR=/run/user/%s podman " + " ".join(["%s"] * len(args)),
                    user, str(uid), *args)


def wait_for(what, check, timeout=60, step=1.0):
    deadline = time.time() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.time() < deadline, "timed out after %d s waiting for %s" % (timeout, what)
        time.sleep(step)


def post(node, domain, path, text):
    return sh(node, "python3 -c %s %s %s %s", POST, domain, path, text).strip()


def messages(node):
    status, body = fetch(node, BOARD, "/messages")
    assert status == 200, body
    return json.loads(body)


def host_now(node):
    return int(sh(node, "date +%s"))


def unix(value):
    """A timestamp as `systemctl show` prints it (``Wed 2026-12-02 04:43:00 UTC``; empty or n/a: never) in
    seconds since the epoch; the test host runs on UTC."""
    if not value or value == "n/a":
        return 0
    return calendar.timegm(time.strptime(value.rsplit(" ", 1)[0], "%a %Y-%m-%d %H:%M:%S"))


def recap_changed(output):
    line = [ln for ln in output.splitlines() if HOST in ln and "ok=" in ln][-1]
    return int(line.split("changed=")[1].split()[0])


def test_the_pod_runs_its_members_as_the_service_user_sharing_localhost(node):
    for unit in ("board.service", "board-db.service", "board-app.service"):
        assert user_systemctl(node, "board", "is-active", unit).stdout.strip() == "active", unit
    names = podman(node, "board", BOARD_UID, "ps", "--filter", "pod=board", "--format", "{{.Names}}").stdout.split()
    assert sorted(names) == ["board-app", "board-db", "board-infra"]
    pids = {}
    for line in sh(node, "ps -eo pid=,uid=,args=").splitlines():
        pid, uid, args = line.split(None, 2)
        if args.startswith("/usr/bin/valkey-server"):
            pids["db"] = (pid, int(uid))
        elif args.startswith("/usr/bin/python3 /app/board.py"):
            pids["app"] = (pid, int(uid))
    assert pids["db"][1] == BOARD_UID and pids["app"][1] == BOARD_UID, pids   # container root is the service user
    netns = [sh(node, "readlink /proc/%s/ns/net" % pid).strip() for pid, _ in pids.values()]
    assert netns[0] == netns[1]                                                  # one network namespace: localhost
    units = "/home/board/.config/containers/systemd/"
    assert "PublishPort" not in sh(node, "cat %sboard-db.container %sboard-app.container" % (units, units))
    assert "PublishPort=127.0.0.1:9291:8080" in sh(node, "cat %sboard.pod" % units)


def test_the_app_reaches_its_database_and_the_site_answers_through_nginx(node, record):
    record["posted"] = ["first", "second", "third"]
    for index, text in enumerate(record["posted"]):
        assert post(node, BOARD, "/messages", text) == str(index + 1)
    assert messages(node) == record["posted"]
    assert fetch(node, BOARD, "/") == (200, "board: 3 messages\n")
    assert podman(node, "board", BOARD_UID, "exec", "board-db", "valkey-cli", "llen",
                  "board:messages").stdout.strip() == "3"                          # the rows are Valkey's
    status, body = fetch(node, DATA, "/-/versions.json")
    assert status == 200 and json.loads(body)["datasette"]["version"]


def test_the_app_starts_once_its_database_is_healthy(node):
    assert "board-db.service" in prop(node, "board", "board-app.service", "After").split()
    assert "board-db.service" in prop(node, "board", "board-app.service", "Requires").split()
    assert "--sdnotify=healthy" in prop(node, "board", "board-db.service", "ExecStart")
    db_up = int(prop(node, "board", "board-db.service", "ActiveEnterTimestampMonotonic"))
    app_starting = int(prop(node, "board", "board-app.service", "InactiveExitTimestampMonotonic"))
    assert 0 < db_up <= app_starting


def test_killing_the_database_is_recovered_by_systemd(node, record):
    # Valkey snapshots to dump.rdb each second with a change (--save "1 1"): what it saved survives a kill.
    wait_for("Valkey's snapshot of the messages", lambda: "rdb_changes_since_last_save:0" in podman(
        node, "board", BOARD_UID, "exec", "board-db", "valkey-cli", "info", "persistence").stdout, timeout=20)
    restarts = int(prop(node, "board", "board-db.service", "NRestarts"))
    assert podman(node, "board", BOARD_UID, "kill", "board-db").rc == 0
    started = time.time()
    wait_for("board-db.service restarted by systemd", lambda: (
        int(prop(node, "board", "board-db.service", "NRestarts")) == restarts + 1
        and prop(node, "board", "board-db.service", "ActiveState") == "active"))
    wait_for("the app healthy again", lambda: fetch(node, BOARD, "/health")[0] == 200)
    print("\ndatabase killed: back and answering through the app after %.1f s" % (time.time() - started))
    assert messages(node) == record["posted"]
    assert user_systemctl(node, "board", "is-active", "board.service").stdout.strip() == "active"


def test_a_job_runs_on_its_timer_and_writes_its_data(node, record):
    since = host_now(node)
    # board-job-count joins the pod: Valkey on 127.0.0.1, the pod's volume at /shared.
    wait_for("board-job-count.timer to elapse", lambda: unix(prop(
        node, "board", "board-job-count.timer", "LastTriggerUSec")) >= since, timeout=30)
    line = wait_for("the job's line in /home/board/shared/counts", lambda: [
        ln for ln in node.run("cat /home/board/shared/counts").stdout.splitlines()
        if ln.split() and int(ln.split()[0]) >= since], timeout=30)[-1]
    assert line.split()[1] == str(len(record["posted"]))
    assert node.file("/home/board/shared/counts").uid == BOARD_UID
    wait_for("the count run to end", lambda: prop(node, "board", "board-job-count.service", "ActiveState")
             == "inactive", timeout=30)                                   # oneshot, no RemainAfterExit
    assert prop(node, "board", "board-job-count.service", "Result") == "success"
    # datasette's data, refreshed by its job on its timer, answers through nginx.
    wait_for("datasette-job-refresh.timer to elapse", lambda: unix(prop(
        node, "datasette", "datasette-job-refresh.timer", "LastTriggerUSec")) >= since, timeout=30)
    runs = wait_for("a refresh since then", lambda: [
        run for run in json.loads(fetch(node, DATA, "/stats/refreshes.json?_shape=array")[1] or "[]")
        if run["at"] >= time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(since))], timeout=30)
    assert runs[-1]["rows"] == 6
    status, body = fetch(node, DATA, "/stats/releases.json?_shape=array&_sort=version")
    assert status == 200 and [r["codename"] for r in json.loads(body)][-1] == "trixie"
    assert node.file("/home/datasette/data/stats.db").uid == DATA_UID


def test_a_failing_job_is_failed_runs_again_and_stops_nothing(node):
    failed = wait_for("board-job-broken.service in --failed", lambda: "board-job-broken.service" in user_systemctl(
        node, "board", "--failed", "--plain", "--no-legend").stdout, timeout=40)
    assert failed
    first = prop(node, "board", "board-job-broken.service", "InvocationID")
    assert prop(node, "board", "board-job-broken.service", "Result") == "exit-code"
    journal = node.run("journalctl --no-pager -q _UID=%d _SYSTEMD_USER_UNIT=board-job-broken.service" % BOARD_UID)
    assert "this job fails on purpose" in journal.stdout
    wait_for("the next run of the failing job", lambda: prop(
        node, "board", "board-job-broken.service", "InvocationID") not in ("", first), timeout=40)
    assert prop(node, "board", "board-job-broken.timer", "ActiveState") == "active"
    for unit in ("board.service", "board-db.service", "board-app.service"):
        assert user_systemctl(node, "board", "is-active", unit).stdout.strip() == "active", unit
    assert fetch(node, BOARD, "/health")[0] == 200


def test_an_update_whose_member_does_not_come_up_is_rolled_back(node, record):
    """podman 5.4 restarts the pod's unit for a member's new image; the update runner waits for the members."""
    def app_image():
        return podman(node, "board", BOARD_UID, "container", "inspect", "--format", "{{.Image}}",
                      "board-app").stdout.strip()

    before = app_image()
    # A "new" local image of the app that cannot start (AutoUpdate=local sees a newer localhost/board:1).
    podman(node, "board", BOARD_UID, "rm", "-f", "breaker")
    assert podman(node, "board", BOARD_UID, "run", "--name", "breaker", "--entrypoint", "/bin/sh",
                  "localhost/board:1", "-c", "rm /app/board.py").rc == 0
    assert podman(node, "board", BOARD_UID, "commit", "-q", "breaker", "localhost/board:1").rc == 0
    podman(node, "board", BOARD_UID, "rm", "-f", "breaker")
    started = time.time()
    assert node.run("systemctl start selfhost-update-board.service").rc != 0
    journal = sh(node, "journalctl -u selfhost-update-board.service --no-pager -o cat")
    print("\nupdate with a broken member, rolled back in %.1f s" % (time.time() - started))
    assert "board: podman: board.service localhost/board:1 true" in journal      # podman restarted the pod's unit
    assert "board: not active after 25 s: board-app.service" in journal
    assert "as localhost/board:1 again" in journal
    assert "update FAILED: a member of the pod did not come up with its new image; rolled back" in journal
    assert app_image() == before
    wait_for("the app healthy on its previous image", lambda: fetch(node, BOARD, "/health")[0] == 200)
    assert messages(node) == record["posted"]
    sh(node, "systemctl reset-failed selfhost-update-board.service")


def test_check_mode_sees_nothing_to_change(node):
    # services.yml: the backup and service roles (site.yml's others have no pods or jobs); idempotence ran site.yml.
    result = run_playbook(check=True, playbook="playbooks/services.yml")
    assert result.returncode == 0, result.stdout[-3000:]
    assert recap_changed(result.stdout) == 0, result.stdout[-5000:]


def test_malformed_pods_and_jobs_fail_naming_the_field_before_any_change(node, spec):
    units = "find /home/board/.config /home/datasette/.config -type f -o -type l | sort | xargs sha256sum"
    before = sh(node, units)
    clash = json.loads(json.dumps(spec["service_specs"]))
    clash[0]["containers"][1]["publish_ports"] = ["127.0.0.1:9293:8080"]
    clash[0]["jobs"].append({"name": "count", "schedule": "daily", "exec": "true"})
    result = run_playbook({"service_specs": clash}, playbook="playbooks/services.yml")
    assert result.returncode != 0
    assert "service_specs[0].containers[1].publish_ports: the members of a pod publish no ports" in result.stdout
    assert "service_specs[0].jobs[2].name: count clashes with service_specs[0].jobs[0]" in result.stdout
    schedule = json.loads(json.dumps(spec["service_specs"]))
    schedule[1]["jobs"][0]["schedule"] = "every night at three"
    result = run_playbook({"service_specs": schedule}, playbook="playbooks/services.yml")
    assert result.returncode != 0
    assert "services[1].jobs[0].schedule: 'every night at three' is not a systemd calendar event" in result.stdout
    assert "nothing was changed" in result.stdout
    assert sh(node, units) == before
    assert fetch(node, BOARD, "/health")[0] == 200


def test_the_pods_data_comes_back_on_a_rebuilt_host(node, record):
    record["posted"].append("written before the backup")
    post(node, BOARD, "/messages", record["posted"][-1])
    refreshes = json.loads(fetch(node, DATA, "/stats/refreshes.json?_shape=array")[1])   # all in the snapshot
    started = time.time()
    assert node.run("systemctl start selfhost-backup.service").rc == 0, sh(
        node, "journalctl -u selfhost-backup.service -n 40 --no-pager")
    print("\nbackup of the pod and datasette: %.1f s" % (time.time() - started))
    assert messages(node) == record["posted"]
    # Destroy the host (its /home and /var/lib/containers go too); boot a fresh one with the same backup disk.
    env = dict(os.environ, CONTAINERS_CONF=os.path.join(PROJECT, "tests", "host", "containers.conf"))
    subprocess.run([os.path.join(PROJECT, "tests", "host", "start.sh"), HOST, "-v", "%s:/mnt/backup" % DISK],
                   check=True, env=env, capture_output=True, timeout=300)
    assert not node.file("/home/board").exists
    started = time.time()
    result = run_playbook()
    assert result.returncode == 0, result.stdout[-5000:]
    wait_for("the board answering", lambda: fetch(node, BOARD, "/health")[0] == 200, timeout=60)
    print("rebuilt host: site.yml and the pod answering in %.1f s" % (time.time() - started))
    assert messages(node) == record["posted"]                                  # every row, in order
    assert node.file(VALKEY_DATA + "/dump.rdb").uid == BOARD_UID
    restored = json.loads(fetch(node, DATA, "/stats/refreshes.json?_shape=array")[1])
    assert restored[:len(refreshes)] == refreshes                              # then the job goes on adding
