"""selfhost-backup (roles/backup/files/selfhost-backup and module_utils/backup.py) with real restic and sqlite3.

The program runs in-process with its config pointed at a temporary
backup.json; restic backs up into a temporary repository through a wrapper
like selfhost-restic (tests/unit/restic_repo.py). As root (as on the host) the
service is the user ``nobody``, so that the copy of a database really runs as
another user through runuser, with the system's python3; as another user the
service is that user itself.
"""
import ast
import importlib.machinery
import importlib.util
import io
import json
import os
import pwd
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile

import pytest
import yaml

from ansible_collections.selfhost.pi.plugins.module_utils import backup, constants, restore
from ansible_collections.selfhost.pi.plugins.module_utils.errors import ValidationError
from ansible_collections.selfhost.pi.plugins.module_utils.host import ProcessHost

from ...restic_repo import Repo, repo_template  # noqa: F401 (a fixture)  pylint: disable=unused-import

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
PROGRAM = os.path.join(ROOT, "roles", "backup", "files", "selfhost-backup")
PYTHON_LIB = os.path.join(ROOT, ".build", "collections")
AS_ROOT = os.geteuid() == 0
SECRET = "the other service's secret row"


def load_program():
    loader = importlib.machinery.SourceFileLoader("selfhost_backup_program", PROGRAM)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    program = importlib.util.module_from_spec(spec)
    loader.exec_module(program)
    return program


def make_db(path, rows, wal=True):
    db = sqlite3.connect(path)
    if wal:
        db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT)")
    db.executemany("INSERT INTO notes (body) VALUES (?)", [(row,) for row in rows])
    db.commit()
    return db


def rows_of(path):
    db = sqlite3.connect(path)
    try:
        return [row[0] for row in db.execute("SELECT body FROM notes ORDER BY id")]
    finally:
        db.close()


class World(object):
    """A host in a temporary directory: a service's home, another service's, the staging tree, a repository."""

    def __init__(self, repo, monkeypatch):
        self.repo = repo
        # Under /tmp with 0755 parents, so that the service user can reach its home.
        self.base = tempfile.mkdtemp(prefix="selfhost-backup-test.", dir="/tmp")
        os.chmod(self.base, 0o755)
        if AS_ROOT:
            self.user = pwd.getpwnam("nobody")
            monkeypatch.setattr(sys, "executable", "/usr/bin/python3")  # the venv's python is under /root (0700)
        else:
            self.user = pwd.getpwuid(os.geteuid())
        self.name, self.uid, self.gid = self.user.pw_name, self.user.pw_uid, self.user.pw_gid
        self.home = self.mkdir("home", self.name, owner=True)
        self.other = self.mkdir("home", "other", mode=0o700)  # root's (another service's) tree
        self.staging = os.path.join(self.base, "var", "backup", "sqlite")
        os.makedirs(os.path.dirname(self.staging), 0o700)
        self.tmp = self.mkdir("var", "tmp", mode=0o1777)
        self.config_path = os.path.join(self.base, "backup.json")
        self.services = []

    def mkdir(self, *parts, **kwargs):
        path = os.path.join(self.base, *parts)
        os.makedirs(path, exist_ok=True)
        os.chmod(path, kwargs.get("mode", 0o755))
        if kwargs.get("owner"):
            os.chown(path, self.uid, self.gid)
        return path

    def own(self, *paths):
        for path in paths:
            os.chown(path, self.uid, self.gid)

    def service(self, paths=(), sqlite=(), pre_backup=(), name=None):
        self.services.append(dict(name=name or self.name, uid=self.uid, home=self.home, paths=list(paths),
                                  sqlite=list(sqlite), pre_backup=list(pre_backup)))

    def config(self, **extra):
        config = dict(host="pi", restic=self.repo.wrapper, staging=self.staging,
                      side_files=list(constants.SQLITE_SIDE_FILES), tmp_dir=self.tmp, python_lib=PYTHON_LIB,
                      retry_lock="1m", retention={}, services=self.services)
        config.update(extra)
        return config

    def run(self, monkeypatch, capsys, program=None, **extra):
        """Run the program as selfhost-backup.service does; return (exit code, its output)."""
        with open(self.config_path, "w") as handle:
            json.dump(self.config(**extra), handle)
        program = program or load_program()
        monkeypatch.setattr(program, "CONFIG", self.config_path)
        monkeypatch.setattr(sys, "argv", [PROGRAM])
        rc = program.main()
        return rc, capsys.readouterr().out

    def restored(self, service=None):
        """The newest snapshot of the service restored into a fresh directory (None: there is none)."""
        snaps = self.repo.snapshots("--tag", "service:" + (service or self.name))
        if not snaps:
            return None
        target = tempfile.mkdtemp(dir=str(self.repo.root))
        self.repo.restic("restore", snaps[-1]["id"], "--target", target)
        return target

    def cleanup(self):
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def world(repo_template, tmp_path, monkeypatch):  # noqa: F811 (fixture)
    if shutil.which("restic") is None:
        pytest.skip("restic is not installed (apt-get install restic)")
    if AS_ROOT and not os.access("/usr/bin/python3", os.X_OK):
        pytest.skip("needs /usr/bin/python3 for the copy as another user")
    w = World(Repo(repo_template, tmp_path), monkeypatch)
    yield w
    w.cleanup()


