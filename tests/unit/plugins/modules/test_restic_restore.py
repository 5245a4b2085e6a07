"""selfhost.pi.restic_restore with a real restic repository in a temporary directory.

``host`` backs up trees with the real restic (the ``Repo`` helper) and runs the
module against them through a wrapper like selfhost-restic; only systemctl
is a fake (no user manager here), answered from ``unit_state``. The services'
data lives under tmp_path (absolute paths are used as they are; /home/NAME is
only for relative ones).

``fake`` stands in for restic where restic 0.14 (Debian 12, where these tests
run) cannot answer as the hosts' 0.17+ does: the exit codes 10 and 12, and the
``summary`` of ``snapshots --json`` (the empty-snapshot rule). It says so.
"""
import json
import os
import shutil
import tempfile

import pytest
from ansible.module_utils import basic

from ansible_collections.selfhost.pi.plugins.module_utils import restore, service_data
from ansible_collections.selfhost.pi.plugins.modules import restic_restore

from ...restic_repo import repo, repo_template  # noqa: F401 (fixtures)  pylint: disable=unused-import
from ...argv import runuser_user, unwrap
from .helpers import run_module

SYSTEMCTL = "/usr/bin/systemctl"
SERVICE_UID = 2201


def no_user(name):
    raise KeyError(name)


class Host(object):
    """The module's commands: restic for real, systemctl faked; every argv recorded."""

    def __init__(self, monkeypatch, tmp_path, restic=None):
        self.root = tmp_path
        self.restic = restic          # None: the fake restic below answers
        self.calls = []
        self.unit_state = "active"
        self.on_stop = None
        self.snaps = {}               # fake restic: service -> [snapshot dict with "tree"]
        self.fail = None              # fake restic: (rc, stderr) for every call
        real_run_command = basic.AnsibleModule.run_command
        host = self

        def run_command(module, args, **kwargs):
            user = runuser_user(args)
            args = unwrap(args)
            if args[0] == SYSTEMCTL and "--user" in args:  # root runs a user's systemctl as that user
                args = [args[0], "--as", user or "notes"] + args[1:]
            host.calls.append(list(args))
            if args[0] == SYSTEMCTL:
                return host.systemctl(args)
            if host.restic is None:
                return host.fake_restic(args)
            assert args[0] in (host.command, "/usr/bin/cp", "/bin/cp"), args
            return real_run_command(module, args, **kwargs)

        monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
        real_bin_path = basic.AnsibleModule.get_bin_path
        monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                            lambda module, arg, required=False, opt_dirs=None:
                            SYSTEMCTL if arg == "systemctl" else real_bin_path(module, arg, required, opt_dirs))
        monkeypatch.setattr(restore.pwd, "getpwnam", no_user)

    @property
    def command(self):
        return self.restic.wrapper if self.restic is not None else "/usr/local/sbin/selfhost-restic"

    def path(self, *parts):
        return str(self.root.joinpath("host", *parts))

    def add(self, service, tree, time="2026-01-01T00:00:00", hostname="pi"):
        """A snapshot of ``service`` holding ``tree`` (absolute path -> content, or {name: content}); its ID."""
        if self.restic is not None:
            return self.restic.add(service, tree, time=time.replace("T", " ")[:19], hostname=hostname)
        snap_id = "%08x" % (len(self.calls) + sum(len(v) for v in self.snaps.values()) + 0xabc0)
        files = sum(len(content) if isinstance(content, dict) else 1 for content in tree.values())
        self.snaps.setdefault(service, []).append(dict(id=snap_id * 8, short_id=snap_id, time=time,
                                                       hostname=hostname, tags=["service:" + service],
                                                       summary={"total_files_processed": files}, tree=tree))
        return snap_id * 8

    def snapshot(self, snap_id):
        if self.restic is not None:
            (snap,) = [s for s in self.restic.snapshots() if s["id"].startswith(snap_id)]
            return snap
        (snap,) = [s for snaps in self.snaps.values() for s in snaps if s["id"] == snap_id]
        return snap

    def restores(self):
        return [c for c in self.calls if c[1:2] == ["restore"]]

    # -- the fake restic (0.17+'s exit codes and snapshot summary) -----------------------
    def fake_restic(self, args):
        assert args[0] == self.command, args
        if self.fail:
            return self.fail[0], "", self.fail[1]
        if args[1] == "snapshots":
            service = args[4].split(":", 1)[1]
            found = [dict((k, v) for k, v in s.items() if k != "tree") for s in self.snaps.get(service, [])]
            return 0, json.dumps(found), ""
        if args[1] == "restore":
            snap = self.snapshot(args[2])
            for path, content in snap["tree"].items():
                os.makedirs(args[4] + path)
                for name, text in content.items():
                    with open(os.path.join(args[4] + path, name), "w") as handle:
                        handle.write(text)
            return 0, "", ""
        raise AssertionError(args)

    # -- systemctl ------------------------------------------------------------------
    def systemctl(self, args):
        verb = args[4]
        if verb == "is-active":
            return (0 if self.unit_state == "active" else 3), self.unit_state + "\n", ""
        if verb == "stop" and self.on_stop:
            self.on_stop()
        return 0, "", ""

    def systemctl_calls(self):
        return [c[1:] for c in self.calls if c[0] == SYSTEMCTL]

    def user_exists(self, monkeypatch):
        class Pw:
            pw_uid = SERVICE_UID

        monkeypatch.setattr(restore.pwd, "getpwnam", lambda name: Pw())
        monkeypatch.setattr(restore.Systemctl, "manager_ready", lambda self: True)


