"""unit_set: a service user's units converged together (one dry run, one reload, ordered actions).

The host is a fake that answers systemctl and the Quadlet generator like a
Debian 13 host (podman 5.4's generator is not on this machine); the files
are real, in a temporary home.
"""
import collections
import os
import pwd

import pytest

from ansible_collections.selfhost.pi.plugins.module_utils import quadlet, service_units, systemd, unit_set
from ansible_collections.selfhost.pi.plugins.module_utils.errors import ValidationError
from ansible_collections.selfhost.pi.plugins.module_utils.host import Host
from ...argv import unwrap

Pw = collections.namedtuple("Pw", "pw_name pw_uid pw_gid pw_dir")
PARAMS = {"default_service_options": {"Restart": "always", "TimeoutStartSec": 300}}
SPEC = {"name": "board", "uid": 2301, "publish_ports": ["127.0.0.1:8301:8080"],
        "containers": [{"name": "db", "image": "localhost/valkey:1"},
                       {"name": "app", "image": "localhost/board:1", "requires": ["db"]}],
        "jobs": [{"name": "snapshot", "schedule": "hourly", "exec": "valkey-cli save"}]}


class FakeHost(Host):
    def __init__(self, check_mode=False):
        self.check_mode = check_mode
        self.calls = []
        self.active = {}           # unit -> ActiveState
        self.dryrun = (0, "---board.service---\n", "")
        self.dryrun_units = []     # file names in each dry run's directory

    def checked(self):
        other = FakeHost(True)
        other.calls, other.active, other.dryrun, other.dryrun_units = (
            self.calls, self.active, self.dryrun, self.dryrun_units)
        return other

    def which(self, name, required=False):
        return "/usr/bin/" + name

    def warn(self, msg):
        self.calls.append(["warn", msg])

    def verbs(self):
        out = []
        for cmd in self.calls:
            if cmd[0].endswith("systemctl"):
                args = [a for a in cmd[1:] if a not in ("--user", "-M") and not a.endswith("@")]
                out.append(" ".join([args[0]] + [a for a in args[1:] if not a.startswith("--")]))
            else:
                out.append(os.path.basename(cmd[0]))
        return out

    def _run(self, argv, data=None, cwd=None, env=None):
        argv = unwrap(argv)
        self.calls.append(list(argv))
        if os.path.basename(argv[0]) == "quadlet":
            self.dryrun_units.append(sorted(os.listdir(env["QUADLET_UNIT_DIRS"])))
            return self.dryrun
        args = [a for a in argv[1:] if a not in ("--user", "-M") and not a.endswith("@")]
        verb, units = args[0], [a for a in args[1:] if not a.startswith("--")]
        if verb == "show":
            return 0, "\n\n".join("Id=%s\nActiveState=%s\nSubState=%s\nNeedDaemonReload=no" % (
                u, self.active.get(u, "inactive"), "running" if self.active.get(u) == "active" else "dead")
                for u in units) + "\n", ""
        if verb in ("start", "restart"):
            self.active[units[0]] = "active"
        elif verb == "stop":
            self.active[units[0]] = "inactive"
        return 0, "", ""


@pytest.fixture
def home(monkeypatch, tmp_path):
    generator = tmp_path / "quadlet"
    generator.write_text("#!/bin/sh\n")
    generator.chmod(0o755)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / ("%d.bus" % os.getuid())).write_text("")
    users = {"board": Pw("board", os.getuid(), os.getgid(), str(tmp_path / "board"))}

    def getpwnam(name):
        if name not in users:
            raise KeyError(name)
        return users[name]

    monkeypatch.setattr(pwd, "getpwnam", getpwnam)
    monkeypatch.setattr(quadlet, "GENERATOR", str(generator))
    monkeypatch.setattr(systemd, "BUS_PATH", str(tmp_path / "run" / "%d.bus"))
    return tmp_path / "board"


def units():
    return service_units.units(SPEC, "/home/board", PARAMS, {}, {})


