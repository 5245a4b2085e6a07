"""Reading many managers' unit states at once: host.run_many and systemd.prefetch_states.

run_many starts real processes here (sh), so order, exit codes and a missing
program are the real thing; the systemd side is a fake that answers
``systemctl show`` like systemd 257 and counts the calls.
"""
import os

import pytest

from ansible_collections.selfhost.pi.plugins.module_utils import host as host_utils
from ansible_collections.selfhost.pi.plugins.module_utils import service_set, systemd
from ansible_collections.selfhost.pi.plugins.module_utils.errors import CommandError
from ansible_collections.selfhost.pi.plugins.module_utils.host import Host, ProcessHost
from ...argv import runuser_user, unwrap


def test_side_by_side_keeps_the_order_the_exit_codes_and_stderr():
    calls = [(None, ["sh", "-c", "sleep 0.%d; echo out%d; echo err%d >&2; exit %d" % (9 - i, i, i, i % 3)], None)
             for i in range(10)]  # more than one batch, the first started finishing last
    results = ProcessHost().run_many(calls)
    assert [r[0] for r in results] == [i % 3 for i in range(10)]
    assert [r[1] for r in results] == ["out%d\n" % i for i in range(10)]
    assert [r[2] for r in results] == ["err%d\n" % i for i in range(10)]


def test_side_by_side_passes_the_environment_and_runs_in_root_dir():
    (rc, out, err), = ProcessHost().run_many([(None, ["sh", "-c", "echo $SELFHOST_X $LC_ALL; pwd"],
                                               {"SELFHOST_X": "yes"})])
    assert (rc, out) == (0, "yes C\n/\n")


def test_side_by_side_reports_a_missing_program_without_raising():
    (rc, out, err), = ProcessHost().run_many([(None, ["/nonexistent/program"], None)])
    assert rc == 127 and "nonexistent" in err


class FakeSystemd(Host):
    """Answers ``systemctl show`` for the system manager and users' managers; counts the calls."""

    def __init__(self, states=None, failing=()):
        self.states = states or {}     # (user or None, unit) -> ActiveState
        self.failing = set(failing)    # users whose manager does not answer
        self.calls = []

    def which(self, name, required=False):
        return "/usr/bin/" + name

    def _run(self, argv, data=None, cwd=None, env=None):
        user = runuser_user(argv)
        argv = unwrap(argv)
        self.calls.append((user, list(argv)))
        if user in self.failing:
            return 1, "", "Failed to connect to bus"
        args = [a for a in argv[1:] if a != "--user"]
        assert args[0] == "show" and (argv[1] == "--user") == (user is not None)
        units = [a for a in args[1:] if not a.startswith("-")]
        return 0, "\n\n".join("Id=%s\nActiveState=%s\nSubState=x\nNeedDaemonReload=no"
                              % (u, self.states.get((user, u), "inactive")) for u in units) + "\n", ""


@pytest.fixture
def buses(tmp_path, monkeypatch):
    """Users' managers are running when their bus socket exists (here a plain file)."""
    monkeypatch.setattr(systemd, "BUS_PATH", str(tmp_path / "%d-bus"))
    monkeypatch.setattr(os, "geteuid", lambda: 0)

    def running(*uids):
        for uid in uids:
            (tmp_path / ("%d-bus" % uid)).write_text("")
    return running


def test_prefetched_states_are_used_once_then_asked_again(buses):
    buses(3000, 3001)
    host = FakeSystemd({("web", "web.service"): "active", (None, "user@3000.service"): "active"})
    systemd.prefetch_states(host, [(None, None, ["user@3000.service", "user@3001.service"]),
                                   ("web", 3000, ["web.service"]), ("db", 3001, ["db.service"])])
    assert len(host.calls) == 3  # one per manager
    web = systemd.Systemctl(host, "web", 3000)
    assert web.states(["web.service"]) == {"web.service": ("active", "x", False)}
    assert systemd.Systemctl(host, None).is_active("user@3000.service") == "active"
    assert len(host.calls) == 3  # both answered from the prefetch
    web.states(["web.service"])  # used up: asks systemd
    assert len(host.calls) == 4


def test_a_unit_set_not_all_prefetched_is_asked_for_whole(buses):
    buses(3000)
    host = FakeSystemd()
    systemd.prefetch_states(host, [("web", 3000, ["web.service"])])
    systemd.Systemctl(host, "web", 3000).states(["web.service", "web-old.service"])
    assert host.calls[-1][1][-2:] == ["web.service", "web-old.service"]


def test_a_manager_not_running_or_failing_is_left_to_the_later_call(buses):
    buses(3001)  # 3000 has no bus: not asked at all; 3001 fails
    host = FakeSystemd(failing={"db"})
    systemd.prefetch_states(host, [("web", 3000, ["web.service"]), ("db", 3001, ["db.service"])])
    assert [user for user, _argv in host.calls] == ["db"]
    with pytest.raises(CommandError):  # the later call reports the failure itself
        systemd.Systemctl(host, "db", 3001).states(["db.service"])


def test_a_host_without_run_many_prefetches_nothing():
    class Bare(object):
        pass
    systemd._PREFETCHED[(None, "x.service")] = ("active", "running", False)
    systemd.prefetch_states(Bare(), [(None, None, ["x.service"])])
    assert systemd._PREFETCHED == {}


def test_an_archive_shared_by_services_is_hashed_once(tmp_path, monkeypatch):
    archive = tmp_path / "hello.tar"
    archive.write_bytes(b"layer" * 1000)
    opened = []
    real_open = open
    monkeypatch.setattr(service_set, "open", lambda p, m="r": opened.append(p) or real_open(p, m), raising=False)
    first = service_set.file_digest(str(archive))
    assert service_set.file_digest(str(archive)) == first and len(opened) == 1
    archive.write_bytes(b"other" * 1001)  # a new archive: hashed again
    assert service_set.file_digest(str(archive)) != first and len(opened) == 2


def test_checked_host_reads_through_the_real_hosts_run_many():
    class Recording(host_utils.ProcessHost):
        def run_many(self, calls):
            self.seen = calls
            return super(Recording, self).run_many(calls)
    inner = Recording()
    (rc, out, err), = inner.checked().run_many([(None, ["echo", "hi"], None)])
    assert (rc, out) == (0, "hi\n") and inner.seen
