import collections
import os
import pwd

import pytest
from ansible.module_utils import basic

from ansible_collections.selfhost.pi.plugins.module_utils import quadlet as qutils
from ansible_collections.selfhost.pi.plugins.module_utils import systemd
from ansible_collections.selfhost.pi.plugins.modules import quadlet

from .helpers import run_module

Pw = collections.namedtuple("Pw", "pw_name pw_uid pw_gid pw_dir")


class FakeHost:
    """Answers systemctl, journalctl and the Quadlet generator like a Debian 13 host."""

    def __init__(self):
        self.calls = []
        self.units = {}  # service -> (ActiveState, SubState)
        self.dryrun = (0, "---web.service---\n", "quadlet-generator[1]: Loading source unit file x\n")
        self.start_rc = 0
        self.stale = set()  # units whose NeedDaemonReload is yes

    def verbs(self):
        """Command names: the systemctl verb, else the program."""
        out = []
        for cmd in self.calls:
            args = [a for a in cmd[1:] if a not in ("--user", "-M") and not a.endswith("@")]
            out.append(args[0] if cmd[0].endswith("systemctl") else os.path.basename(cmd[0]))
        return out

    def __call__(self, module, cmd, environ_update=None, **kwargs):
        self.calls.append(list(cmd))
        name = os.path.basename(cmd[0])
        if name == "quadlet":
            return self.dryrun
        if name == "podman":
            return 0, "podman version 4.3.1\n", ""
        if name == "journalctl":
            return 0, "web: Error: boom\nsystemd: Failed to start web.service.\n", ""
        verb, unit = cmd[-2], cmd[-1]
        if cmd[-1] == "daemon-reload":
            return 0, "", ""
        if cmd[-3] == "show":
            active, sub = self.units.get(unit, ("inactive", "dead"))
            return 0, "ActiveState=%s\nSubState=%s\nNeedDaemonReload=%s\n" % (
                active, sub, "yes" if unit in self.stale else "no"), ""
        if verb in ("start", "restart"):
            if self.start_rc:
                self.units[unit] = ("failed", "failed")
                return self.start_rc, "", "Job for %s failed.\n" % unit
            self.units[unit] = ("active", "running")
        elif verb == "stop":
            self.units[unit] = ("inactive", "dead")
        return 0, "", ""


@pytest.fixture
def host(monkeypatch, tmp_path):
    fake = FakeHost()
    generator = tmp_path / "quadlet"
    generator.write_text("#!/bin/sh\n")
    generator.chmod(0o755)
    (tmp_path / "run").mkdir()
    users = {"web": Pw("web", os.getuid(), os.getgid(), str(tmp_path / "home" / "web"))}

    def getpwnam(name):
        if name not in users:
            raise KeyError(name)
        return users[name]

    def run_command(module, cmd, environ_update=None, **kwargs):
        return fake(module, cmd, environ_update)

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False: "/usr/bin/" + name)
    monkeypatch.setattr(pwd, "getpwnam", getpwnam)
    monkeypatch.setattr(qutils, "SYSTEM_UNIT_DIR", str(tmp_path / "etc"))
    monkeypatch.setattr(qutils, "GENERATOR", str(generator))
    monkeypatch.setattr(systemd, "BUS_PATH", str(tmp_path / "run" / "%d.bus"))
    os.mkdir(str(tmp_path / "etc"))
    fake.tmp = tmp_path
    fake.system_path = str(tmp_path / "etc" / "web.container")
    fake.bus = str(tmp_path / "run" / ("%d.bus" % os.getuid()))
    return fake


ARGS = {"name": "web", "options": {"Image": "docker.io/library/nginx:1.27", "PublishPort": ["8080:80"]},
        "install": {"WantedBy": "multi-user.target"}}


def test_new_unit_is_validated_installed_and_started(monkeypatch, host):
    failed, result = run_module(monkeypatch, quadlet, ARGS, diff=True)
    assert not failed and result["changed"]
    assert host.verbs() == ["quadlet", "show", "daemon-reload", "start", "show"]
    assert [c[1:] for c in host.calls if "systemctl" in c[0]][2] == ["start", "web.service"]
    assert result["path"] == host.system_path and result["scope"] == "system"
    assert result["service"] == "web.service" and result["active_state"] == "active"
    with open(host.system_path) as handle:
        assert handle.read() == result["content"]
    assert "PublishPort=8080:80\n" in result["content"]
    assert oct(os.stat(host.system_path).st_mode & 0o777) == "0o644"
    assert result["diff"][0]["before_header"].endswith("(absent)")
    assert result["diff"][1]["before"] == "web.service: inactive\n"
    assert result["diff"][1]["after"] == "web.service: active\n"