def holds(tree, needle):
    """True when any regular file under ``tree`` contains ``needle``."""
    for root, dirs, files in os.walk(tree):
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                with open(path, "rb") as handle:
                    if needle.encode() in handle.read():
                        return True
    return False


# -- what a backup holds ----------------------------------------------------------------


def test_a_backup_holds_the_paths_the_pre_backup_output_and_a_checked_copy_of_the_live_database(
        world, monkeypatch, capsys):
    data = world.mkdir("home", world.name, "data", owner=True)
    dumps = world.mkdir("home", world.name, "dumps", owner=True)
    db_path = os.path.join(data, "notes.db")
    live = make_db(db_path, ["note %d" % i for i in range(100)])  # open, in WAL mode, as the service keeps it
    with open(os.path.join(data, "upload.txt"), "w") as handle:
        handle.write("uploaded")
    world.own(db_path, db_path + "-wal", db_path + "-shm", os.path.join(data, "upload.txt"))
    os.chmod(db_path, 0o640)
    world.service(paths=[data, dumps], sqlite=[db_path], pre_backup=["echo dumped > dumps/dump.txt"])
    rc, out = world.run(monkeypatch, capsys, retention={"daily": 7, "weekly": 0})
    live.close()
    assert rc == 0, out
    assert "forget --prune" in out and "--keep-daily=7" in out and "--keep-weekly" not in out
    (snap,) = world.repo.snapshots()
    assert snap["hostname"] == "pi" and sorted(snap["tags"]) == ["selfhost-pi", "service:" + world.name]
    target = world.restored()
    staged = target + os.path.join(world.staging, world.name) + db_path
    assert rows_of(staged) == ["note %d" % i for i in range(100)]
    st = os.stat(staged)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (world.uid, world.gid, 0o640)
    # The live database and its side files are left out; the rest of the data is there.
    assert sorted(os.listdir(target + data)) == ["upload.txt"]
    with open(target + dumps + "/dump.txt") as handle:
        assert handle.read() == "dumped\n"
    assert os.stat(dumps + "/dump.txt").st_uid == world.uid  # written by the service user, in its home
    assert stat.S_IMODE(os.stat(os.path.join(world.staging, world.name)).st_mode) == 0o700
    assert os.listdir(world.tmp) == []  # the service user's private copy is gone


