# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What ``selfhost-backup`` does: back up every service's declared data with restic.

The program (installed by the ``selfhost.pi.backup`` role, run as root by
``selfhost-backup.service``) is a thin ``main()`` around :class:`Backup`. It
reads ``/etc/selfhost-pi/backup.json``, which the role writes: the services'
data as the ``backup_plan`` filter resolved it, and the paths and constants
below (``staging``, ``side_files``, ``restic``, ``tmp_dir``, ``python_lib``).

For each service:

1. its ``pre_backup`` commands run as the service user, in its home;
2. each SQLite database is copied **as the service user**: the program runs
   itself (``selfhost-backup --copy-sqlite DB``) through ``runuser``; that
   step copies the live database with SQLite's online backup API into a
   private temporary file, checks the copy with ``PRAGMA quick_check`` and
   writes its bytes to standard output (:func:`copy_sqlite`). Root hands it
   a file it opened in its own 0700 staging directory as that output, and
   gives the file the database's owner and mode, read without following a
   link (:func:`nofollow.lstat`). So the kernel decides what the service
   may read, and root never opens, let alone parses, a file the service
   user controls: a link ``data/notes.db -> /home/other/app.db`` is refused
   by root, and a database the user cannot read fails its copy;
3. ``restic backup`` of its paths (the live databases and their side files
   left out) and of the staged copies, tagged ``selfhost-pi`` and
   ``service:NAME``.

Then the host's own state (``host_state`` in the config: the certificates,
the ACME account, the internal CA, all in root-only directories) is backed up
as one snapshot per entry, tagged ``selfhost-pi`` and ``host-state:NAME``, so a
rebuilt host gets them back before the ``tls`` role would ask a CA again.

Then ``restic forget --prune`` applies the retention policy. A failing service
does not stop the others; :meth:`Backup.run` returns 1 naming them, so the unit
fails and ``systemctl --failed`` and the journal show it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json
import os
import posixpath
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
from urllib.parse import quote

from ansible_collections.selfhost.pi.plugins.module_utils import nofollow
from ansible_collections.selfhost.pi.plugins.module_utils.constants import (
    EX_NOINPUT, HOST_STATE_TAG_PREFIX, SERVICE_TAG_PREFIX)
from ansible_collections.selfhost.pi.plugins.module_utils.errors import (
    CommandError, HostStateError, SelfhostError, UnsafePathError)
from ansible_collections.selfhost.pi.plugins.module_utils.host import BASE_ENV, RUNUSER, as_user_argv, user_runtime_dir

CONFIG_KEYS = ("host", "restic", "staging", "side_files", "tmp_dir", "python_lib", "retry_lock", "retention",
               "services")
OPTIONAL_CONFIG_KEYS = ("host_state",)  # absent from a config written before it existed
FINAL_TAG = "final"  # the last snapshot of a removed service (selfhost-backup --final NAME)
# podman's image store and its state, left out of a final snapshot of a whole home (volumes/ is kept).
FINAL_EXCLUDES = ("overlay", "overlay-containers", "overlay-images", "overlay-layers", "libpod", "cache", "db.sql",
                  "defaultNetworkBackend", "networks", "secrets", "storage.lock", "userns.lock")


def load_config(path):
    """The program's config, checked for every key it needs (HostStateError naming the file otherwise)."""
    with open(path) as handle:
        config = json.load(handle)
    missing = [key for key in CONFIG_KEYS if key not in config]
    if missing:
        raise HostStateError("%s: no %s; run the selfhost.pi.backup role again" % (path, ", ".join(missing)))
    return config


# -- the copy step, run as the service user -----------------------------------


def copy_sqlite(source, out):
    """A consistent, checked copy of the database ``source``, written to the binary stream ``out``.

    Runs as the service user (``selfhost-backup --copy-sqlite``): it opens only
    what that user may open. The copy goes to a private temporary file (in
    ``$TMPDIR``) first, as SQLite's backup API needs a database to write to,
    and only a copy that passes ``PRAGMA quick_check`` is written to ``out``.
    Returns EX_NOINPUT when there is no database at ``source``; raises
    ``sqlite3.Error``/``OSError``/``ValueError`` when the copy fails.
    """
    try:
        os.stat(source)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return EX_NOINPUT
        raise  # EACCES and the like: the user may not read it, which is an error, not "no database"
    fd, tmp = tempfile.mkstemp(prefix=".selfhost-backup.", suffix=".db")
    os.close(fd)
    try:
        # mode=rw: a database that vanished in between is an error, not a new empty file.
        src = sqlite3.connect("file:%s?mode=rw" % quote(source), uri=True, timeout=60)
        try:
            dst = sqlite3.connect(tmp)
            try:
                src.backup(dst)  # one step: a consistent snapshot of the database
                result = dst.execute("PRAGMA quick_check").fetchone()[0]
            finally:
                dst.close()
        finally:
            src.close()
        if result != "ok":
            raise ValueError("the copy fails PRAGMA quick_check: %s" % result)
        with open(tmp, "rb") as handle:
            shutil.copyfileobj(handle, out)
        out.flush()
    finally:
        for name in (tmp, tmp + "-journal"):
            if os.path.lexists(name):
                os.unlink(name)
    return 0


