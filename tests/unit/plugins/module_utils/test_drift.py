"""The drift check's reading of the host (module_utils/drift.py): real files in a temporary directory, and a
fake systemd that answers ``systemctl show`` like systemd 257."""
import json
import os

import pytest

from ansible_collections.selfhost.pi.plugins.module_utils import drift, systemd
from ansible_collections.selfhost.pi.plugins.module_utils.host import Host
from ...argv import runuser_user, unwrap


def read(path, **kwargs):
    out = {}
    drift.observe_path(str(path), out, **kwargs)
    return out


def test_a_tree_is_read_whole_with_content_mode_and_link_targets(tmp_path):
    (tmp_path / "etc" / "conf.d").mkdir(parents=True)
    (tmp_path / "etc" / "conf.d" / "a.conf").write_text("a\n")
    (tmp_path / "etc" / "__pycache__").mkdir()
    (tmp_path / "etc" / "__pycache__" / "x.pyc").write_text("cache")
    os.symlink("/etc/shadow", str(tmp_path / "etc" / "link"))
    before = read(tmp_path / "etc")
    assert before[str(tmp_path / "etc" / "link")] == "link -> /etc/shadow"
    assert before[str(tmp_path / "etc" / "conf.d" / "a.conf")].startswith("file 0644 ")
    assert not any("__pycache__" in key for key in before)
    assert read(tmp_path / "etc") == before  # the same host reads the same

    (tmp_path / "etc" / "conf.d" / "a.conf").write_text("b\n")
    assert read(tmp_path / "etc") != before
    (tmp_path / "etc" / "conf.d" / "a.conf").write_text("a\n")
    os.chmod(str(tmp_path / "etc" / "conf.d" / "a.conf"), 0o600)
    changed = drift.compare({"declaration": "d", "state": before}, "d", read(tmp_path / "etc"))
    assert len(changed) == 1 and changed[0].startswith("%s: file 0600 " % (tmp_path / "etc" / "conf.d" / "a.conf"))
    assert "(was file 0644 " in changed[0]


