"""The update runner (module_utils/update_runner.py and roles/service/files/selfhost-update).

The spool and the state directory are real temporary directories; podman
cannot run here, so a fake host records the command and answers as
`podman auto-update` does.
"""
import datetime
import importlib.machinery
import importlib.util
import json
import os
import resource
import socket

import pytest

from ansible_collections.selfhost.pi.plugins.module_utils import host as host_utils
from ansible_collections.selfhost.pi.plugins.module_utils import update_runner
from ansible_collections.selfhost.pi.plugins.module_utils.errors import (
    HostStateError, UnsafePathError, ValidationError)

from ...argv import unwrap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
PROGRAM = os.path.join(ROOT, "roles", "service", "files", "selfhost-update")
SUN_0400 = datetime.datetime(2026, 11, 22, 4, 0)   # a Sunday
PODMAN_OK = "app.service localhost:5000/app:stable true\n"
PODMAN_ROLLED_BACK = "app.service localhost:5000/app:stable rolled back\n"


class FakeHost(host_utils.Host):
    """Stands in for podman only: records each command and gives podman's answer."""

    def __init__(self, answer=(0, PODMAN_OK, "")):
        self.answer = answer
        self.calls = []
        self.warnings = []

    def _run(self, argv, data=None, cwd=None, env=None):
        self.calls.append({"argv": argv, "cwd": cwd, "env": env})
        return self.answer

    def which(self, name, required=False):
        return "/usr/sbin/" + name

    def warn(self, msg):
        self.warnings.append(msg)


@pytest.fixture
def as_root(monkeypatch):
    """run_as takes the root path (runuser), whoever runs the tests."""
    monkeypatch.setattr(host_utils.os, "geteuid", lambda: 0)


@pytest.fixture
def paths(tmp_path):
    spool = tmp_path / "requests" / "update-app"
    spool.mkdir(parents=True)
    state = tmp_path / "state"
    return spool, state


def config(paths, **extra):
    spool, state = paths
    cfg = {"user": "app", "uid": 2701, "window": {}, "interval_hours": 24,
           "state_dir": str(state), "request_dir": str(spool)}
    cfg.update(extra)
    return cfg


def run(paths, fake, now=SUN_0400, **extra):
    lines = []
    rc = update_runner.run(fake, "app", config(paths, **extra), lines.append, now=now)
    return rc, lines


def fill_spool_with_every_type(spool, outside, monkeypatch):
    """Every kind of entry the webhook user could leave; return how many."""
    (outside / "secret").write_text("keep me")
    (outside / "dir").mkdir()
    (outside / "dir" / "file").write_text("keep me too")
    (spool / "1700000000.1.42").write_text("")                       # a real request
    (spool / ".hidden").write_text("")
    (spool / "emptydir").mkdir()
    (spool / "tree" / "sub").mkdir(parents=True)
    (spool / "tree" / "sub" / "file").write_text("x")
    os.symlink(str(outside / "dir"), str(spool / "tree" / "sub" / "link-to-dir"))
    os.symlink(str(outside / "secret"), str(spool / "link-to-file"))
    os.symlink(str(outside / "dir"), str(spool / "link-to-dir"))
    os.symlink(str(outside / "nothing"), str(spool / "dangling"))
    os.mkfifo(str(spool / "fifo"))
    monkeypatch.chdir(str(spool))                                     # a short socket path
    sock = socket.socket(socket.AF_UNIX)
    sock.bind("socket")
    sock.close()
    kinds = sorted(set(os.lstat(str(spool / name)).st_mode >> 12 for name in os.listdir(str(spool))))
    assert len(kinds) == 5          # regular file, directory, symbolic link, FIFO, socket
    return len(os.listdir(str(spool)))


# -- the spool ------------------------------------------------------------------
def test_every_entry_type_counts_and_is_removed_without_following_links(tmp_path, monkeypatch):
    spool, outside = tmp_path / "spool", tmp_path / "outside"
    spool.mkdir()
    outside.mkdir()
    count = fill_spool_with_every_type(spool, outside, monkeypatch)
    warnings = []
    assert update_runner.take_requests(str(spool), str(tmp_path), warnings.append) == count
    assert os.listdir(str(spool)) == []
    assert warnings == []
    # Nothing a link pointed at was touched.
    assert (outside / "secret").read_text() == "keep me"
    assert (outside / "dir" / "file").read_text() == "keep me too"


