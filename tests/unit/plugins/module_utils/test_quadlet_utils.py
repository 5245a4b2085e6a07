"""Quadlet units on the host: the dry run on a copy of the unit directory, and the service plan."""
import os
import resource

import pytest

from ansible_collections.selfhost.pi.plugins.module_utils import quadlet
from ansible_collections.selfhost.pi.plugins.module_utils.errors import HostStateError, UnsafePathError
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
                    with open(os.path.join(root, name), errors="replace") as handle:
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


SECRET = "root:$y$j9T$SECRET-HASH:19000:0:99999:7:::\n"


def test_dry_run_copies_regular_files_only_and_never_follows_links(tmp_path):
    """Finding 5: root copied the user's unit directory following links (a link to /etc/shadow was quoted
    back in a warning). Links, FIFOs and devices are left out, with a warning that never reads them."""
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    secret = outside / "shadow"
    secret.write_text(SECRET)
    secret.chmod(0o600)
    (outside / "dir" / "stolen.container").write_text(SECRET)
    unit_dir = tmp_path / "systemd"
    unit_dir.mkdir()
    (unit_dir / "app.pod").write_text("[Pod]\n")
    (unit_dir / "shadow.container").symlink_to(secret)
    (unit_dir / "null.volume").symlink_to("/dev/null")
    os.mkfifo(str(unit_dir / "fifo.network"))
    (unit_dir / "sub").symlink_to(outside / "dir")              # a linked subdirectory
    (unit_dir / "web.container.d").symlink_to(outside / "dir")  # a linked drop-in directory
    with open(str(unit_dir / "big.container"), "wb") as handle:  # sparse: costs no disk
        handle.truncate(quadlet.MAX_UNIT_FILE_BYTES + 1)
    (unit_dir / "notes.txt").symlink_to(secret)                 # not a unit: ignored without a word
    host = FakeHost()
    error, warnings = quadlet.validate_dryrun(host, str(unit_dir), {"web.container": "new\n"}, generator="/q")
    assert error is None
    dummy, tmpdir, seen = host.calls[0]
    assert seen == {"app.pod": "[Pod]\n", "web.container": "new\n"}
    assert not any("SECRET" in text for text in seen.values())
    assert sorted(w.split(" ")[0] for w in warnings) == sorted(
        str(unit_dir / name) for name in ("big.container", "fifo.network", "null.volume", "shadow.container",
                                          "sub", "web.container.d"))
    assert all("left out of the dry run" in w for w in warnings)
    assert not any("SECRET" in w or str(outside) in w for w in warnings)
    assert not os.path.exists(tmpdir)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file another owner")
def test_dry_run_copies_only_files_of_the_directory_owner(tmp_path):
    """A hard link keeps its owner: a link to another account's file (where fs.protected_hardlinks allows
    one) is a file owned by someone else, and is left out unread."""
    unit_dir = tmp_path / "systemd"
    unit_dir.mkdir()
    (unit_dir / "mine.volume").write_text("[Volume]\n")
    (unit_dir / "theirs.container").write_text(SECRET)
    os.chown(str(unit_dir / "theirs.container"), 4242, -1)
    host = FakeHost()
    dummy, warnings = quadlet.validate_dryrun(host, str(unit_dir), {"web.container": "new\n"}, generator="/q")
    assert host.calls[0][2] == {"mine.volume": "[Volume]\n", "web.container": "new\n"}
    assert warnings == ["%s is owned by uid 4242, not by the directory's owner (uid %d), left out of the dry run"
                        % (unit_dir / "theirs.container", os.geteuid())]


def test_dry_run_link_to_dev_zero_does_not_fill_tmp(tmp_path):
    """Finding 5: a link to /dev/zero filled /tmp. The file size limit turns the old endless copy into a
    failed write (EFBIG) instead of filling this machine's disk, so the test can fail without harm."""
    unit_dir = tmp_path / "systemd"
    unit_dir.mkdir()
    (unit_dir / "zero.container").symlink_to("/dev/zero")
    host = FakeHost()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4 << 20, hard))
    try:
        error, warnings = quadlet.validate_dryrun(host, str(unit_dir), {"web.container": "new\n"},
                                                  generator="/q")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert error is None
    assert host.calls[0][2] == {"web.container": "new\n"}
    assert warnings == ["%s is not a regular file (a symbolic link), left out of the dry run"
                        % (unit_dir / "zero.container")]