@pytest.fixture
def host(monkeypatch, tmp_path, repo):  # noqa: F811 (fixture)
    return Host(monkeypatch, tmp_path, restic=repo)


@pytest.fixture
def fake(monkeypatch, tmp_path):
    return Host(monkeypatch, tmp_path)


def read(path):
    with open(path) as handle:
        return handle.read()


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)


def args(on, *services, **extra):
    base = dict(services=list(services), work_dir=str(on.root / "work"), restic=on.command)
    base.update(extra)
    return base


def svc(name="notes", paths=(), sqlite=(), uid=SERVICE_UID):
    return dict(name=name, uid=uid, paths=list(paths), sqlite=list(sqlite))


# -- mode missing ---------------------------------------------------------------------


@pytest.mark.parametrize("empty_dir", [False, True], ids=["absent", "empty-directory"])
def test_missing_restores_newest_snapshot_into_an_empty_place(monkeypatch, host, empty_dir):
    data = host.path("notes", "data")
    host.add("notes", {data: {"old.txt": "old"}}, time="2026-01-01T00:00:00")
    newest = host.add("notes", {data: {"new.txt": "new"}}, time="2026-02-01T00:00:00")
    if empty_dir:  # left by a first start of the container
        os.makedirs(data)
    failed, result = run_module(monkeypatch, restic_restore, args(host, svc(paths=[data])))
    assert not failed and result["changed"]
    (entry,) = result["services"]
    assert entry["action"] == "restored" and entry["changed"]
    assert entry["snapshot"] == host.snapshot(newest)["id"] and entry["snapshot_time"] == host.snapshot(newest)["time"]
    assert entry["snapshot_time"].startswith("2026-02-01")
    assert entry["restored"] == [data] and entry["set_aside"] == [] and entry["missing_in_snapshot"] == []
    st = os.lstat(data)
    assert entry["owners"] == {data: "%d:%d" % (st.st_uid, st.st_gid)}
    assert os.listdir(data) == ["new.txt"] and read(os.path.join(data, "new.txt")) == "new"
    assert host.restores() == [[host.command, "restore", entry["snapshot"], "--target", host.restores()[0][4]]]
    assert os.listdir(str(host.root / "work")) == []  # the private restore directory is gone
    assert os.stat(str(host.root / "work")).st_mode & 0o777 == 0o700
    assert host.systemctl_calls() == []