def converge(host, **kwargs):
    return unit_set.converge(host, "board", "/home/board", units(), **kwargs)


def test_first_converge_checks_all_units_in_one_dry_run_then_starts_in_order(home):
    host = FakeHost()
    plan = converge(host)
    assert plan.changed
    assert host.dryrun_units == [["board-app.container", "board-db.container", "board-job-snapshot.container",
                                  "board.pod"]]
    assert host.verbs() == ["quadlet", "show board.service board-db.service board-app.service "
                            "board-job-snapshot.service board-job-snapshot.timer",
                            "daemon-reload", "start board.service", "start board-db.service",
                            "start board-app.service", "start board-job-snapshot.timer",
                            "show board.service board-db.service board-app.service board-job-snapshot.timer"]
    assert "board-job-snapshot.service" not in host.active        # its timer starts it, never the converge
    assert (home / ".config/containers/systemd/board.pod").read_text().startswith("# Managed by Ansible")
    timer = home / ".config/systemd/user/board-job-snapshot.timer"
    assert "OnCalendar=hourly\n" in timer.read_text()
    link = home / ".config/systemd/user/timers.target.wants/board-job-snapshot.timer"
    assert os.readlink(str(link)) == str(timer)
    assert [r["active_state"] for r in plan.results()] == ["active", "active", "active", "inactive", "active"]


def test_second_converge_only_reads_state(home):
    host = FakeHost()
    converge(host)
    host.calls[:] = []
    plan = converge(host)
    assert not plan.changed and plan.diffs() == []
    assert host.verbs() == ["show board.service board-db.service board-app.service board-job-snapshot.service "
                            "board-job-snapshot.timer"]


def test_check_mode_shows_the_timer_its_link_and_the_units_and_changes_nothing(home):
    host = FakeHost(check_mode=True)
    plan = converge(host)
    assert plan.changed and not home.exists()
    headers = [d["after_header"] for d in plan.diffs()]
    assert str(home / ".config/systemd/user/board-job-snapshot.timer") in headers
    assert str(home / ".config/systemd/user/timers.target.wants/board-job-snapshot.timer") in headers
    assert str(home / ".config/containers/systemd/board-job-snapshot.container") in headers
    assert "service board-job-snapshot.timer" in headers
    assert "service board-job-snapshot.service" not in headers
    assert [v for v in host.verbs() if v not in ("quadlet",) and not v.startswith("show")] == []


def test_a_changed_pod_restarts_the_pod_once_not_each_member(home):
    host = FakeHost()
    converge(host)
    changed = units()
    changed[0]["content"] += "# changed\n"
    changed[2]["content"] += "# changed\n"   # the app too: the pod's restart restarts it already
    host.calls[:] = []
    unit_set.converge(host, "board", "/home/board", changed)
    assert [v for v in host.verbs() if not v.startswith("show")] == ["quadlet", "daemon-reload",
                                                                     "restart board.service"]


def test_a_changed_member_restarts_only_that_member(home):
    host = FakeHost()
    converge(host)
    changed = units()
    changed[2]["content"] += "# changed\n"
    host.calls[:] = []
    unit_set.converge(host, "board", "/home/board", changed)
    assert [v for v in host.verbs() if not v.startswith("show")] == ["quadlet", "daemon-reload",
                                                                     "restart board-app.service"]


def test_a_changed_job_is_not_run_and_a_changed_timer_is_rearmed(home):
    host = FakeHost()
    converge(host)
    changed = units()
    changed[3]["content"] += "# changed\n"
    changed[4]["content"] = changed[4]["content"].replace("hourly", "daily")
    host.calls[:] = []
    unit_set.converge(host, "board", "/home/board", changed)
    assert [v for v in host.verbs() if not v.startswith("show")] == ["quadlet", "daemon-reload",
                                                                     "restart board-job-snapshot.timer"]


def test_restart_asked_for_restarts_those_units(home):
    host = FakeHost()
    converge(host)
    host.calls[:] = []
    converge(host, restart={"board-db.container"})
    assert [v for v in host.verbs() if not v.startswith("show")] == ["restart board-db.service"]