def test_a_missing_spool_holds_no_request(tmp_path):
    assert update_runner.take_requests(str(tmp_path / "none"), str(tmp_path), None) == 0


def test_a_spool_that_is_a_link_is_not_read(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep").write_text("")
    os.symlink(str(target), str(tmp_path / "spool"))
    with pytest.raises(UnsafePathError, match="spool is not a directory"):
        update_runner.take_requests(str(tmp_path / "spool"), str(tmp_path), None)
    assert os.listdir(str(target)) == ["keep"]


@pytest.fixture
def few_descriptors():
    """A soft limit of open files a little above what is open now (restored after the test)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 16, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def deep_tree(root, depth):
    os.mkdir(str(root))
    fd = os.open(str(root), os.O_RDONLY)
    for _ in range(depth):
        os.mkdir("d", dir_fd=fd)
        child = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(fd)


def test_a_tree_too_deep_to_remove_is_set_aside(tmp_path, few_descriptors):
    spool, discard = tmp_path / "spool", tmp_path / "state"
    spool.mkdir()
    discard.mkdir()
    deep_tree(spool / "deep", 64)                 # needs more descriptors than the limit leaves
    (spool / "request").write_text("")
    warnings = []
    assert update_runner.take_requests(str(spool), str(discard), warnings.append) == 2
    assert os.listdir(str(spool)) == []
    assert len(warnings) == 1 and "'deep' could not be removed" in warnings[0] and "set aside" in warnings[0]
    (aside,) = os.listdir(str(discard))
    assert aside.startswith("discarded.") and os.stat(str(discard / aside)).st_mode & 0o777 == 0o700
    assert os.listdir(str(discard / aside)) == ["entry"]


def test_an_entry_that_cannot_go_anywhere_fails_naming_it(tmp_path, few_descriptors):
    spool = tmp_path / "spool"
    spool.mkdir()
    deep_tree(spool / "deep", 64)
    with pytest.raises(HostStateError, match="'deep' can be neither removed"):
        update_runner.take_requests(str(spool), str(tmp_path / "missing"), None)


# -- one run --------------------------------------------------------------------
def test_a_request_inside_the_window_runs_podman_as_the_user(paths, as_root):
    spool, state = paths
    (spool / "1700000000.1.42").write_text("")
    fake = FakeHost()
    rc, lines = run(paths, fake)
    assert rc == 0
    (call,) = fake.calls
    assert call["argv"] == ["/usr/sbin/runuser", "-u", "app", "--", "env",
                            "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/2701/bus", "XDG_RUNTIME_DIR=/run/user/2701",
                            "podman", "auto-update", "--format", "{{.Unit}} {{.Image}} {{.Updated}}"]
    assert call["cwd"] == "/"
    assert lines == ["app: 1 update request(s) received", "app: running podman auto-update as app",
                     "app: podman: " + PODMAN_OK.strip(), "app: update done"]
    assert os.listdir(str(spool)) == []
    assert not (state / "app.pending").exists()
    assert (state / "app.last-check").read_text() == SUN_0400.isoformat() + "\n"


def test_a_directory_in_the_spool_is_a_request_and_does_not_loop(paths, as_root):
    """Finding 11: the old runner os.unlink()ed every entry and crashed on a directory, so the
    spool stayed non-empty and the .path unit started it again and again."""
    spool, state = paths
    (spool / "not-a-file" / "inside").mkdir(parents=True)
    fake = FakeHost()
    rc, lines = run(paths, fake)
    assert rc == 0 and lines[0] == "app: 1 update request(s) received"
    assert os.listdir(str(spool)) == []
    assert len(fake.calls) == 1
    # The next run (what the .path unit would start) finds nothing to do.
    rc, lines = run(paths, fake, now=None)     # the stamp's time is the file's: now, for real
    assert rc == 0 and lines == ["app: no request, last check 0.0 h ago; nothing to do"]
    assert len(fake.calls) == 1


def test_a_request_outside_the_window_is_queued(paths, as_root):
    spool, state = paths
    (spool / "r").write_text("")
    fake = FakeHost()
    rc, lines = run(paths, fake, window={"deny": ["00:00-24:00"]})
    assert rc == 0 and fake.calls == []
    assert lines[-1] == 'app: Sun 04:00 is outside the update window {"deny": ["00:00-24:00"]}; ' \
                        'request queued until it opens'
    assert (state / "app.pending").read_text().startswith("1 request(s) at ")
    # The window opens (the timer's run): the queued request is applied.
    rc, lines = run(paths, fake)
    assert rc == 0 and len(fake.calls) == 1 and not (state / "app.pending").exists()


def test_without_request_a_check_runs_once_per_interval(paths, as_root):
    spool, state = paths
    fake = FakeHost()
    assert run(paths, fake, now=None)[0] == 0 and len(fake.calls) == 1            # never checked: due
    rc, lines = run(paths, fake, now=None)
    assert lines == ["app: no request, last check 0.0 h ago; nothing to do"] and len(fake.calls) == 1
    old = datetime.datetime.now().timestamp() - 25 * 3600
    os.utime(str(state / "app.last-check"), (old, old))
    assert run(paths, fake, now=None)[0] == 0 and len(fake.calls) == 2
    os.utime(str(state / "app.last-check"), (old, old))
    rc, lines = run(paths, fake, now=None, window={"deny": ["00:00-24:00"]})
    assert lines[-1].endswith("check postponed") and len(fake.calls) == 2


@pytest.mark.parametrize("answer", [(0, PODMAN_ROLLED_BACK, ""), (0, "", "Error: ... failed to update"),
                                    (125, "", "Error: cannot connect")])
def test_a_rollback_or_a_podman_failure_fails_the_run(paths, as_root, answer):
    spool, state = paths
    (spool / "r").write_text("")
    rc, lines = run(paths, FakeHost(answer))
    assert rc == 1
    assert lines[-1].startswith("app: update FAILED")
    assert not (state / "app.pending").exists()          # podman decided; the request is done


# -- the config and the program -------------------------------------------------
def write_config(tmp_path, paths, **changes):
    cfg = config(paths)
    cfg.update(changes)
    path = tmp_path / "app.json"
    path.write_text(json.dumps(cfg))
    return str(path)


def test_the_config_gives_the_paths(tmp_path, paths):
    cfg = update_runner.load_config(write_config(tmp_path, paths, uid="2701", window=None))
    assert cfg["uid"] == 2701 and cfg["window"] == {} and cfg["request_dir"] == str(paths[0])


@pytest.mark.parametrize("changes,message", [
    ({"request_dir": None}, "request_dir: must be a non-empty string"),
    ({"state_dir": "relative"}, "state_dir: must be an absolute path"),
    ({"uid": "x"}, "uid and interval_hours must be numbers"),
    ({"window": {"allow": ["Sun 03:00-25:00"]}}, "window.allow[0]: '25:00' is not a time"),
])
def test_a_bad_config_names_the_key(tmp_path, paths, changes, message):
    with pytest.raises(ValidationError) as exc:
        update_runner.load_config(write_config(tmp_path, paths, **changes))
    assert message in str(exc.value)


@pytest.mark.parametrize("name", ["", "../app", "a/b", ".app"])
def test_the_name_is_a_plain_file_name(name):
    with pytest.raises(ValidationError, match="NAME: must be a service name"):
        update_runner.config_path(name)


def load_program():
    loader = importlib.machinery.SourceFileLoader("selfhost_update", PROGRAM)
    spec = importlib.util.spec_from_loader("selfhost_update", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_the_program_is_a_thin_main(tmp_path, paths, monkeypatch, capsys, as_root):
    program = load_program()
    monkeypatch.setattr(update_runner, "UPDATES_CONFIG_DIR", str(tmp_path))
    write_config(tmp_path, paths)
    fake = FakeHost()
    monkeypatch.setattr(program.host, "ProcessHost", lambda log: fake)
    assert program.main(["selfhost-update", "app"]) == 0
    assert "app: update done" in capsys.readouterr().out and len(fake.calls) == 1
    assert program.main(["selfhost-update"]) == 2
    assert program.main(["selfhost-update", "../app"]) == 1
    assert capsys.readouterr().err.strip().endswith("NAME: must be a service name, not '../app'")
    assert program.main(["selfhost-update", "missing"]) == 1
    assert "cannot read the update settings" in capsys.readouterr().err


# -- a pod (issue 9): podman restarts NAME.service, the runner waits for the members ----
class PodHost(FakeHost):
    """podman and systemctl of a pod whose members come up (or not) after the update."""

    def __init__(self, healthy_after_update=True, answer=(0, "app.service localhost/board:1 true\n", "")):
        super().__init__(answer)
        self.healthy = healthy_after_update
        self.restarted = False

    def _run(self, argv, data=None, cwd=None, env=None):
        self.calls.append({"argv": argv, "cwd": cwd, "env": env})
        args = [a for a in unwrap(argv) if a not in ("--user", "-M") and not a.endswith("@")]
        if "podman" in argv and "ps" in argv:
            return 0, ("app-infra 1111 localhost/podman-pause:5.4\napp-db 2222 localhost/valkey:1\n"
                       "app-web 3333 localhost/board:1\n"), ""
        if "podman" in argv and "tag" in argv:
            return 0, "", ""
        if args[0].endswith("systemctl") and args[1] == "show":
            units = [a for a in args[2:] if not a.startswith("--")]
            state = "active" if self.healthy or self.restarted else "activating"
            return 0, "\n\n".join("Id=%s\nActiveState=%s\nSubState=x\nNeedDaemonReload=no" % (u, state)
                                  for u in units), ""
        if args[0].endswith("systemctl") and args[1] == "restart":
            self.restarted = True
            return 0, "", ""
        return self.answer


POD = dict(members=["app-db.service", "app-web.service"], health_timeout=0)


@pytest.fixture
def no_sleep(monkeypatch):
    monkeypatch.setattr(update_runner.time, "sleep", lambda seconds: None)


def commands(fake):
    return [" ".join(c["argv"][c["argv"].index("--") + 1:] if "--" in c["argv"] else c["argv"]) for c in fake.calls]


def test_a_pod_whose_members_come_up_is_done(paths, as_root, no_sleep):
    fake = PodHost(healthy_after_update=True)
    (paths[0] / "1").write_text("")
    rc, lines = run(paths, fake, **POD)
    assert rc == 0 and lines[-1] == "app: update done"
    assert not any("tag" in c for c in commands(fake))


def test_a_pod_member_that_does_not_come_up_is_rolled_back(paths, as_root, no_sleep):
    fake = PodHost(healthy_after_update=False)
    (paths[0] / "1").write_text("")
    rc, lines = run(paths, fake, **POD)
    assert rc == 1
    done = commands(fake)
    assert "env DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/2701/bus XDG_RUNTIME_DIR=/run/user/2701 podman tag " \
           "2222 localhost/valkey:1" in done
    assert any(c.endswith("podman tag 3333 localhost/board:1") for c in done)
    assert not any("1111" in c for c in done)                      # the infra container is podman's own
    assert any(c.endswith("restart app.service") for c in done)
    assert "app: not active after 0 s: app-db.service (activating/x), app-web.service (activating/x)" in lines
    assert "app: the previous images are running again" in lines
    assert lines[-1].startswith("app: update FAILED: a member of the pod did not come up")


def test_a_pod_without_a_new_image_is_not_waited_for(paths, as_root, no_sleep):
    fake = PodHost(healthy_after_update=False, answer=(0, "app.service localhost/board:1 false\n", ""))
    (paths[0] / "1").write_text("")
    rc, lines = run(paths, fake, **POD)
    assert rc == 0
    assert not any("systemctl" in c for c in commands(fake))


def test_members_must_be_service_names(tmp_path, paths):
    with pytest.raises(ValidationError) as info:
        update_runner.load_config(write_config(tmp_path, paths, members=["app-db"]))
    assert "members: must be a list of service unit names" in str(info.value)