def test_missing_keeps_a_service_whose_data_is_present(monkeypatch, host):
    data = host.path("notes", "data")
    host.add("notes", {data: {"snap.txt": "snap"}})
    write(os.path.join(data, "mine.txt"), "mine")
    failed, result = run_module(monkeypatch, restic_restore, args(host, svc(paths=[data])))
    assert not failed and not result["changed"]
    assert result["services"][0]["action"] == "kept" and result["services"][0]["snapshot"] is None
    assert host.calls == []  # restic is not even asked
    assert os.listdir(data) == ["mine.txt"]


def test_a_present_database_alone_keeps_the_service(monkeypatch, host):
    db = host.path("notes", "notes.db")
    host.add("notes", {host.path("notes", "data"): {"a": "1"}})
    write(db, "")
    failed, result = run_module(monkeypatch, restic_restore,
                                args(host, svc(paths=[host.path("notes", "data")], sqlite=[db])))
    assert not failed and result["services"][0]["action"] == "kept"
    assert host.calls == []


def test_no_snapshot_changes_nothing(monkeypatch, host):
    data = host.path("notes", "data")
    host.add("notes", {data: {"a": "1"}}, hostname="other-pi")
    failed, result = run_module(monkeypatch, restic_restore, args(host, svc(paths=[data]), host="pi"))
    assert not failed and not result["changed"]
    assert result["services"][0]["action"] == "no snapshot" and not result["services"][0]["changed"]
    assert host.calls == [[host.command, "snapshots", "--json", "--tag", "service:notes", "--host", "pi"]]
    assert not os.path.lexists(data) and not os.path.exists(str(host.root / "work"))


def test_check_mode_asks_restic_but_changes_nothing(monkeypatch, host):
    data = host.path("notes", "data")
    host.add("notes", {data: {"a": "1"}})
    failed, result = run_module(monkeypatch, restic_restore, args(host, svc(paths=[data])), check_mode=True)
    assert not failed and result["changed"]
    assert result["services"][0]["action"] == "restored" and result["services"][0]["restored"] == []
    assert [c[1] for c in host.calls] == ["snapshots"]
    assert not os.path.lexists(data) and not os.path.exists(str(host.root / "work"))
    assert "diff" not in result


def test_diff_mode_returns_the_planned_diff(monkeypatch, host):
    data, db = host.path("notes", "data"), host.path("notes", "notes.db")
    snap = host.snapshot(host.add("notes", {data: {"a": "1"}}, time="2026-03-04T05:06:07"))
    kept = host.path("web", "site")
    write(os.path.join(kept, "index.html"), "")
    failed, result = run_module(monkeypatch, restic_restore,
                                args(host, svc(paths=[data], sqlite=[db]), svc("web", paths=[kept], uid=2001)),
                                check_mode=True, diff=True)
    assert not failed and result["changed"]
    after = "from snapshot %s (%s)\n" % (snap["short_id"], snap["time"])
    assert result["diff"] == [dict(
        before_header="notes data", after_header="notes data",
        before="%s: missing\n%s: missing\n" % (data, db),
        after="%s: %s%s: %s" % (data, after, db, after))]
    assert [s["action"] for s in result["services"]] == ["restored", "kept"]


def test_only_the_newest_snapshot_is_restored(monkeypatch, host):
    data, db = host.path("notes", "data"), host.path("notes", "data", "notes.db")
    staging = str(host.root / "staging")
    monkeypatch.setattr(service_data, "STAGING_DIR", staging)
    host.add("notes", {staging + "/notes" + db: "staged-db"}, time="2026-01-01T00:00:00")
    host.add("notes", {data: {"upload.png": "png"}}, time="2026-01-02T00:00:00")
    failed, result = run_module(monkeypatch, restic_restore, args(host, svc(paths=[data], sqlite=[db])))
    assert not failed
    # The newest snapshot lacks the database: the older one's copy is not mixed in, the database is reported.
    entry = result["services"][0]
    assert entry["restored"] == [data] and entry["missing_in_snapshot"] == [db]