def copy_sqlite_main(args, out=None, err=None):
    """``selfhost-backup --copy-sqlite DB``: exit 0 with the copy on stdout, 66 when DB is missing, 1 on error."""
    out = out or sys.stdout.buffer
    err = err or sys.stderr
    if len(args) != 1:
        err.write("usage: selfhost-backup --copy-sqlite DATABASE\n")
        return 2
    try:
        return copy_sqlite(args[0], out)
    except (OSError, sqlite3.Error, ValueError) as exc:
        err.write("%s: %s\n" % (args[0], exc))
        return 1


# -- root's side -----------------------------------------------------------------


def _stdout(message):
    """The default log: a line on stdout, which selfhost-backup.service sends to the journal."""
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


class Backup(object):
    """One run of the backup over ``config``'s services, on ``host`` (a ProcessHost)."""

    def __init__(self, host, config, copy_command, log=None):
        self.host = host
        self.config = config
        self.copy_command = list(copy_command)  # argv that runs copy_sqlite_main as the service user
        self.log = log or _stdout

    def _show(self, out, err):
        for text in (out, err):
            if text and text.strip():
                self.log(text.rstrip("\n"))

    def _run(self, argv, **kwargs):
        self.log("+ " + " ".join(argv))
        rc, out, err = self.host.run(argv, check=False, **kwargs)
        self._show(out, err)
        if rc != 0:
            raise CommandError("%s failed (rc=%d)" % (argv[0], rc), cmd=argv, rc=rc)

    def run(self):
        """Back up every service, then apply the retention; return the exit code (0, or 1 naming the failures)."""
        failed = []
        started = time.time()
        for service in self.config["services"]:
            self.log("== %s" % service["name"])
            try:
                self.service(service)
            except (SelfhostError, OSError) as exc:
                self.log("%s: backup FAILED: %s" % (service["name"], exc))
                failed.append(service["name"])
        for entry in self.config.get("host_state") or []:
            self.log("== host state %s" % entry["name"])
            try:
                self.host_state(entry)
            except (SelfhostError, OSError) as exc:
                self.log("host state %s: backup FAILED: %s" % (entry["name"], exc))
                failed.append("host state %s" % entry["name"])
        try:
            self.forget()
        except (SelfhostError, OSError) as exc:
            self.log("forget --prune FAILED: %s" % exc)
            failed.append("(retention)")
        self.log("backup of %d services took %.1f s" % (len(self.config["services"]), time.time() - started))
        if failed:
            self.log("FAILED: %s" % ", ".join(failed))
            return 1
        return 0

    def final(self, entry):
        """The last snapshot of a service being removed (``selfhost-backup --final NAME``, entry on stdin).

        As a nightly backup of ``entry`` (the record's data entry: name, uid, home, paths, sqlite, pre_backup),
        tagged ``final`` too; a service that declared no data gets its home, without podman's image store and the
        caches (its named volumes are kept). Returns 0, or 1 when it failed.
        """
        entry = dict(entry)
        for key in ("paths", "sqlite", "pre_backup"):
            entry[key] = list(entry.get(key) or [])
        excludes = []
        if not entry["paths"] and not entry["sqlite"]:
            entry["paths"] = [entry["home"]]
            storage = posixpath.join(entry["home"], ".local/share/containers/storage")
            excludes = [posixpath.join(storage, d) for d in FINAL_EXCLUDES] + [posixpath.join(entry["home"], ".cache")]
        self.log("== %s (final)" % entry["name"])
        try:
            self.service(entry, tags=[FINAL_TAG], excludes=excludes)
        except (SelfhostError, OSError) as exc:
            self.log("%s: final backup FAILED: %s" % (entry["name"], exc))
            return 1
        return 0

    def service(self, service, tags=(), excludes=()):
        name = service["name"]
        config = self.config
        for command in service["pre_backup"]:
            self.log("+ %s (as %s): %s" % ("/bin/sh -c", name, command))
            rc, out, err = self.host.run_as(name, ["/bin/sh", "-c", command], cwd=service["home"], check=False,
                                            env=dict(HOME=service["home"], XDG_RUNTIME_DIR=user_runtime_dir(
                                                service["uid"])))
            self._show(out, err)
            if rc != 0:
                raise CommandError("pre_backup command failed (rc=%d): %s" % (rc, command), rc=rc)
        staging = posixpath.join(config["staging"], name)  # root's own 0700 tree
        if os.path.lexists(staging):
            shutil.rmtree(staging)
        os.makedirs(staging, 0o700)
        excludes = list(excludes)
        for db in service["sqlite"]:
            excludes += [db] + [db + suffix for suffix in config["side_files"]]
            self.stage_sqlite(service, db, staging + db)
        paths = []
        for path in service["paths"]:
            # restic records a link as a link; a link on the way to the path would send it elsewhere.
            if nofollow.lstat(path) is None:
                self.log("%s: %s does not exist yet; not in this snapshot" % (name, path))
            else:
                paths.append(path)
        argv = [config["restic"], "backup", "--host", config["host"], "--tag", "selfhost-pi",
                "--tag", SERVICE_TAG_PREFIX + name, "--retry-lock", config["retry_lock"]]
        for tag in tags:
            argv += ["--tag", tag]
        for pattern in excludes:
            argv += ["--exclude", pattern]
        self._run(argv + paths + [staging])

    def host_state(self, entry):
        """One snapshot of root's own directories (``entry``: name, paths); none when no path exists yet."""
        paths = []
        for path in entry["paths"]:
            st = nofollow.lstat(path)
            if st is None:
                self.log("host state %s: %s does not exist; not in this snapshot" % (entry["name"], path))
                continue
            # Only root's own trees: what a user could change is a service's data, backed up as such.
            if st.st_uid != 0 or stat.S_IMODE(st.st_mode) & 0o022:
                raise UnsafePathError("%s is not a directory only root can write (owner %d, mode %04o)"
                                      % (path, st.st_uid, stat.S_IMODE(st.st_mode)), path=path)
            paths.append(path)
        if not paths:
            return
        self._run([self.config["restic"], "backup", "--host", self.config["host"], "--tag", "selfhost-pi",
                   "--tag", HOST_STATE_TAG_PREFIX + entry["name"], "--retry-lock", self.config["retry_lock"]]
                  + paths)

    def stage_sqlite(self, service, db, dest):
        """Copy ``db`` to ``dest`` (in root's staging tree) as the service user; keep its owner and mode."""
        name = service["name"]
        st = nofollow.lstat(db)  # the file itself, reached without following a link the user placed
        if st is None:
            self.log("%s: %s does not exist yet; not in this snapshot" % (name, db))
            return
        if stat.S_ISLNK(st.st_mode):
            raise UnsafePathError("%s is a symbolic link; a database is copied only from a regular file, never "
                                  "from where a link points" % db, path=db)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePathError("%s is not a regular file" % db, path=db)
        parent = posixpath.dirname(dest)
        if not os.path.isdir(parent):
            os.makedirs(parent, 0o700)
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0),
                     0o600)
        done = False
        try:
            self.log("+ %s (as %s, into %s)" % (" ".join(self.copy_command + [db]), name, dest))
            rc, err = self._copy_as(name, self.copy_command + [db], fd, env=dict(
                HOME=service["home"], TMPDIR=self.config["tmp_dir"], PYTHONPATH=self.config["python_lib"]))
            if rc == EX_NOINPUT:
                self.log("%s: %s does not exist yet; not in this snapshot" % (name, db))
                return
            if rc != 0:
                raise CommandError("%s: the copy as %s failed (rc=%d): %s" % (
                    db, name, rc, (err.strip().splitlines() or ["no output"])[-1]), rc=rc, stderr=err)
            os.fchown(fd, st.st_uid, st.st_gid)
            os.fchmod(fd, stat.S_IMODE(st.st_mode) & 0o777)
            done = True
        finally:
            os.close(fd)
            if not done:
                os.unlink(dest)

    def _copy_as(self, user, argv, fd, env):
        """Run ``argv`` as ``user`` with its standard output going to the open file ``fd``; return (rc, stderr).

        As host.run_as does: runuser when root, the command itself otherwise.
        The bytes never pass through root's memory or a text decoder.
        """
        if os.geteuid() == 0:
            argv = as_user_argv(user, argv, env, self.host.which(RUNUSER, required=True))
            env = None
        environ = dict(os.environ)
        environ.update(BASE_ENV)
        environ.update(env or {})
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fd, stderr=subprocess.PIPE, env=environ,
                                cwd="/")
        err = proc.communicate()[1]
        return proc.returncode, err.decode("utf-8", "replace")

    def forget(self):
        config = self.config
        keep = ["--keep-%s=%s" % (key, value) for key, value in sorted(config["retention"].items()) if value]
        if keep:
            self._run([config["restic"], "forget", "--prune", "--host", config["host"], "--tag", "selfhost-pi",
                       "--group-by", "host,tags", "--retry-lock", config["retry_lock"]] + keep)