def run_final(world, monkeypatch, capsys, entry, name=None):
    """``selfhost-backup --final NAME`` with ``entry`` on stdin, as the services module runs it."""
    with open(world.config_path, "w") as handle:
        json.dump(world.config(services=[]), handle)  # the service already left backup.json
    program = load_program()
    monkeypatch.setattr(program, "CONFIG", world.config_path)
    monkeypatch.setattr(sys, "argv", [PROGRAM, "--final", name or entry["name"]])
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(entry)))
    rc = program.main()
    return rc, capsys.readouterr().out


def test_final_takes_one_snapshot_of_a_service_no_longer_in_the_config(world, monkeypatch, capsys):
    data = world.mkdir("home", world.name, "data", owner=True)
    with open(os.path.join(data, "kept.txt"), "w") as handle:
        handle.write("last words")
    entry = dict(name=world.name, uid=world.uid, home=world.home, paths=[data], sqlite=[], pre_backup=[])
    rc, out = run_final(world, monkeypatch, capsys, entry)
    assert rc == 0, out
    (snap,) = world.repo.snapshots()
    assert sorted(snap["tags"]) == ["final", "selfhost-pi", "service:" + world.name]
    assert "forget" not in out  # only the one snapshot; the retention runs with the nightly backup
    with open(world.restored() + data + "/kept.txt") as handle:
        assert handle.read() == "last words"


def test_final_of_a_service_without_declared_data_takes_its_home_without_the_image_store(
        world, monkeypatch, capsys):
    storage = world.mkdir("home", world.name, ".local", "share", "containers", "storage", owner=True)
    for sub in ("overlay", "volumes/db/_data"):
        os.makedirs(os.path.join(storage, sub))
        with open(os.path.join(storage, sub, "f"), "w") as handle:
            handle.write(sub)
    entry = dict(name=world.name, uid=world.uid, home=world.home)
    rc, out = run_final(world, monkeypatch, capsys, entry)
    assert rc == 0, out
    target = world.restored()
    assert os.path.exists(target + storage + "/volumes/db/_data/f")
    assert not os.path.exists(target + storage + "/overlay")


def test_final_refuses_an_entry_of_another_service(world, monkeypatch, capsys):
    entry = dict(name="other", uid=world.uid, home=world.home)
    rc, out = run_final(world, monkeypatch, capsys, entry, name=world.name)
    assert rc == 2 and "usage" in out
    assert world.repo.snapshots() == []


def test_missing_data_is_logged_and_left_out(world, monkeypatch, capsys):
    db_path = os.path.join(world.home, "data", "notes.db")
    world.service(paths=[os.path.join(world.home, "media")], sqlite=[db_path])
    rc, out = world.run(monkeypatch, capsys)
    assert rc == 0, out
    assert "%s: %s does not exist yet; not in this snapshot" % (world.name, db_path) in out
    assert "%s/media does not exist yet" % world.home in out


def test_a_failing_service_fails_the_run_and_not_the_others(world, monkeypatch, capsys):
    data = world.mkdir("home", world.name, "data", owner=True)
    with open(os.path.join(data, "broken.db"), "w") as handle:
        handle.write("this is not a database, and SQLite says so" * 100)
    world.own(os.path.join(data, "broken.db"))
    world.service(sqlite=[os.path.join(data, "broken.db")])
    site = world.mkdir("srv", "web")
    with open(os.path.join(site, "index.html"), "w") as handle:
        handle.write("hi")
    world.service(paths=[site], name="web")  # paths only: nothing runs as its user
    rc, out = world.run(monkeypatch, capsys)
    assert rc == 1
    assert "%s: backup FAILED: %s/broken.db: the copy as %s failed" % (world.name, data, world.name) in out
    assert out.rstrip().endswith("FAILED: %s" % world.name), out
    assert world.restored("web") is not None and world.restored(world.name) is None
    assert [files for dummy, dummy, files in os.walk(world.staging) if files] == []  # no partial copy kept