def test_sqlite_comes_back_from_the_staged_copy_of_one_snapshot(monkeypatch, host):
    data, db = host.path("notes", "data"), host.path("notes", "data", "notes.db")
    staging = str(host.root / "staging")
    monkeypatch.setattr(service_data, "STAGING_DIR", staging)
    # One snapshot as the backup program takes it: the paths (live database left out) and the staged copy.
    write(os.path.join(data, "upload.png"), "png")
    write(db, "live-db")
    write(staging + "/notes" + db, "staged-db")
    host.restic.restic("backup", "--host", "pi", "--tag", "service:notes", "--exclude", db, data, staging + "/notes")
    for path in (data, staging):
        shutil.rmtree(path)
    failed, result = run_module(monkeypatch, restic_restore, args(host, svc(paths=[data], sqlite=[db])))
    assert not failed and result["changed"]
    entry = result["services"][0]
    assert entry["restored"] == [data, db] and set(entry["owners"]) == {data, db}
    assert read(db) == "staged-db" and read(os.path.join(data, "upload.png")) == "png"
    assert sorted(os.listdir(data)) == ["notes.db", "upload.png"]


def test_paths_the_snapshot_lacks_are_reported_and_left_alone(monkeypatch, host):
    data, media = host.path("notes", "data"), host.path("notes", "media")
    host.add("notes", {data: {"a": "1"}})
    failed, result = run_module(monkeypatch, restic_restore, args(host, svc(paths=[data, media])))
    assert not failed
    entry = result["services"][0]
    assert entry["restored"] == [data] and entry["missing_in_snapshot"] == [media]
    assert not os.path.lexists(media)


def test_relative_paths_resolve_under_the_home(monkeypatch, fake):
    seen = []
    monkeypatch.setattr(restore.service_data, "has_data", lambda service: seen.append(service["paths"]) or True)
    failed, result = run_module(monkeypatch, restic_restore, args(fake, svc(paths=["data"])))
    assert not failed and result["services"][0]["action"] == "kept"
    assert seen == [["/home/notes/data"]]


def test_missing_parents_get_the_owner_and_mode_the_snapshot_recorded(monkeypatch, host):
    home, data = host.path("notes"), host.path("notes", "vol", "data")
    host.add("notes", {data: {"a": "1"}})
    os.makedirs(os.path.dirname(home), exist_ok=True)
    # Record /host/notes and /host/notes/vol with their own modes in a second snapshot of the same paths.
    os.makedirs(data)
    write(os.path.join(data, "a"), "1")
    os.chmod(home, 0o750)
    os.chmod(os.path.dirname(data), 0o710)
    host.restic.backup([data], "notes", time="2026-01-02 00:00:00")
    shutil.rmtree(home)
    failed, result = run_module(monkeypatch, restic_restore, args(host, svc(paths=[data])))
    assert not failed and result["services"][0]["restored"] == [data]
    assert os.stat(home).st_mode & 0o7777 == 0o750
    assert os.stat(os.path.dirname(data)).st_mode & 0o7777 == 0o710


# -- mode replace ------------------------------------------------------------------------


def test_replace_sets_the_current_data_aside(monkeypatch, host):
    data = host.path("notes", "data")
    host.add("notes", {data: {"snap.txt": "snap"}})
    write(os.path.join(data, "current.txt"), "current")
    failed, result = run_module(monkeypatch, restic_restore, args(host, svc(paths=[data]), mode="replace"))
    assert not failed and result["changed"]
    entry = result["services"][0]
    assert entry["action"] == "replaced" and entry["restored"] == [data]
    (aside,) = entry["set_aside"]
    assert aside.startswith(data + ".replaced-") and len(aside) == len(data + ".replaced-20260101T000000")
    assert os.listdir(aside) == ["current.txt"] and read(os.path.join(aside, "current.txt")) == "current"
    assert os.listdir(data) == ["snap.txt"]
    assert host.systemctl_calls() == []  # no such user: no manager to ask