def test_dry_run_copy_is_bounded(tmp_path, monkeypatch):
    """However many files a user puts there, root copies a bounded amount to /tmp."""
    monkeypatch.setattr(quadlet, "MAX_UNIT_TREE_FILES", 2)
    monkeypatch.setattr(quadlet, "MAX_UNIT_DIR_DEPTH", 1)
    unit_dir = tmp_path / "systemd"
    (unit_dir / "a" / "b").mkdir(parents=True)
    for name in ("1.volume", "2.volume", "3.volume"):
        (unit_dir / name).write_text("[Volume]\n")
    (unit_dir / "a" / "in.volume").write_text("[Volume]\n")
    host = FakeHost()
    dummy, warnings = quadlet.validate_dryrun(host, str(unit_dir), {"web.container": "new\n"}, generator="/q")
    assert sorted(host.calls[0][2]) == ["1.volume", "2.volume", "web.container"]
    assert warnings == ["%s is past the first 2 files or %d bytes, left out of the dry run"
                        % (unit_dir / "3.volume", quadlet.MAX_UNIT_TREE_BYTES),
                        "%s is deeper than 1 directories, left out of the dry run" % (unit_dir / "a" / "b"),
                        "%s is past the first 2 files or %d bytes, left out of the dry run"
                        % (unit_dir / "a" / "in.volume", quadlet.MAX_UNIT_TREE_BYTES)]


@pytest.mark.parametrize("link", ["systemd", "containers"])
def test_dry_run_refuses_a_unit_directory_behind_a_link(tmp_path, link):
    """~/.config/containers/systemd (or a directory above it) linked elsewhere is not walked as root."""
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "systemd").mkdir(parents=True)
    (elsewhere / "systemd" / "stolen.container").write_text(SECRET)
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    if link == "systemd":
        (home / ".config" / "containers").mkdir()
        (home / ".config" / "containers" / "systemd").symlink_to(elsewhere / "systemd")
    else:
        (home / ".config" / "containers").symlink_to(elsewhere)
    for directory in (home, home / ".config", home / ".config" / "containers"):
        if not directory.is_symlink():  # as on a host: the user owns its tree (a root-only directory's links are root's)
            os.chown(directory, 4242, 4242)
    host = FakeHost()
    unit_dir = str(home / ".config" / "containers" / "systemd")
    with pytest.raises(UnsafePathError, match="^%s: " % unit_dir):
        quadlet.validate_dryrun(host, unit_dir, {"web.container": "new\n"}, user="web", generator="/q")
    assert host.calls == []


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


# ------------------------------------------------------------ before podman is installed

def test_check_mode_without_the_generator_plans_and_runs_nothing(tmp_path, monkeypatch):
    """--check on a freshly flashed host: no podman yet, so no dry run; a warning says the real run checks them."""
    monkeypatch.setattr(quadlet, "GENERATOR", str(tmp_path / "no-quadlet"))
    host = FakeHost()
    host.check_mode = True
    error, warnings = quadlet.validate_dryrun(host, str(tmp_path / "units"), {"web.container": "x", "web.pod": "y"})
    assert error is None and host.calls == []
    assert warnings == ["the Quadlet generator (%s) is not installed yet: podman's package brings it, and the real "
                        "run checks web.container, web.pod with it" % (tmp_path / "no-quadlet")]


def test_a_real_runs_plan_pass_without_the_generator_fails(tmp_path, monkeypatch):
    """The services module plans a real run in check mode (host.checked()): there a missing podman is an error."""
    monkeypatch.setattr(quadlet, "GENERATOR", str(tmp_path / "no-quadlet"))
    host = FakeHost().checked()
    assert host.check_mode and not host.plans_missing_programs()
    with pytest.raises(HostStateError, match="Quadlet needs podman >= 4.4"):
        quadlet.validate_dryrun(host, str(tmp_path / "units"), {"web.container": "x"})