def test_a_failing_pre_backup_command_fails_its_service(world, monkeypatch, capsys):
    world.service(paths=[world.home], pre_backup=["echo on stderr >&2; exit 3"])
    rc, out = world.run(monkeypatch, capsys)
    assert rc == 1 and "on stderr" in out
    assert "backup FAILED: pre_backup command failed (rc=3): echo on stderr >&2; exit 3" in out


def test_a_config_of_the_previous_version_names_what_is_missing(tmp_path):
    path = tmp_path / "backup.json"
    path.write_text('{"host": "pi", "restic": "/usr/local/sbin/selfhost-restic", "staging": "/x", "retry_lock": "10m",'
                    ' "retention": {}, "services": []}')
    with pytest.raises(backup.HostStateError) as info:
        backup.load_config(str(path))
    assert str(info.value) == "%s: no side_files, tmp_dir, python_lib; run the selfhost.pi.backup role again" % path


# -- the host's own state: certificates and the internal CA (issue 8) ------------------------------


def tls_state(world):
    """A certbot tree and an internal CA as root keeps them; (entry, {path: content})."""
    live = world.mkdir("etc", "letsencrypt", "live", "blog.example.org")
    ca = world.mkdir("etc", "selfhost-pi", "ca", mode=0o700)
    files = {os.path.join(live, "privkey.pem"): "KEY", os.path.join(ca, "ca.key"): "CA KEY"}
    for path, content in files.items():
        with open(path, "w") as handle:
            handle.write(content)
        os.chmod(path, 0o600)
    entry = dict(name="tls", paths=[os.path.join(world.base, "etc", "letsencrypt"), ca,
                                    os.path.join(world.base, "etc", "selfhost-pi", "tls")])
    return entry, files


@pytest.mark.skipif(not AS_ROOT, reason="host state is root's own (as on the host)")
def test_host_state_is_backed_up_and_comes_back_only_on_a_host_without_it(world, monkeypatch, capsys):
    entry, files = tls_state(world)
    rc, out = world.run(monkeypatch, capsys, host_state=[entry])
    assert rc == 0, out
    assert "host state tls: %s does not exist; not in this snapshot" % entry["paths"][2] in out
    (snap,) = world.repo.snapshots("--tag", "host-state:tls")
    assert sorted(snap["tags"]) == ["host-state:tls", "selfhost-pi"] and snap["hostname"] == "pi"
    params = dict(services=[], host_state=[entry], mode="missing", snapshot="latest", host="pi",
                  restic=world.repo.wrapper, work_dir=os.path.join(world.base, "restore"))
    # A host that has its certificates keeps them.
    result, failures = restore.converge(ProcessHost(), params)
    assert not failures and not result["changed"] and result["host_state"][0]["action"] == "kept"
    # A rebuilt host (none of the paths) gets them back, with their modes, before certbot runs.
    shutil.rmtree(entry["paths"][0])
    shutil.rmtree(entry["paths"][1])
    result, failures = restore.converge(ProcessHost(), params, diff=True)
    assert not failures and result["changed"], result
    (state,) = result["host_state"]
    assert state["action"] == "restored" and state["restored"] == entry["paths"][:2]
    assert state["missing_in_snapshot"] == [entry["paths"][2]]
    assert result["diff"][0]["before_header"] == "host state tls"
    for path, content in files.items():
        with open(path) as handle:
            assert handle.read() == content
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(entry["paths"][1]).st_mode) == 0o700


@pytest.mark.skipif(not AS_ROOT, reason="host state is root's own (as on the host)")
def test_host_state_a_user_can_write_is_not_backed_up(world, monkeypatch, capsys):
    entry, dummy = tls_state(world)
    world.own(entry["paths"][0])  # /etc/letsencrypt given to a service user
    rc, out = world.run(monkeypatch, capsys, host_state=[entry])
    assert rc == 1
    assert "host state tls: backup FAILED: %s is not a directory only root can write (owner %d" % (
        entry["paths"][0], world.uid) in out
    assert out.rstrip().endswith("FAILED: host state tls")
    assert world.repo.snapshots("--tag", "host-state:tls") == []