def test_replace_sets_a_database_and_its_side_files_aside(monkeypatch, host):
    db = host.path("notes", "notes.db")
    staging = str(host.root / "staging")
    monkeypatch.setattr(service_data, "STAGING_DIR", staging)
    host.add("notes", {staging + "/notes" + db: "snap-db"})
    for name in (db, db + "-wal", db + "-shm"):
        write(name, "live")
    failed, result = run_module(monkeypatch, restic_restore, args(host, svc(sqlite=[db]), mode="replace"))
    assert not failed
    entry = result["services"][0]
    assert read(db) == "snap-db"
    assert not os.path.lexists(db + "-wal") and not os.path.lexists(db + "-shm")
    assert sorted(a.split(".replaced-")[0] for a in entry["set_aside"]) == [db, db + "-shm", db + "-wal"]
    assert all(read(a) == "live" for a in entry["set_aside"])


def test_replace_stops_and_starts_a_running_unit(monkeypatch, host):
    data = host.path("notes", "data")
    host.add("notes", {data: {"snap.txt": "snap"}})
    write(os.path.join(data, "current.txt"), "current")
    host.user_exists(monkeypatch)
    at_stop = []
    host.on_stop = lambda: at_stop.append(sorted(os.listdir(data)))
    failed, result = run_module(monkeypatch, restic_restore, args(host, svc(paths=[data]), mode="replace"))
    assert not failed and result["services"][0]["action"] == "replaced"
    assert host.systemctl_calls() == [["--as", "notes", "--user", "is-active", "notes.service"],
                                      ["--as", "notes", "--user", "stop", "notes.service"],
                                      ["--as", "notes", "--user", "start", "notes.service"]]
    assert at_stop == [["current.txt"]]  # stopped before its data was touched
    assert os.listdir(data) == ["snap.txt"]


def test_replace_leaves_a_stopped_unit_stopped(monkeypatch, host):
    data = host.path("notes", "data")
    host.add("notes", {data: {"snap.txt": "snap"}})
    host.user_exists(monkeypatch)
    host.unit_state = "inactive"
    failed, result = run_module(monkeypatch, restic_restore, args(host, svc(paths=[data]), mode="replace"))
    assert not failed and result["changed"]
    assert [c[3] for c in host.systemctl_calls()] == ["is-active"]


def test_replace_a_chosen_snapshot(monkeypatch, host):
    data = host.path("notes", "data")
    older = host.add("notes", {data: {"old.txt": "old"}}, time="2026-01-01T00:00:00")
    host.add("notes", {data: {"new.txt": "new"}}, time="2026-02-01T00:00:00")
    failed, result = run_module(monkeypatch, restic_restore,
                                args(host, svc(paths=[data]), mode="replace", snapshot=older))
    assert not failed and result["services"][0]["snapshot"].startswith(older)
    assert host.calls[0] == [host.command, "snapshots", "--json", "--tag", "service:notes", older]
    assert os.listdir(data) == ["old.txt"] and result["services"][0]["set_aside"] == []


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rc,stderr,message", [
    (12, "Fatal: wrong password or no key found\n", "wrong password for the restic repository"),
    (10, "Fatal: repository does not exist: unable to open config file\n",
     "the restic repository does not exist (restic exit code 10): Fatal: repository does not exist"),
    (1, "Fatal: unable to open repository at sftp:backup@nas:/restic: ssh: connect refused\n",
     "restic failed (rc=1): Fatal: unable to open repository at sftp:"),
])
def test_restic_errors_fail_before_anything_changes(monkeypatch, fake, rc, stderr, message):
    # A fake restic: 0.17+'s exit codes 10 and 12 (restic 0.14 here exits 1 for both).
    data = fake.path("notes", "data")
    current = fake.path("web", "site")
    write(os.path.join(current, "index.html"), "")
    fake.fail = (rc, stderr)
    failed, result = run_module(monkeypatch, restic_restore,
                                args(fake, svc(paths=[data]), svc("web", paths=[current], uid=2001), mode="replace"))
    assert failed
    assert result["msg"].startswith("nothing was changed: notes: ") and message in result["msg"]
    assert [c[1] for c in fake.calls] == ["snapshots"]  # failed on the first service's plan
    assert not os.path.lexists(data) and os.listdir(current) == ["index.html"]
    assert not os.path.exists(str(fake.root / "work"))


