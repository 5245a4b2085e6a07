"""Quadlet units on the host: the dry run on a copy of the unit directory, and the service plan."""
import os

import pytest

from ansible_collections.selfhost.pi.plugins.module_utils import quadlet


class FakeModule:
    def __init__(self, result=(0, "---web.service---\n", "")):
        self.result = result
        self.calls = []

    def run_command(self, cmd, environ_update=None, **kwargs):
        tmpdir = (environ_update or {}).get("QUADLET_UNIT_DIRS")
        seen = {}
        if tmpdir:
            for root, dummy, files in os.walk(tmpdir):
                for name in files:
                    with open(os.path.join(root, name)) as handle:
                        seen[os.path.relpath(os.path.join(root, name), tmpdir)] = handle.read()
        self.calls.append((cmd, tmpdir, seen))
        return self.result

    def get_bin_path(self, name, required=False):
        return None

    def fail_json(self, msg, **kwargs):
        raise RuntimeError(msg)


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
    module = FakeModule()
    error, warnings = quadlet.validate_dryrun(module, str(unit_dir), {"web.container": "new\n"},
                                              generator="/q")
    assert error is None and warnings == []
    cmd, tmpdir, seen = module.calls[0]
    assert cmd == ["/q", "-dryrun"]
    assert seen == {"app.pod": "[Pod]\n", "web.container": "new\n", os.path.join("sub", "db.volume"): "[Volume]\n",
                    os.path.join("web.container.d", "10-x.conf"): "[Container]\n"}
    assert not os.path.exists(tmpdir)
    # A user's directory has no users/ special case, and -user is passed.
    quadlet.validate_dryrun(module, str(unit_dir), {"web.container": "new\n"}, user="web", generator="/q")
    cmd, dummy, seen = module.calls[1]
    assert cmd == ["/q", "-dryrun", "-user"] and os.path.join("users", "u.container") in seen


def test_validate_dryrun_reports_errors_and_other_units(tmp_path):
    module = FakeModule((1, "---web.service---\n", STDERR))
    error, warnings = quadlet.validate_dryrun(module, str(tmp_path / "missing"), {"web.container": "x"},
                                              generator="/q")
    assert error.startswith("converting \"web.container\": unsupported key 'Bogus'")
    assert "Loading source" not in error
    assert any("another unit" in w and "broken.container" in w for w in warnings)
    # Only other units fail: a warning, not an error.
    module = FakeModule((1, "---web.service---\n", 'converting "broken.container": bad\n'))
    error, warnings = quadlet.validate_dryrun(module, str(tmp_path), {"web.container": "x"}, generator="/q")
    assert error is None and len(warnings) == 1
    # Failure that names no unit and generates nothing is still a failure.
    module = FakeModule((1, "", "panic: boom\n"))
    error, dummy = quadlet.validate_dryrun(module, str(tmp_path), {"web.container": "x"}, generator="/q")
    assert "rc=1" in error and "panic: boom" in error


def test_find_generator_missing_names_podman_version(tmp_path):
    class Module(FakeModule):
        def get_bin_path(self, name, required=False):
            return "/usr/bin/podman"

    module = Module((0, "podman version 4.3.1\n", ""))
    with pytest.raises(RuntimeError, match=r"Quadlet needs podman >= 4.4 \(Debian 13\); this host has podman "
                                           r"version 4.3.1"):
        quadlet.find_generator(module, str(tmp_path / "quadlet"))


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