def test_second_run_only_reads_state(monkeypatch, host):
    run_module(monkeypatch, quadlet, ARGS)
    host.calls = []
    failed, result = run_module(monkeypatch, quadlet, ARGS, diff=True)
    assert not failed and not result["changed"] and result["diff"] == []
    assert host.verbs() == ["show"]


def test_check_mode_changes_nothing(monkeypatch, host):
    failed, result = run_module(monkeypatch, quadlet, ARGS, check_mode=True, diff=True)
    assert not failed and result["changed"] and result["active_state"] == "active"
    assert not os.path.exists(host.system_path)
    assert host.verbs() == ["quadlet", "show"]  # validated, nothing applied
    assert len(result["diff"]) == 2


def test_invalid_unit_is_refused_and_running_one_kept(monkeypatch, host):
    run_module(monkeypatch, quadlet, ARGS)
    before = open(host.system_path).read()
    host.calls = []
    host.dryrun = (1, "", "quadlet-generator[7]: Loading source unit file /tmp/x/web.container\n"
                          "quadlet-generator[7]: converting \"web.container\": unsupported key 'Bogus' in group "
                          "'Container' in /tmp/x/web.container\n")
    args = dict(ARGS, options={"Image": "x", "Bogus": 1})
    failed, result = run_module(monkeypatch, quadlet, args)
    assert failed and "unsupported key 'Bogus'" in result["msg"] and "Loading source" not in result["msg"]
    assert "nothing was changed" in result["msg"]
    assert open(host.system_path).read() == before
    assert host.verbs() == ["quadlet"]
    assert sorted(os.listdir(os.path.dirname(host.system_path))) == ["web.container"]


def test_changed_unit_restarts_active_service(monkeypatch, host):
    run_module(monkeypatch, quadlet, ARGS)
    host.calls = []
    args = dict(ARGS, options={"Image": "docker.io/library/nginx:1.28"})
    failed, result = run_module(monkeypatch, quadlet, args, diff=True)
    assert not failed and result["changed"]
    assert host.verbs() == ["quadlet", "show", "daemon-reload", "restart", "show"]
    assert result["diff"][1]["after"] == "web.service: active (restarted)\n"
    host.calls = []
    args = dict(ARGS, options={"Image": "docker.io/library/nginx:1.29"}, restart_on_change=False)
    failed, result = run_module(monkeypatch, quadlet, args)
    assert host.verbs() == ["quadlet", "show", "daemon-reload"]


def test_start_failure_reports_journal_and_keeps_file(monkeypatch, host):
    host.start_rc = 1
    failed, result = run_module(monkeypatch, quadlet, ARGS)
    assert failed and "stays installed" in result["msg"] and "Error: boom" in result["msg"]
    assert result["journal"][0] == "web: Error: boom"
    assert os.path.exists(host.system_path)
    journal = [c for c in host.calls if c[0].endswith("journalctl")][0]
    assert journal[-2:] == ["-u", "web.service"]


def test_bad_input_fails_before_any_command(monkeypatch, host):
    for args, msg in [
        (dict(ARGS, options={"Image": "x", "PublishPort": ["1:1", "2:2\n"]}),
         "options.PublishPort[1]: value contains a newline"),
        (dict(ARGS, options={"Image": "x", "Environment": {"FOO": "a\x1b[2J"}}),
         "options.Environment.FOO: value contains the control character U+001B"),
        (dict(ARGS, service={"TimeoutStartSec": "300\\  ", "ExecStartPre": "/bin/true"}),
         "service.TimeoutStartSec: value ends with a backslash"),
        (dict(ARGS, options={"Image": "x", "Volume": "/srv/%Q:/q"}), "options.Volume: %Q is not a systemd specifier"),
        (dict(ARGS, name="a/b"), "name: 'a/b' is not a valid unit name"),
        (dict(ARGS, user="nobody-here"), "user: nobody-here does not exist"),
        (dict(ARGS, manager_timeout=-1), "manager_timeout: -1 must be >= 0"),
    ]:
        failed, result = run_module(monkeypatch, quadlet, args)
        assert failed and result["msg"].startswith(msg), result["msg"]
    assert host.calls == [] and os.listdir(str(host.tmp / "etc")) == []