def test_an_unreadable_repository_fails_before_anything_changes(monkeypatch, host):
    data = host.path("notes", "data")
    write(os.path.join(data, "x"), "x")
    os.rename(host.restic.path, host.restic.path + ".away")
    failed, result = run_module(monkeypatch, restic_restore, args(host, svc(paths=[data]), mode="replace"))
    assert failed and result["msg"].startswith("nothing was changed: notes: restic failed (rc=")
    assert os.listdir(data) == ["x"] and not os.path.exists(str(host.root / "work"))


def test_unknown_snapshot_fails(monkeypatch, host):
    data = host.path("notes", "data")
    host.add("notes", {data: {"a": "1"}})
    failed, result = run_module(monkeypatch, restic_restore,
                                args(host, svc(paths=[data]), snapshot="ffffffff", host="pi"))
    assert failed
    assert result["msg"].startswith("nothing was changed: notes: ")
    assert host.restores() == [] and not os.path.lexists(data)


def test_replace_without_any_snapshot_fails(monkeypatch, host):
    data = host.path("notes", "data")
    write(os.path.join(data, "x"), "x")
    failed, result = run_module(monkeypatch, restic_restore, args(host, svc(paths=[data]), mode="replace"))
    assert failed and "the repository has no snapshot of service notes" in result["msg"]
    assert os.listdir(data) == ["x"]


def test_snapshot_id_with_two_services_fails_naming_snapshot(monkeypatch, fake):
    failed, result = run_module(monkeypatch, restic_restore,
                                args(fake, svc(paths=[fake.path("a")]), svc("web", paths=[fake.path("b")]),
                                     snapshot="aaaa"))
    assert failed and result["msg"].startswith("nothing was changed: ")
    assert "snapshot: a snapshot ID names the data of one service" in result["msg"]
    assert fake.calls == []


@pytest.mark.parametrize("services,message", [
    ([svc(paths=["/etc"])], "services[0].paths[0]: /etc is not a path of one service's data"),
    ([svc(paths=["/tmp/x", ""])], "services[0].paths[1]: '' is not a path"),
    ([svc(paths=["/tmp/x"], sqlite=["."])], "services[0].sqlite[0]: /home/notes is not a path"),
    ([svc(paths=["/tmp/x"]), svc("web", paths=["/var/lib/selfhost-pi/backup/sqlite/web"])],
     "services[1].paths[0]: /var/lib/selfhost-pi/backup/sqlite/web is inside the backup staging directory"),
    ([svc(paths=["/tmp/x"]), svc(paths=["/tmp/y"])], "services[1].name: notes is listed twice"),
    ([svc()], "services[0]: no paths and no sqlite databases: nothing to restore"),
])
def test_bad_services_fail_naming_their_field(monkeypatch, fake, services, message):
    failed, result = run_module(monkeypatch, restic_restore, args(fake, *services))
    assert failed and result["msg"].startswith("nothing was changed: ")
    assert message in result["msg"] and any(message in error for error in result["errors"])
    assert fake.calls == []


def test_a_snapshot_without_the_declared_data_fails_that_service_only(monkeypatch, host):
    data, site = host.path("notes", "data"), host.path("web", "site")
    snap = host.add("notes", {host.path("notes", "elsewhere"): {"a": "1"}})
    host.add("web", {site: {"index.html": "hi"}})
    failed, result = run_module(monkeypatch, restic_restore,
                                args(host, svc(paths=[data]), svc("web", paths=[site], uid=2001)))
    assert failed
    assert result["msg"].startswith("notes: snapshot %s holds none of the declared data of notes (%s)"
                                    % (snap[:8], data))
    assert [s["action"] for s in result["services"]] == ["failed", "restored"]
    assert result["changed"] and not os.path.lexists(data)
    assert os.listdir(site) == ["index.html"]