def test_a_link_is_described_never_followed_and_a_fifo_never_opened_for_reading(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("root:$6$hash\n")
    home = tmp_path / "home"
    home.mkdir()
    os.symlink(str(secret), str(home / "unit.container"))
    os.mkfifo(str(home / "pipe.container"))  # opened blocking, reading it would hang
    out = read(home)
    assert out[str(home / "unit.container")] == "link -> %s" % secret
    assert out[str(home / "pipe.container")].startswith("other ")
    assert "hash" not in json.dumps(out)
    # On the way to a path, a link only root could have placed is followed (/home -> /srv/home), one in a
    # directory others can write is not entered.
    writable = tmp_path / "writable"
    writable.mkdir()
    os.chmod(str(writable), 0o777)
    os.symlink(str(home), str(writable / "linked-home"))
    target = str(writable / "linked-home" / "unit.container")
    assert read(target) == {target: "behind a link a service user could place"}


def test_large_files_are_compared_by_size_and_time_and_missing_ones_are_absent(tmp_path, monkeypatch):
    monkeypatch.setattr(drift, "HASH_LIMIT", 4)
    big = tmp_path / "big"
    big.write_text("0123456789")
    assert "size=10 mtime=" in read(big)[str(big)]
    assert read(tmp_path / "none") == {str(tmp_path / "none"): "absent"}
    assert read(tmp_path / "sub", recurse=False) == {str(tmp_path / "sub"): "absent"}


def test_top_level_only_skips_what_is_below_and_the_record_itself(tmp_path):
    (tmp_path / "spool" / "job").mkdir(parents=True)
    (tmp_path / "spool" / "job" / "request").write_text("x")
    (tmp_path / "converged.json").write_text("{}")
    (tmp_path / "managed.json").write_text("{}")
    out = read(tmp_path, recurse=False, skip=(str(tmp_path / "converged.json"),))
    assert str(tmp_path / "managed.json") in out and str(tmp_path / "spool") in out
    assert str(tmp_path / "spool" / "job") not in out and str(tmp_path / "converged.json") not in out


def test_compare_names_what_differs():
    assert drift.compare(None, "d", {})[0].startswith("no record")
    record = {"declaration": "d", "state": {"a": "x", "b": "y"}}
    assert drift.compare(record, "d", {"a": "x", "b": "y"}) == []
    assert drift.compare(record, "e", {"a": "x", "b": "y"})[0].startswith("the declaration changed")
    assert drift.compare(record, "d", {"a": "x", "c": "z"}) == ["b: absent (was y)", "c: z (was absent)"]
    many = dict(("k%02d" % i, "new") for i in range(30))
    lines = drift.compare({"declaration": "d", "state": {}}, "d", many, limit=20)
    assert len(lines) == 21 and lines[-1] == "... and 10 more"


def test_a_record_of_another_version_or_damaged_is_no_record(tmp_path):
    path = tmp_path / "converged.json"
    path.write_text("{not json")
    assert drift.load(str(path)) is None
    path.write_text(json.dumps({"version": 0, "state": {}}))
    assert drift.load(str(path)) is None
    assert drift.write(str(path), "d", {"a": "x"}, 1000) is True
    assert oct(os.stat(str(path)).st_mode & 0o777) == "0o600"
    assert drift.load(str(path))["state"] == {"a": "x"}
    assert drift.write(str(path), "d", {"a": "x"}, 1000) is False


def test_an_old_record_is_drift_so_the_full_converge_runs_by_the_clock():
    record = {"declaration": "d", "recorded_at": 1000, "state": {"a": "x"}}
    assert drift.compare(record, "d", {"a": "x"}, now=1000 + 86400, max_age=86400) == []
    assert drift.compare(record, "d", {"a": "x"}, now=1001 + 86400, max_age=86400) == [
        "the last complete converge was 86401 s ago, more than 86400 s"]
    assert drift.compare(record, "d", {"a": "x"}, now=10 ** 9, max_age=0) == []


class FakeSystemd(Host):
    """``systemctl show`` of patterns: the system's units, and each user's, with their source files."""

    def __init__(self, system, users, failing=()):
        self.system, self.users, self.failing = system, users, set(failing)

    def which(self, name, required=False):
        return "/usr/bin/" + name

    def _run(self, argv, data=None, cwd=None, env=None):
        user = runuser_user(argv)
        argv = unwrap(argv)
        assert argv[0].endswith("systemctl") and "show" in argv
        if user in self.failing:
            return 1, "", "Failed to connect to bus"
        units = self.system if user is None else self.users[user]
        return 0, "\n\n".join("\n".join("%s=%s" % kv for kv in sorted(props.items())) for props in units) + "\n", ""


def test_unit_states_of_the_system_and_of_each_users_own_units(tmp_path, monkeypatch):
    monkeypatch.setattr(systemd, "BUS_PATH", str(tmp_path / "%d-bus"))
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    for uid in (3000, 3001):
        (tmp_path / ("%d-bus" % uid)).write_text("")
    quadlets = "/home/web/.config/containers/systemd/"
    host = FakeSystemd(
        system=[{"Id": "nginx.service", "ActiveState": "active", "UnitFileState": "enabled"},
                {"Id": "user@3000.service", "ActiveState": "active", "UnitFileState": "static"}],
        users={"web": [{"Id": "web.service", "ActiveState": "activating", "SourcePath": quadlets + "web.container"},
                       {"Id": "0123abcd.timer", "ActiveState": "active", "FragmentPath": "/run/user/3000/transient/x"},
                       {"Id": "dbus.service", "ActiveState": "active", "FragmentPath": "/usr/lib/systemd/user/dbus.service"}]},
        failing=["db"])
    states = drift._unit_states(host, {"web": (3000, "/home/web"), "db": (3001, "/home/db"),
                                       "off": (3002, "/home/off")})
    assert states == {
        "unit nginx.service": "active enabled",
        "unit user@3000.service": "active static",
        "unit web.service of web": "active",  # starting is read as where it goes
        "manager of db": "not answering",
        "manager of off": "not running",
    }


def test_a_host_without_a_system_manager_is_drift_not_a_failure(tmp_path):
    class NoSystemd(FakeSystemd):
        def _run(self, argv, data=None, cwd=None, env=None):
            return 1, "", "System has not been booted with systemd as init system (PID 1). Can't operate.\n"

    states = drift._unit_states(NoSystemd([], {}), {})
    assert states == {"system manager": "not answering: System has not been booted with systemd as init system "
                                        "(PID 1). Can't operate."}

    class NoSystemctl(FakeSystemd):
        def which(self, name, required=False):
            return None

    assert drift._unit_states(NoSystemctl([], {}), {}) == {"system manager": "no systemctl"}