@pytest.mark.parametrize("entry,message", [
    (dict(name="tls", paths=["etc/letsencrypt"]), "host_state[0].paths[0]: 'etc/letsencrypt' is not an absolute"),
    (dict(name="tls", paths=["/etc"]), "host_state[0].paths[0]: '/etc' is not an absolute"),
    (dict(name="tls", paths=["/home/notes/certs"]), "host_state[0].paths[0]: /home/notes/certs is in a home"),
    (dict(name="tls", paths=[]), "host_state[0].paths: no paths"),
    (dict(name="t ls", paths=["/etc/letsencrypt"]), "host_state[0].name: 't ls' is not a name"),
])
def test_bad_host_state_fails_naming_the_field(entry, message):
    params = dict(services=[], host_state=[entry], mode="missing", snapshot="latest", host="pi",
                  restic="/nonexistent/restic", work_dir="/nonexistent")
    with pytest.raises(ValidationError) as info:
        restore.converge(ProcessHost(), params)
    assert message in str(info.value) and str(info.value).startswith("nothing was changed: ")


def test_host_state_is_not_replaced_on_request():
    params = dict(services=[], host_state=[dict(name="tls", paths=["/etc/letsencrypt"])], mode="replace",
                  snapshot="latest", host="pi", restic="/nonexistent/restic", work_dir="/nonexistent")
    with pytest.raises(ValidationError) as info:
        restore.converge(ProcessHost(), params)
    assert "host_state[0]: host state comes back only with mode=missing" in str(info.value)


# -- root never trusts what the service user controls (issue 12, finding 1) -----------------------


def other_database(world):
    path = os.path.join(world.other, "app.db")
    make_db(path, [SECRET], wal=False).close()
    os.chmod(path, 0o600)
    return path


def test_a_database_linked_to_another_services_is_not_copied(world, monkeypatch, capsys):
    # The service's container replaced its database with a link to another service's (root-owned, 0600).
    target = other_database(world)
    data = world.mkdir("home", world.name, "data", owner=True)
    os.symlink(target, os.path.join(data, "notes.db"))
    world.service(paths=[data], sqlite=[os.path.join(data, "notes.db")])
    rc, out = world.run(monkeypatch, capsys)
    assert rc == 1 and "%s/notes.db is a symbolic link" % data in out
    assert not holds(world.staging, SECRET)
    restored = world.restored()
    assert restored is None or not holds(restored, SECRET)


@pytest.mark.skipif(not AS_ROOT, reason="a copy as another user needs root")
def test_a_database_the_user_cannot_reach_fails_rather_than_being_skipped(world, monkeypatch, capsys):
    # A directory of the service's tree it may not enter (e.g. owned by a subordinate UID, 0700).
    data = world.mkdir("home", world.name, "data", mode=0o700)
    db_path = os.path.join(data, "notes.db")
    make_db(db_path, ["row"]).close()
    world.service(sqlite=[db_path])
    rc, out = world.run(monkeypatch, capsys)
    assert rc == 1 and "does not exist yet" not in out
    assert "the copy as %s failed (rc=1): %s: [Errno 13] Permission denied" % (world.name, db_path) in out


@pytest.mark.skipif(not AS_ROOT, reason="a copy as another user needs root")
def test_the_copy_runs_as_the_service_user(world, monkeypatch, capsys):
    # A database in the service's tree that the service user may not read (a hard link to another
    # service's file would be one): root does not read it for the user; the kernel refuses the user.
    data = world.mkdir("home", world.name, "data", owner=True)
    db_path = os.path.join(data, "notes.db")
    make_db(db_path, [SECRET], wal=False).close()
    os.chmod(db_path, 0o600)  # root's
    world.service(sqlite=[db_path])
    rc, out = world.run(monkeypatch, capsys)
    assert rc == 1 and "the copy as %s failed" % world.name in out
    assert "unable to open database file" in out
    assert not holds(world.staging, SECRET)
    restored = world.restored()
    assert restored is None or not holds(restored, SECRET)


