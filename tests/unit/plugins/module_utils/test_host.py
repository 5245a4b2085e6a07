"""Host.program: the one rule for a program that an earlier task only planned to install (--check on a fresh host)."""
import pytest

from ansible_collections.selfhost.pi.plugins.module_utils.errors import HostStateError
from ansible_collections.selfhost.pi.plugins.module_utils.host import Host


class FakeHost(Host):
    def __init__(self, check_mode=False, found=()):
        self.check_mode = check_mode
        self.found = dict((name, "/usr/bin/" + name) for name in found)

    def _run(self, argv, data=None, cwd=None, env=None):
        raise AssertionError("nothing runs: %r" % argv)

    def which(self, name, required=False):
        return self.found.get(name)

    def warn(self, msg):
        raise AssertionError(msg)


def test_an_installed_program_is_its_path():
    assert FakeHost(found=["restic"]).program("restic") == "/usr/bin/restic"
    assert FakeHost(check_mode=True, found=["restic"]).program("restic") == "/usr/bin/restic"


def test_a_missing_program_in_check_mode_is_planned():
    host = FakeHost(check_mode=True)
    assert host.plans_missing_programs()
    assert host.program("restic") is None


def test_a_missing_program_in_a_real_run_is_an_error():
    with pytest.raises(HostStateError, match="restic: command not found on the host"):
        FakeHost().program("restic")


def test_a_real_runs_plan_pass_does_not_plan_missing_programs():
    checked = FakeHost().checked()
    assert checked.check_mode and not checked.plans_missing_programs()
    with pytest.raises(HostStateError):
        checked.program("podman")
    assert FakeHost(check_mode=True).checked().program("podman") is None


def test_a_path_is_checked_for_execution(tmp_path):
    script = tmp_path / "selfhost-restic"
    script.write_text("#!/bin/sh\n")
    assert FakeHost(check_mode=True).program(str(script)) is None   # not executable yet
    script.chmod(0o755)
    assert FakeHost().program(str(script)) == str(script)
    with pytest.raises(HostStateError, match="selfhost-restic-gone"):
        FakeHost().program(str(tmp_path / "selfhost-restic-gone"))