def test_a_rejected_unit_changes_nothing(home):
    host = FakeHost()
    host.dryrun = (1, "", "quadlet-generator[1]: converting \"board-db.container\": unsupported key 'Bad'\n")
    with pytest.raises(ValidationError) as info:
        converge(host)
    assert "the Quadlet generator rejects the units, nothing was changed" in str(info.value)
    assert not home.exists()


def test_a_link_on_the_way_is_refused(home, tmp_path):
    os.makedirs(str(home / ".config/systemd"))
    (tmp_path / "elsewhere").mkdir()
    os.symlink(str(tmp_path / "elsewhere"), str(home / ".config/systemd/user"))
    with pytest.raises(Exception) as info:
        converge(FakeHost())
    assert "link" in str(info.value)
    assert os.listdir(str(tmp_path / "elsewhere")) == []


def test_a_user_not_made_yet_is_planned_without_a_manager(home):
    host = FakeHost(check_mode=True)
    plan = unit_set.converge(host, "nobody-yet", "/nonexistent/nobody-yet", units())
    assert plan.changed
    assert host.verbs() == ["quadlet"]
    assert all(r["active_state"] == "inactive" for r in plan.results())


# ---------------------------------------------------------------- units the service no longer declares

def test_a_job_taken_out_of_the_spec_is_stopped_and_removed(home):
    host = FakeHost()
    converge(host)
    timer = home / ".config/systemd/user/board-job-snapshot.timer"
    link = home / ".config/systemd/user/timers.target.wants/board-job-snapshot.timer"
    assert timer.exists() and os.path.islink(str(link))
    host.calls[:] = []
    plan = unit_set.converge(host, "board", "/home/board", units()[:3])
    assert plan.changed
    assert [v for v in host.verbs() if not v.startswith("show")] == ["stop board-job-snapshot.timer",
                                                                     "daemon-reload"]
    assert not timer.exists() and not os.path.lexists(str(link))
    assert not (home / ".config/containers/systemd/board-job-snapshot.container").exists()
    assert [r["active_state"] for r in plan.results()][-2:] == ["removed", "removed"]
    host.calls[:] = []
    assert not unit_set.converge(host, "board", "/home/board", units()[:3]).changed


def test_a_service_that_becomes_a_pod_loses_its_container_unit(home):
    host = FakeHost()
    single = service_units.units({"name": "board", "uid": 2301, "image": "localhost/board:1"}, "/home/board",
                                 PARAMS, {}, {})
    unit_set.converge(host, "board", "/home/board", single)
    assert (home / ".config/containers/systemd/board.container").exists()
    host.calls[:] = []
    host.dryrun_units[:] = []
    check = converge(host.checked())
    assert str(home / ".config/containers/systemd/board.container (absent)") in [
        d["after_header"] for d in check.diffs()]
    assert host.dryrun_units == [["board-app.container", "board-db.container", "board-job-snapshot.container",
                                  "board.pod"]]                  # the old unit is left out of the dry run
    host.calls[:] = []
    converge(host)
    assert not (home / ".config/containers/systemd/board.container").exists()
    # The container's board.service is stopped under its old definition; then it is the pod's.
    assert [v for v in host.verbs() if not v.startswith("show")] == [
        "quadlet", "stop board.service", "daemon-reload", "restart board.service", "start board-db.service",
        "start board-app.service", "start board-job-snapshot.timer"]


def test_files_the_collection_did_not_write_are_left_alone(home):
    host = FakeHost()
    converge(host)
    mine = home / ".config/containers/systemd/board-sidecar.container"
    mine.write_text("[Container]\nImage=localhost/x:1\n")
    other = home / ".config/systemd/user/board-job-old.timer"
    other.write_text("[Timer]\nOnCalendar=daily\n")
    host.calls[:] = []
    assert not converge(host).changed
    assert mine.exists() and other.exists()
