"""Quadlet units on the host: the dry run on a copy of the unit directory, and the service plan."""
import os

import pytest

from ansible_collections.selfhost.pi.plugins.module_utils import quadlet
from ansible_collections.selfhost.pi.plugins.module_utils.errors import HostStateError
from ansible_collections.selfhost.pi.plugins.module_utils.host import Host


class FakeHost(Host):
    """Answers the Quadlet generator (not on this Debian 12 machine) and records what it was shown."""

    def __init__(self, result=(0, "---web.service---\n", "")):
        self.result = result
        self.calls = []
        self.warnings = []

    def _run(self, argv, data=None, cwd=None, env=None):
        tmpdir = (env or {}).get("QUADLET_UNIT_DIRS")
        seen = {}
        if tmpdir:
            for root, dummy, files in os.walk(tmpdir):
                for name in files:
                    with open(os.path.join(root, name)) as handle:
                        seen[os.path.relpath(os.path.join(root, name), tmpdir)] = handle.read()
        self.calls.append((argv, tmpdir, seen))
        return self.result

    def which(self, name, required=False):
        return None

    def warn(self, msg):
        self.warnings.append(msg)


# ------------------------------------------------------------ dry run

STDERR = (
    "quadlet-generator[9]: Loading source unit file /tmp/q/web.container\n"
    "quadlet-generator[9]: Warning: web.container specifies the image \"alpine\" which not a fully qualified\n"
    "quadlet-generator[9]: Warning: other.container specifies the image \"alpine\" which not a fully qualified\n"
    "quadlet-generator[9]: converting \"web.container\": unsupported key 'Bogus' in group 'Container' in "
    "/tmp/q/web.container\n"
    "converting \"broken.container\": unsupported key 'X' in group 'Container' in /tmp/q/broken.container\n"
    "converting \"app.pod\": unsupported key 'Y' in group 'Pod'\n"
    "converting \"xweb.container\": no Image or Rootfs key specified\n"
)


def test_parse_dryrun_sorts_lines():
    mine, warnings, others = quadlet.parse_dryrun(
        STDERR, {"web.container": "[Container]\nPod=app.pod\n"}, "/tmp/q", "/etc/containers/systemd")
    assert mine == [
        "converting \"web.container\": unsupported key 'Bogus' in group 'Container' in "
        "/etc/containers/systemd/web.container",
        "converting \"app.pod\": unsupported key 'Y' in group 'Pod'",  # referenced by Pod=app.pod
    ]
    assert warnings == ["Warning: web.container specifies the image \"alpine\" which not a fully qualified"]
    assert [line.split('"')[1] for line in others] == ["broken.container", "xweb.container"]


def test_parse_dryrun_load_error_is_mine():
    err = 'quadlet-generator[1]: error loading "/tmp/q/web.container", file contains line 1: "[C"\n'
    mine, dummy, others = quadlet.parse_dryrun(err, {"web.container": ""})
    assert len(mine) == 1 and not others


def test_validate_dryrun_copies_siblings_and_dropins(tmp_path):
    unit_dir = tmp_path / "systemd"
    (unit_dir / "sub").mkdir(parents=True)
    (unit_dir / "users").mkdir()
    (unit_dir / "web.container.d").mkdir()
    (unit_dir / "app.pod").write_text("[Pod]\n")
    (unit_dir / "web.container").write_text("old\n")
    (unit_dir / "sub" / "db.volume").write_text("[Volume]\n")
    (unit_dir / "users" / "u.container").write_text("x\n")
    (unit_dir / "web.container.d" / "10-x.conf").write_text("[Container]\n")
    (unit_dir / "notes.txt").write_text("no\n")
    (unit_dir / ".web.container.tmp").write_text("no\n")
    host = FakeHost()
    error, warnings = quadlet.validate_dryrun(host, str(unit_dir), {"web.container": "new\n"},
                                              generator="/q")
    assert error is None and warnings == []
    cmd, tmpdir, seen = host.calls[0]
    assert cmd == ["/q", "-dryrun"]
    assert seen == {"app.pod": "[Pod]\n", "web.container": "new\n", os.path.join("sub", "db.volume"): "[Volume]\n",
                    os.path.join("web.container.d", "10-x.conf"): "[Container]\n"}
    assert not os.path.exists(tmpdir)
    # A user's directory has no users/ special case, and -user is passed.
    quadlet.validate_dryrun(host, str(unit_dir), {"web.container": "new\n"}, user="web", generator="/q")
    cmd, dummy, seen = host.calls[1]
    assert cmd == ["/q", "-dryrun", "-user"] and os.path.join("users", "u.container") in seen


def test_validate_dryrun_reports_errors_and_other_units(tmp_path):
    host = FakeHost((1, "---web.service---\n", STDERR))
    error, warnings = quadlet.validate_dryrun(host, str(tmp_path / "missing"), {"web.container": "x"},
                                              generator="/q")
    assert error.startswith("converting \"web.container\": unsupported key 'Bogus'")
    assert "Loading source" not in error
    assert any("another unit" in w and "broken.container" in w for w in warnings)
    # Only other units fail: a warning, not an error.
    host = FakeHost((1, "---web.service---\n", 'converting "broken.container": bad\n'))
    error, warnings = quadlet.validate_dryrun(host, str(tmp_path), {"web.container": "x"}, generator="/q")
    assert error is None and len(warnings) == 1
    # Failure that names no unit and generates nothing is still a failure.
    host = FakeHost((1, "", "panic: boom\n"))
    error, dummy = quadlet.validate_dryrun(host, str(tmp_path), {"web.container": "x"}, generator="/q")
    assert "rc=1" in error and "panic: boom" in error


def test_find_generator_missing_names_podman_version(tmp_path):
    class Podman43(FakeHost):
        def which(self, name, required=False):
            return "/usr/bin/podman"

    host = Podman43((0, "podman version 4.3.1\n", ""))
    with pytest.raises(HostStateError, match=r"Quadlet needs podman >= 4.4 \(Debian 13\); this host has podman "
                                           r"version 4.3.1"):
        quadlet.find_generator(host, str(tmp_path / "quadlet"))


# ------------------------------------------------------------ plan

@pytest.mark.parametrize("state, active, sub, changed, restart, expected", [
    ("started", "inactive", "dead", False, True, ("start", "active")),
    ("started", "failed", "failed", False, True, ("start", "active")),
    ("started", "activating", "auto-restart", False, True, ("start", "active")),
    ("started", "active", "running", False, True, (None, "active")),
    ("started", "active", "running", True, True, ("restart", "active")),
    ("started", "active", "running", True, False, (None, "active")),
    ("restarted", "active", "running", False, True, ("restart", "active")),
    ("stopped", "active", "running", False, True, ("stop", "inactive")),
    ("stopped", "activating", "auto-restart", False, True, ("stop", "inactive")),
    ("stopped", "failed", "failed", True, True, (None, "failed")),
    ("present", "active", "running", True, True, (None, "active")),
    ("absent", "active", "running", True, True, ("stop", "inactive")),
    ("absent", "failed", "failed", True, True, (None, "inactive")),
])
def test_plan_service(state, active, sub, changed, restart, expected):
    assert quadlet.plan_service(state, active, changed, restart, sub) == expected