# -- once bugs: nested paths are refused; a failed replace starts the unit again ----------------


@pytest.mark.parametrize("mode", ["missing", "replace"])
def test_nested_declared_paths(monkeypatch, fake, mode):
    data, media = fake.path("notes", "data"), fake.path("notes", "data", "media")
    if mode == "replace":
        write(os.path.join(media, "m"), "current")
    failed, result = run_module(monkeypatch, restic_restore, args(fake, svc(paths=[data, media]), mode=mode))
    assert failed and result["msg"].startswith("nothing was changed: ")
    assert "services[0].paths[1]: %s is inside services[0].paths[0]" % media in result["msg"]
    assert fake.calls == []  # refused before restic is asked


def test_a_failed_replace_starts_the_unit_again(monkeypatch, host):
    data, site = host.path("notes", "data"), host.path("notes", "site")
    host.add("notes", {data: {"a": "1"}, site: {"b": "2"}})
    for path in (data, site):
        write(os.path.join(path, "x"), "x")
    host.user_exists(monkeypatch)
    move = restore.ServiceRestore._move

    def disk_full(self, src_fd, src_name, dest_fd, dest_name, source, dest):
        if dest == site:
            raise OSError(28, "No space left on device")
        return move(self, src_fd, src_name, dest_fd, dest_name, source, dest)

    monkeypatch.setattr(restore.ServiceRestore, "_move", disk_full)
    failed, result = run_module(monkeypatch, restic_restore, args(host, svc(paths=[data, site]), mode="replace"))
    assert failed and result["services"][0]["action"] == "failed"
    assert [c[3] for c in host.systemctl_calls()] == ["is-active", "stop", "start"]


def test_a_snapshot_of_empty_directories_is_not_restored_again_and_again(monkeypatch, fake):
    # A fake restic: the snapshot's "summary" (files processed) is restic 0.17+'s; 0.14 has none.
    data = fake.path("greeter", "data")
    os.makedirs(data)  # the service's empty volume, as its first start left it
    fake.add("greeter", {data: {}})
    failed, result = run_module(monkeypatch, restic_restore, args(fake, svc(name="greeter", paths=[data])))
    assert not failed and not result["changed"]
    assert result["services"][0]["action"] == "empty snapshot"
    assert fake.restores() == []


# -- root never follows a link a service user placed (issue 12, finding 2) ----------------------


def service_owned(path):
    """Give ``path`` to the service's UID, as its home and volumes are (root-owned dirs are trusted)."""
    if os.geteuid() == 0:
        os.chown(path, SERVICE_UID, SERVICE_UID)


@pytest.mark.parametrize("mode", ["missing", "replace"])
def test_a_symlinked_parent_on_the_host_is_refused(monkeypatch, host, mode):
    # The service's container replaced a directory of its tree with a link to another service's.
    home, other = host.path("notes"), host.path("other")
    data = host.path("notes", "vol", "data")
    host.add("notes", {data: {"restored.txt": "from the snapshot"}})
    # In replace mode the other service has a "data" the old code set aside; in missing mode it has none yet.
    theirs = os.path.join(other, "data" if mode == "replace" else "", "theirs.txt")
    write(theirs, "the other service's")
    before = sorted(os.walk(other))
    os.makedirs(home)
    service_owned(home)
    os.symlink(other, os.path.join(home, "vol"))
    failed, result = run_module(monkeypatch, restic_restore, args(host, svc(paths=[data]), mode=mode))
    assert failed and result["services"][0]["action"] == "failed"
    assert "%s is a symbolic link" % os.path.join(home, "vol") in result["msg"]
    # Nothing went through the link: the other service's tree is what it was.
    assert sorted(os.walk(other)) == before and read(theirs) == "the other service's"
    assert result["services"][0]["restored"] == [] and result["services"][0]["set_aside"] == []