def test_a_data_path_behind_a_link_is_not_backed_up(world, monkeypatch, capsys):
    # ~/vol -> the other service's tree: restic would read the other's data through it.
    with open(os.path.join(world.other, "data.txt"), "w") as handle:
        handle.write(SECRET)
    os.symlink(world.other, os.path.join(world.home, "vol"))
    world.service(paths=[os.path.join(world.home, "vol", "data.txt")])
    rc, out = world.run(monkeypatch, capsys)
    assert rc == 1 and "%s/vol is a symbolic link" % world.home in out
    restored = world.restored()
    assert restored is None or not holds(restored, SECRET)


# -- the copy step ------------------------------------------------------------------------


def test_the_copy_holds_committed_rows_only_and_passes_quick_check(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    path = str(tmp_path / "live.db")
    writer = make_db(path, ["committed"])
    writer.execute("BEGIN")
    writer.execute("INSERT INTO notes (body) VALUES ('not committed')")
    out = io.BytesIO()
    assert backup.copy_sqlite(path, out) == 0
    writer.rollback()
    writer.close()
    copy = str(tmp_path / "copy.db")
    with open(copy, "wb") as handle:
        handle.write(out.getvalue())
    assert rows_of(copy) == ["committed"]
    assert [name for name in os.listdir(str(tmp_path)) if name.startswith(".selfhost-backup.")] == []


def test_the_copy_step_exit_codes(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    err = io.StringIO()
    assert backup.copy_sqlite_main([str(tmp_path / "absent.db")], io.BytesIO(), err) == constants.EX_NOINPUT
    (tmp_path / "junk.db").write_text("junk" * 1000)
    assert backup.copy_sqlite_main([str(tmp_path / "junk.db")], io.BytesIO(), err) == 1
    assert "junk.db: file is not a database" in err.getvalue()
    assert backup.copy_sqlite_main([], io.BytesIO(), err) == 2
    odd = tmp_path / "a?b#c%d.db"  # characters a SQLite URI must escape
    make_db(str(odd), ["odd"]).close()
    out = io.BytesIO()
    assert backup.copy_sqlite_main([str(odd)], out, err) == 0 and out.getvalue().startswith(b"SQLite format 3")


def test_the_program_copies_as_itself_run_as_the_user(tmp_path):
    # The very command root runs through runuser: the program, --copy-sqlite, PYTHONPATH from the config.
    path = str(tmp_path / "x.db")
    make_db(path, ["via the program"]).close()
    proc = subprocess.run([sys.executable, PROGRAM, "--copy-sqlite", path], capture_output=True, check=False,
                          env=dict(os.environ, PYTHONPATH=PYTHON_LIB, TMPDIR=str(tmp_path)))
    assert proc.returncode == 0, proc.stderr
    (tmp_path / "copy.db").write_bytes(proc.stdout)
    assert rows_of(str(tmp_path / "copy.db")) == ["via the program"]


# -- the role gives the program what constants.py says ------------------------------------


def role_vars():
    with open(os.path.join(ROOT, "roles", "backup", "vars", "main.yml")) as handle:
        return yaml.safe_load(handle)


def test_the_role_writes_the_constants_into_the_config():
    values = role_vars()
    assert values["__backup_staging_dir"] == constants.BACKUP_STAGING_DIR
    assert tuple(values["__backup_sqlite_side_files"]) == constants.SQLITE_SIDE_FILES
    assert values["__backup_python_lib"] == constants.PYTHON_LIB_DIR
    assert values["__backup_tmp_dir"] == constants.BACKUP_COPY_TMP_DIR
    assert values["__backup_restic"] == constants.RESTIC_WRAPPER
    assert sorted(values["__backup_config"]) == sorted(backup.CONFIG_KEYS + backup.OPTIONAL_CONFIG_KEYS)
    with open(PROGRAM) as handle:
        assert 'CONFIG = "%s"' % constants.BACKUP_CONFIG in handle.read()


def module_utils_imports(name, seen=None):
    """The module_utils files ``name`` needs, itself included (what the program's host must have)."""
    seen = set() if seen is None else seen
    seen.add(name)
    with open(os.path.join(ROOT, "plugins", "module_utils", name)) as handle:
        tree = ast.parse(handle.read())
    prefix = "ansible_collections.selfhost.pi.plugins.module_utils"
    for node in ast.walk(tree):
        found = []
        if isinstance(node, ast.ImportFrom) and node.module == prefix:
            found = [alias.name + ".py" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(prefix + "."):
            found = [node.module.rsplit(".", 1)[1] + ".py"]
        for dep in found:
            if dep not in seen:
                module_utils_imports(dep, seen)
    return seen


def test_the_role_installs_every_module_utils_file_the_program_imports():
    assert sorted(role_vars()["__backup_module_utils"]) == sorted(module_utils_imports("backup.py"))


# -- the settings file a root shell sources (issue 12, finding 7) ------------------------------


def test_env_values_come_back_exactly_when_selfhost_restic_sources_the_file(tmp_path):
    # Render templates/env.j2 with Ansible's own templating, then source it as selfhost-restic does.
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template
    with open(os.path.join(ROOT, "roles", "backup", "templates", "env.j2")) as handle:
        template = handle.read()
    values = {"AWS_SECRET_ACCESS_KEY": "it's $(touch %s/owned) `id` ${HOME} \\ \"q\"" % tmp_path,
              "MULTI_LINE": "one\ntwo", "NUMBER": 42, "EMPTY": ""}
    templar = Templar(loader=DataLoader(), variables=dict(
        ansible_managed="managed", backup_repository="/mnt/backup/restic; touch %s/owned" % tmp_path,
        backup_repository_environment=values))
    env_file = tmp_path / "env"
    env_file.write_text(templar.template(trust_as_template(template)))
    dump = subprocess.run(["sh", "-c", 'set -eu; set -a; . "$1"; set +a; "$2" -c "import json, os; '
                           'print(json.dumps(dict(os.environ)))"', "sh", str(env_file), sys.executable],
                          capture_output=True, text=True, env={"PATH": os.environ["PATH"]}, check=True)
    env = json.loads(dump.stdout)
    assert env["RESTIC_REPOSITORY"] == "/mnt/backup/restic; touch %s/owned" % tmp_path
    assert env["RESTIC_PASSWORD_FILE"] == "/etc/selfhost-pi/restic/password"
    for key, value in values.items():
        assert env[key] == str(value)
    assert not (tmp_path / "owned").exists()


def test_the_role_refuses_environment_keys_that_are_not_variable_names():
    # The role's first check, before restic is installed or anything is written.
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template
    with open(os.path.join(ROOT, "roles", "backup", "tasks", "main.yml")) as handle:
        (task,) = [t for t in yaml.safe_load(handle) if t["name"] == "Check the names in backup_repository_environment"]
    keys = {"GOOD": 1, "_ok_2": 1, "AWS-KEY": 1, "1ST": 1, "X;touch /tmp/owned;Y": 1, "KEY\n": 1, 7: 1}
    templar = Templar(loader=DataLoader(), variables=dict(role_vars(), backup_repository_environment=keys))
    bad = templar.template(trust_as_template(task["vars"]["__backup_bad_names"]))
    assert bad == ["AWS-KEY", "1ST", "X;touch /tmp/owned;Y", "KEY\n", "7"]
    assert task["ansible.builtin.assert"]["that"] == "__backup_bad_names | length == 0"
    assert task["ansible.builtin.assert"]["fail_msg"].startswith("backup_repository_environment.{{ __backup_bad_names")