def test_user_unit_goes_to_users_manager(monkeypatch, host):
    open(host.bus, "w").close()
    failed, result = run_module(monkeypatch, quadlet, dict(ARGS, user="web", type="pod", options={}))
    assert not failed and result["changed"] and result["scope"] == "user"
    path = str(host.tmp / "home" / "web" / ".config" / "containers" / "systemd" / "web.pod")
    assert result["path"] == path and os.path.exists(path) and result["service"] == "web-pod.service"
    assert oct(os.stat(os.path.dirname(path)).st_mode & 0o777) == "0o755"
    assert ["-dryrun", "-user"] == host.calls[0][1:]
    assert all(c[1:4] == ["--user", "-M", "web@"] for c in host.calls if c[0].endswith("systemctl"))


def test_user_manager_missing_asks_for_linger(monkeypatch, host):
    failed, result = run_module(monkeypatch, quadlet, dict(ARGS, user="web", manager_timeout=0))
    assert failed and result["msg"].startswith("user: the systemd manager of web")
    assert "linger" in result["msg"] and host.calls == []
    # state=present needs no manager: file installed, no systemctl at all.
    failed, result = run_module(monkeypatch, quadlet, dict(ARGS, user="web", state="present"))
    assert not failed and result["changed"] and result["active_state"] == "inactive"
    assert host.verbs() == ["quadlet"]


def test_absent_stops_removes_and_reloads(monkeypatch, host):
    args = dict(ARGS, type="volume", options={"ServiceName": "appdata"})
    run_module(monkeypatch, quadlet, args)
    host.calls = []
    failed, result = run_module(monkeypatch, quadlet, {"name": "web", "type": "volume", "state": "absent"},
                                diff=True)
    assert not failed and result["changed"] and result["service"] == "appdata.service"
    assert host.verbs() == ["show", "stop", "daemon-reload", "show"]
    assert not os.path.exists(str(host.tmp / "etc" / "web.volume"))
    assert result["diff"][0]["after_header"].endswith("(absent)")
    host.calls = []
    failed, result = run_module(monkeypatch, quadlet, {"name": "web", "type": "volume", "state": "absent"})
    assert not failed and not result["changed"] and host.verbs() == ["show"]


def test_missing_generator_fails_clearly(monkeypatch, host):
    os.unlink(str(host.tmp / "quadlet"))
    failed, result = run_module(monkeypatch, quadlet, ARGS)
    assert failed and result["msg"].startswith("Quadlet needs podman >= 4.4 (Debian 13); this host has")
    assert not os.path.exists(host.system_path)


def test_user_start_failure_reads_system_journal_by_uid(monkeypatch, host):
    open(host.bus, "w").close()
    host.start_rc = 1
    failed, result = run_module(monkeypatch, quadlet, dict(ARGS, user="web"))
    assert failed and "Error: boom" in result["msg"]
    journal = [c for c in host.calls if c[0].endswith("journalctl")][0]
    uid = "_UID=%d" % os.getuid()
    assert journal[-5:] == ["_SYSTEMD_USER_UNIT=web.service", uid, "+", "USER_UNIT=web.service", uid]


def test_a_lost_daemon_reload_is_finished_on_the_next_run(monkeypatch, host):
    run_module(monkeypatch, quadlet, ARGS)
    host.calls = []
    host.stale = {"web.service"}
    failed, result = run_module(monkeypatch, quadlet, ARGS, diff=True)
    assert not failed and result["changed"]
    assert host.verbs() == ["show", "daemon-reload", "restart", "show"]
    assert "daemon-reload" in result["diff"][0]["after"]


def test_a_link_on_the_way_to_the_users_unit_directory_is_refused(monkeypatch, host):
    """~/.config -> /etc would have root read and write the system's units for the user."""
    elsewhere = host.tmp / "elsewhere"
    (elsewhere / "containers" / "systemd").mkdir(parents=True)
    (elsewhere / "containers" / "systemd" / "web.container").write_text("[Container]\nImage=root's\n")
    home = host.tmp / "home" / "web"
    home.mkdir(parents=True)
    (home / ".config").symlink_to(elsewhere)
    for check_mode in (True, False):
        failed, result = run_module(monkeypatch, quadlet, dict(ARGS, user="web", state="present"),
                                    check_mode=check_mode, diff=True)
        assert failed and "a symbolic link or a file is on the way" in result["msg"], result["msg"]
        assert "root's" not in str(result)
        # Removing it would have unlinked the file the link points at.
        failed, result = run_module(monkeypatch, quadlet, {"name": "web", "user": "web", "state": "absent"},
                                    check_mode=check_mode, diff=True)
        assert failed and "a symbolic link or a file is on the way" in result["msg"], result["msg"]
        assert "root's" not in str(result)
    assert (elsewhere / "containers" / "systemd" / "web.container").read_text() == "[Container]\nImage=root's\n"
    assert host.calls == []