def test_a_symlinked_parent_inside_the_snapshot_is_refused(monkeypatch, host):
    # At backup time notes/vol was a link to another tree; the restored tree must not send root there.
    home, other = host.path("notes"), host.path("other")
    data = host.path("notes", "vol", "data")
    write(os.path.join(other, "data", "theirs.txt"), "the other service's")
    os.makedirs(home)
    os.symlink(other, os.path.join(home, "vol"))
    host.restic.backup([home], "notes")
    os.unlink(os.path.join(home, "vol"))
    failed, result = run_module(monkeypatch, restic_restore, args(host, svc(paths=[data])))
    assert failed and result["services"][0]["action"] == "failed"
    assert "vol is a symbolic link" in result["msg"]
    assert os.listdir(os.path.join(other, "data")) == ["theirs.txt"] and not os.path.lexists(data)


def test_a_symlinked_database_neighbour_is_not_set_aside_through(monkeypatch, host):
    # The side files are set aside by name in the database's directory; a link there is moved, not followed.
    db = host.path("notes", "notes.db")
    staging = str(host.root / "staging")
    monkeypatch.setattr(service_data, "STAGING_DIR", staging)
    host.add("notes", {staging + "/notes" + db: "snap-db"})
    elsewhere = host.path("elsewhere-wal")
    write(elsewhere, "not the service's")
    write(db, "live")
    os.symlink(elsewhere, db + "-wal")
    failed, result = run_module(monkeypatch, restic_restore, args(host, svc(sqlite=[db]), mode="replace"))
    assert not failed and read(db) == "snap-db"
    assert read(elsewhere) == "not the service's"
    (wal,) = [a for a in result["services"][0]["set_aside"] if "-wal." in a]
    assert os.path.islink(wal)


@pytest.mark.skipif(os.stat("/dev/shm").st_dev == os.stat("/tmp").st_dev if os.path.isdir("/dev/shm") else True,
                    reason="needs /dev/shm on another file system than /tmp")
def test_across_file_systems_cp_writes_into_a_private_directory(monkeypatch, host, tmp_path):
    data = host.path("notes", "data")
    host.add("notes", {data: {"a.txt": "a"}})
    os.makedirs(os.path.dirname(data))
    work = tempfile.mkdtemp(dir="/dev/shm")
    try:
        failed, result = run_module(monkeypatch, restic_restore, args(host, svc(paths=[data]), work_dir=work))
        assert not failed and result["services"][0]["restored"] == [data]
        assert read(os.path.join(data, "a.txt")) == "a"
        assert os.listdir(os.path.dirname(data)) == ["data"]  # the private directory is gone
        assert any(c[0].endswith("/cp") for c in host.calls)
    finally:
        shutil.rmtree(work)


def test_check_mode_before_restic_is_installed_plans_without_running_it(monkeypatch, tmp_path):
    """--check on a freshly flashed host: the wrapper and restic are not there yet; nothing runs, nothing fails."""
    host = Host(monkeypatch, tmp_path)            # the fake restic: its wrapper path does not exist here
    assert not os.path.exists(host.command)
    data, kept = host.path("notes", "data"), host.path("web", "site")
    write(os.path.join(kept, "index.html"), "")
    failed, result = run_module(monkeypatch, restic_restore,
                                args(host, svc(paths=[data]), svc("web", paths=[kept], uid=2001),
                                     host_state=[dict(name="tls", paths=[host.path("etc", "ca")])]),
                                check_mode=True, diff=True)
    assert not failed, result
    assert [s["action"] for s in result["services"]] == ["unknown", "kept"]
    assert result["host_state"][0]["action"] == "unknown" and not result["changed"]
    assert host.calls == []
    (state, notes) = result["diff"]
    assert state["before_header"] == "host state tls" and "restic is not installed yet" in state["after"]
    assert notes["before"] == "%s: missing\n" % data and "latest snapshot" in notes["after"]
    assert not os.path.lexists(data) and not os.path.exists(str(host.root / "work"))

