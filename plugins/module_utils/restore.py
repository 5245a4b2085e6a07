# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""restic through the host interface, and bringing a service's data back from it.

``Restic`` runs restic (or the ``selfhost-restic`` wrapper) through a
:mod:`host` object; secrets go into the process environment, never into argv.
``Repository`` is the ``selfhost.pi.restic_repository`` module's job: check a
repository with candidate settings and initialize an empty one.

A snapshot of service NAME carries the tag ``service:NAME`` and the host name
given to ``restic backup --host``. It holds the service's declared paths at
their absolute places, and each SQLite database as the consistent copy kept at
``service_data.staged_path(NAME, DB)``.

Restoring (``selfhost.pi.restic_restore``) goes through a private directory:
``restic restore --target TMP`` first, then each declared path is renamed into
place (copied with ``cp -a`` across file systems). Parent directories that do
not exist yet are made with the owner and mode the snapshot recorded, so a
service's home comes back owned by its pinned UID/GID before the account
itself exists.

The destination is a tree the service user can write, and the restored tree
holds whatever the service had: both are walked with
:func:`nofollow.open_dir`, one directory descriptor at a time, and every
rename, mkdir and copy happens relative to a descriptor. A symbolic link on
the way raises :class:`~errors.UnsafePathError` instead of sending the data
(or the data set aside) somewhere else.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import errno
import json
import os
import posixpath
import pwd
import re
import shutil
import stat
import tempfile
import time

from ansible_collections.selfhost.pi.plugins.module_utils import nofollow, service_data
from ansible_collections.selfhost.pi.plugins.module_utils.constants import (
    HOST_STATE_TAG_PREFIX, PROTECTED_PATHS, RC_TIMEOUT, RESTIC_RC_NO_REPOSITORY, RESTIC_RC_WRONG_PASSWORD, SERVICE_TAG_PREFIX,
    SQLITE_SIDE_FILES)
from ansible_collections.selfhost.pi.plugins.module_utils.errors import (
    SelfhostError, UnsafePathError, ValidationError)
from ansible_collections.selfhost.pi.plugins.module_utils.systemd import Systemctl

TAG_PREFIX = SERVICE_TAG_PREFIX
# Actions after which the service's data differs from before (a failed restore may have moved some paths).
CHANGED_ACTIONS = ("restored", "replaced", "failed")
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")  # a shell variable name (\Z: no trailing newline)
HOST_STATE_NAME_RE = re.compile(r"[A-Za-z_-][A-Za-z0-9_-]*\Z")  # the NAME of a host-state:NAME tag
# Set from the repository and password options; not from the extra environment.
RESERVED_ENV = ("RESTIC_REPOSITORY", "RESTIC_REPOSITORY_FILE", "RESTIC_PASSWORD", "RESTIC_PASSWORD_FILE",
                "RESTIC_PASSWORD_COMMAND")


class ResticError(SelfhostError):
    """restic failed, or did not answer in time."""


class RestoreError(ResticError):
    """A service's data cannot be restored (restic failed, the snapshot lacks it, the unit did not start)."""


def last_line(text):
    """restic's last ``Fatal:`` line (what went wrong; a hint may follow it), else its last line."""
    lines = [line.strip() for line in (text or "").strip().splitlines() if line.strip()]
    fatal = [line for line in lines if line.startswith("Fatal:")]
    return (fatal or lines or ["no output"])[-1]


def describe_restic_error(rc, err):
    """A message a person can act on, from restic's exit code and stderr."""
    detail = last_line(err)
    if rc == RESTIC_RC_NO_REPOSITORY:
        return "the restic repository does not exist (restic exit code 10): %s" % detail
    if rc == RESTIC_RC_WRONG_PASSWORD:
        return "wrong password for the restic repository (restic exit code 12)"
    return "restic failed (rc=%d): %s" % (rc, detail)


class Restic(object):
    """restic on ``host``: ``command`` is restic, or a wrapper that knows the repository.

    ``env`` (the repository, its password, a cloud's keys) goes into restic's
    process environment, which only root can read; never onto its command
    line, which every user can (``/proc/PID/cmdline``).
    """

    def __init__(self, host, command, env=None):
        self.host = host
        self.command = command
        self.env = dict(env or {})

    def call(self, *args, **kwargs):
        """Run restic ARGS; return (rc, stdout, stderr). ``timeout`` (seconds) stops it with rc 124."""
        argv = [self.command] + list(args)
        timeout = kwargs.get("timeout")
        if timeout:
            argv = [self.host.which("timeout", required=True), str(int(timeout))] + argv
        return self.host.run(argv, env=self.env, check=False)

    def run(self, *args):
        rc, out, err = self.call(*args)
        if rc != 0:
            raise ResticError(describe_restic_error(rc, err or out), cmd=[self.command] + list(args), rc=rc)
        return out

    def snapshots(self, host, service, snapshot="latest", tag=None):
        """The snapshots of ``service`` (tag ``service:NAME``, or ``tag``; newest last), or the one named by ``snapshot``."""
        args = ["snapshots", "--json", "--tag", tag or TAG_PREFIX + service]
        if host:
            args += ["--host", host]
        if snapshot != "latest":
            args.append(snapshot)
        found = json.loads(self.run(*args) or "[]") or []
        return sorted(found, key=lambda snap: snap.get("time", ""))

    def restore(self, snapshot_id, target):
        self.run("restore", snapshot_id, "--target", target)


# -- the repository (selfhost.pi.restic_repository) -------------------------------------------


def local_path(repository):
    """The directory of a local repository (``/path`` or ``local:/path``), or None for a remote one."""
    if repository.startswith("local:"):
        repository = repository[len("local:"):]
    return repository if repository.startswith("/") else None


class Repository(object):
    """A restic repository reached with candidate settings, before any of them is written to the host.

    ``names`` maps the option names (repository, password, environment, init,
    timeout) to what errors call them, so that a role's errors name the
    variables its user sets (``backup_password``).
    """

    def __init__(self, host, params, names=None):
        self.host = host
        self.params = params
        self.names = dict(repository="repository", password="password", environment="environment",
                          init="init", timeout="timeout")
        self.names.update((str(k), str(v)) for k, v in (names or {}).items())
        self.validate()
        env = dict((str(k), str(v)) for k, v in (params.get("environment") or {}).items())
        env.update(RESTIC_REPOSITORY=params["repository"], RESTIC_PASSWORD=params["password"])
        command = params["restic"]
        if "/" not in command:
            command = host.program(command)
        # None: --check before restic is installed (Host.program); converge() plans the init.
        self.restic = Restic(host, command, env) if command else None

    def validate(self):
        """Refuse bad settings before restic runs (ValidationError naming the field)."""
        if not self.params["repository"]:
            raise ValidationError("required, the restic repository (restic's -r)", field=self.names["repository"])
        if not self.params["password"]:
            raise ValidationError("required, the repository's password", field=self.names["password"])
        for key, value in sorted((self.params.get("environment") or {}).items()):
            field = "%s.%s" % (self.names["environment"], key)
            if not ENV_NAME_RE.match(str(key)):
                raise ValidationError("not a variable name (letters, digits and _, not starting with a digit); "
                                      "it would be written to a file a root shell reads", field=field)
            if key in RESERVED_ENV:
                raise ValidationError("set from %s and %s; leave it out" % (
                    self.names["repository"], self.names["password"]), field=field)
            if "\x00" in str(value):
                raise ValidationError("a NUL character cannot be in the environment", field=field)
        if self.params["timeout"] < 1:
            raise ValidationError("at least 1 second", field=self.names["timeout"])

    def _fail(self, msg, field="repository"):
        return ResticError("%s; nothing was changed" % msg, field=self.names[field])

    def check(self):
        """``restic cat config --no-lock``: "present" or "absent"; raises ResticError for anything else."""
        timeout = self.params["timeout"]
        rc, out, err = self.restic.call("cat", "config", "--no-lock", timeout=timeout)
        if rc == 0:
            return "present"
        if rc == RESTIC_RC_NO_REPOSITORY:
            return "absent"
        if rc == RESTIC_RC_WRONG_PASSWORD:
            raise self._fail("wrong password (restic exit code 12): it does not open the repository %s names"
                             % self.names["repository"], field="password")
        if rc == RC_TIMEOUT:
            raise self._fail("no answer within %d s (%s); is it reachable" % (timeout, self.names["timeout"]))
        raise self._fail("restic cannot read it (rc %d): %s" % (rc, last_line(err or out)))

    def converge(self):
        """Check, then init an empty repository (not in check mode). Return the result dict.

        In check mode without restic (not installed yet) the repository cannot
        be read: the plan is "checked, and initialized when empty" (changed).
        """
        if self.restic is None:
            result = dict(changed=True, before="unknown", state="present", initialized=False,
                          planned="restic is not installed yet: the repository is checked, and initialized "
                                  "when empty, once it is")
            result["diff"] = dict(before_header="restic repository", after_header="restic repository",
                                  before="unknown (restic is not installed yet)\n", after="present\n")
            return result
        before = self.check()
        result = dict(changed=False, before=before, state="present", initialized=False)
        if before == "absent":
            if not self.params["init"]:
                raise self._fail("no repository there (restic exit code 10) and %s is false" % self.names["init"])
            directory = local_path(self.params["repository"])
            if directory is not None:
                parent = posixpath.dirname(directory.rstrip("/")) or "/"
                if not os.path.isdir(parent):
                    raise self._fail("%s does not exist (is the backup disk mounted?); not initializing a "
                                     "repository elsewhere" % parent)
            result["changed"] = True
            if not self.host.check_mode:
                rc, out, err = self.restic.call("init")
                if rc != 0:
                    raise ResticError("restic init failed (rc %d): %s" % (rc, last_line(err or out)),
                                      field=self.names["repository"])
                result["initialized"] = True
        result["diff"] = dict(before_header="restic repository", after_header="restic repository",
                              before="%s\n" % before, after="%s\n" % result["state"])
        return result


# -- restoring a service's data -------------------------------------------------------------


def _make_recorded(tmp_fd):
    """A ``make`` for open_dir: a missing directory gets the owner and mode restic restored under ``tmp_fd``."""
    def make(parent_fd, name, path):
        recorded = nofollow.lstat(path.lstrip("/"), base_fd=tmp_fd, follow_root_links=False)
        if recorded is not None and stat.S_ISDIR(recorded.st_mode):
            mode, uid, gid = stat.S_IMODE(recorded.st_mode), recorded.st_uid, recorded.st_gid
        else:
            mode, uid, gid = 0o755, 0, 0
        os.mkdir(name, 0o700, dir_fd=parent_fd)
        fd = os.open(name, nofollow.DIR_FLAGS | os.O_NOFOLLOW, dir_fd=parent_fd)
        try:
            if os.fstat(fd).st_uid != os.geteuid():  # replaced between mkdir and open
                raise UnsafePathError("%s was replaced while it was made; not used" % path, path=path)
            os.fchown(fd, uid, gid)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
    return make


class ServiceRestore(object):
    """One service: its data on the host, the snapshot to restore, and how."""

    def __init__(self, host, restic, params, service, tag=None):
        self.host = host
        self.restic = restic
        self.params = params
        self.service = service
        self.name = service["name"]
        self.tag = tag  # None: service:NAME
        self.action = None
        self.snapshot = None
        self.restored = []
        self.set_aside = []
        self.owners = {}
        self.missing_in_snapshot = []
        self.planned_diff = None

    @property
    def targets(self):
        """(path on the host, path inside the restored tree) of every declared item."""
        pairs = [(path, path) for path in self.service["paths"]]
        pairs += [(db, service_data.staged_path(self.name, db)) for db in self.service["sqlite"]]
        return pairs

    def plan(self):
        mode = self.params["mode"]
        if mode == "missing" and service_data.has_data(self.service):
            self.action = "kept"
            return
        snapshots = self.restic.snapshots(self.params["host"], self.name, self.params["snapshot"], tag=self.tag)
        if not snapshots:
            if self.params["snapshot"] != "latest":
                raise RestoreError("snapshot %s is not a snapshot of service %s%s" % (
                    self.params["snapshot"], self.name,
                    " on host %s" % self.params["host"] if self.params["host"] else ""))
            if mode == "replace":
                raise RestoreError("the repository has no snapshot of service %s%s" % (
                    self.name, " from host %s" % self.params["host"] if self.params["host"] else ""))
            self.action = "no snapshot"
            return
        self.snapshot = snapshots[-1]
        files = (self.snapshot.get("summary") or {}).get("total_files_processed")
        if mode == "missing" and files == 0:  # e.g. a volume the service never wrote to: nothing to bring back
            self.action = "empty snapshot"
            return
        self.action = "restored" if mode == "missing" else "replaced"
        self.planned_diff = self._diff()

    def plan_unread(self):
        """The plan when restic is not installed yet (--check on a fresh host): the snapshots cannot be read."""
        if self.params["mode"] == "missing" and service_data.has_data(self.service):
            self.action = "kept"
            return
        self.action = "unknown"
        label = "host state %s" % self.name if self.tag else "%s data" % self.name
        before = "".join("%s: %s\n" % (path, "present" if service_data.present(path) else "missing")
                         for path, dummy in self.targets)
        after = "".join("%s: from the latest snapshot, if the repository has one (restic is not installed yet)\n"
                        % path for path, dummy in self.targets)
        self.planned_diff = dict(before_header=label, after_header=label, before=before, after=after)

    @property
    def to_apply(self):
        return self.action in ("restored", "replaced")

    def apply(self, workdir):
        tmp = tempfile.mkdtemp(prefix="%s." % self.name, dir=workdir)
        try:
            self.restic.restore(self.snapshot["id"], tmp)
            tmp_fd = os.open(tmp, nofollow.DIR_FLAGS | os.O_NOFOLLOW)
            try:
                self._apply_restored(tmp, tmp_fd)
            finally:
                os.close(tmp_fd)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _apply_restored(self, tmp, tmp_fd):
        present, self.missing_in_snapshot = [], []
        for path, inside in self.targets:
            # The restored tree is the service's own data: its links are not followed either.
            if nofollow.lstat(inside.lstrip("/"), base_fd=tmp_fd, follow_root_links=False) is None:
                self.missing_in_snapshot.append(path)
            else:
                present.append((path, inside))
        if not present:
            raise RestoreError("snapshot %s holds none of the declared data of %s (%s)" % (
                self.snapshot.get("short_id", self.snapshot["id"]), self.name,
                ", ".join(path for path, dummy in self.targets)))
        manager = self._manager()
        was_active = False
        if manager is not None:
            was_active = manager.is_active("%s.service" % self.name) in ("active", "activating", "reloading")
            if was_active:
                manager.stop("%s.service" % self.name)
        try:
            self._put_in_place(tmp, tmp_fd, present)
        finally:  # a failed replace must not leave the service down
            if was_active:
                rc, out, err = manager.start("%s.service" % self.name, check=False)
                if rc != 0:
                    raise RestoreError("systemctl start %s.service failed after the restore: %s"
                                       % (self.name, (err or out).strip()))

    def _put_in_place(self, tmp, tmp_fd, present):
        stamp = time.strftime("%Y%m%dT%H%M%S")
        make = _make_recorded(tmp_fd)
        for path, inside in present:
            parent, name = posixpath.split(path)
            dest_fd = nofollow.open_dir(parent, make=make)
            try:
                src_fd = nofollow.open_dir(posixpath.dirname(inside).lstrip("/"), base_fd=tmp_fd,
                                           follow_root_links=False)
                try:
                    if self.action == "replaced":
                        self._set_aside(dest_fd, path, stamp)
                    else:
                        self._clear_empty(dest_fd, path)
                    self._move(src_fd, posixpath.basename(inside), dest_fd, name, tmp + inside, path)
                finally:
                    os.close(src_fd)
                st = os.stat(name, dir_fd=dest_fd, follow_symlinks=False)
                self.owners[path] = "%d:%d" % (st.st_uid, st.st_gid)
            finally:
                os.close(dest_fd)
            self.restored.append(path)

    def _clear_empty(self, dest_fd, path):
        """Remove an empty directory left by a first start; anything else there stops this path."""
        name = posixpath.basename(path)
        st = nofollow.lstat_at(dest_fd, name)
        if st is None:
            return
        if stat.S_ISDIR(st.st_mode):
            fd = os.open(name, nofollow.DIR_FLAGS | os.O_NOFOLLOW, dir_fd=dest_fd)
            try:
                empty = not os.listdir(fd)
            finally:
                os.close(fd)
            if empty:
                os.rmdir(name, dir_fd=dest_fd)
                return
        raise RestoreError("%s: appeared while restoring; nothing of it was replaced" % path)

    def _manager(self):
        """The user's systemd manager when the service user and its manager exist (replace mode only)."""
        if self.action != "replaced":
            return None
        try:
            pwd.getpwnam(self.name)
        except KeyError:
            return None
        manager = Systemctl(self.host, user=self.name)
        return manager if manager.manager_ready() else None

    def _set_aside(self, dest_fd, path, stamp):
        base = posixpath.basename(path)
        names = [base]
        if path in self.service["sqlite"]:
            names += [base + suffix for suffix in SQLITE_SIDE_FILES]
        for name in names:
            if nofollow.lstat_at(dest_fd, name) is not None:
                aside = "%s.replaced-%s" % (name, stamp)
                os.rename(name, aside, src_dir_fd=dest_fd, dst_dir_fd=dest_fd)  # the entry itself, never followed
                self.set_aside.append(posixpath.join(posixpath.dirname(path), aside))

    def _move(self, src_fd, src_name, dest_fd, dest_name, source, dest):
        """Rename SOURCE into place; across file systems, ``cp -a`` it into a private directory there first."""
        try:
            os.rename(src_name, dest_name, src_dir_fd=src_fd, dst_dir_fd=dest_fd)
            return
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
        # cp writes DEST_NAME into a directory only root can write (its working directory, by
        # descriptor), so no link a service user places can redirect it; a rename puts it in place.
        private = ".%s.restoring-%s" % (dest_name, binascii.hexlify(os.urandom(4)).decode("ascii"))
        os.mkdir(private, 0o700, dir_fd=dest_fd)
        private_fd = os.open(private, nofollow.DIR_FLAGS | os.O_NOFOLLOW, dir_fd=dest_fd)
        try:
            st = os.fstat(private_fd)
            if st.st_uid != os.geteuid() or stat.S_IMODE(st.st_mode) & 0o077:
                raise UnsafePathError("%s: the private copy directory was replaced; not used" % dest, path=dest)
            cp = self.host.which("cp", required=True)
            cwd = os.open(".", os.O_RDONLY)
            try:
                os.fchdir(private_fd)
                rc, out, err = self.host.run([cp, "-a", "--", source, dest_name], check=False)
            finally:
                os.fchdir(cwd)
                os.close(cwd)
            if rc != 0:
                raise RestoreError("cp -a %s %s failed: %s" % (source, dest, (err or out).strip()))
            os.rename(dest_name, dest_name, src_dir_fd=private_fd, dst_dir_fd=dest_fd)
        finally:
            os.close(private_fd)
            try:
                os.rmdir(private, dir_fd=dest_fd)
            except OSError:
                pass

    def result(self):
        snap = self.snapshot or {}
        return dict(name=self.name, action=self.action, changed=self.action in CHANGED_ACTIONS,
                    snapshot=snap.get("id"), snapshot_time=snap.get("time"),
                    restored=self.restored, set_aside=self.set_aside, owners=self.owners,
                    missing_in_snapshot=self.missing_in_snapshot)

    def _diff(self):
        before = "".join("%s: %s\n" % (path, "present" if service_data.present(path) else "missing")
                         for path, dummy in self.targets)
        after = "".join("%s: from snapshot %s (%s)%s\n" % (
            path, self.snapshot.get("short_id", self.snapshot["id"]), self.snapshot.get("time", "?"),
            ", the current data set aside" if self.action == "replaced" and service_data.present(path) else "")
            for path, dummy in self.targets)
        label = "host state %s" % self.name if self.tag else "%s data" % self.name
        return dict(before_header=label, after_header=label,
                    before=before, after=after)


def host_state_restore(host, restic, params, entry, field):
    """A ServiceRestore of the host's own state ``entry`` (name, paths), and the errors of its fields.

    Host state lives in root-only directories (``/etc/letsencrypt``, the
    internal CA); it comes back only on a host that has none of it
    (mode ``missing``): a host's current certificates are never replaced.
    """
    errors = []
    name = entry.get("name") or ""
    if not HOST_STATE_NAME_RE.match(name):
        errors.append("%s.name: %r is not a name (letters, digits, _ and -)" % (field, name))
    paths = []
    for index, path in enumerate(entry.get("paths") or []):
        where = "%s.paths[%d]" % (field, index)
        normal = posixpath.normpath(path) if isinstance(path, str) else ""
        if not path.startswith("/") or normal != path.rstrip("/") or normal in PROTECTED_PATHS:
            errors.append("%s: %r is not an absolute, normalized path of its own (not a system directory)"
                          % (where, path))
        elif normal == "/home" or normal.startswith("/home/"):
            errors.append("%s: %s is in a home directory; a service's data is declared in its spec" % (where, path))
        else:
            paths.append(normal)
    if not paths and not errors:
        errors.append("%s.paths: no paths: nothing to restore" % field)
    if params["mode"] != "missing":
        errors.append("%s: host state comes back only with mode=missing (a rebuilt host)" % field)
    state = ServiceRestore(host, restic, params, dict(name=name, uid=0, home="/", paths=paths, sqlite=[]),
                           tag=HOST_STATE_TAG_PREFIX + name)
    return state, errors


def converge(host, params, diff=False):
    """Plan every service first (restic is asked, nothing changes), then restore.

    Returns (result dict, failures). Bad input or a failed plan raises
    ValidationError/RestoreError before anything on the host changes.
    """
    restic = Restic(host, params["restic"])
    # --check on a freshly flashed host: neither restic nor the backup role's
    # wrapper is installed yet (Host.program), so the snapshots cannot be read.
    unread = host.check_mode and (host.program(params["restic"]) is None or host.program("restic") is None)
    errors = []
    services = []
    names = set()
    for index, raw in enumerate(params["services"]):
        field = "services[%d]" % index
        try:
            spec = dict(name=raw["name"], uid=raw["uid"], data=dict(paths=raw["paths"], sqlite=raw["sqlite"]))
            service = service_data.normalize(spec, field)
        except ValueError as exc:
            errors.append(str(exc).replace("%s.data." % field, "%s." % field))
            continue
        if service["name"] in names:
            errors.append("%s.name: %s is listed twice" % (field, service["name"]))
        names.add(service["name"])
        if not service["paths"] and not service["sqlite"]:
            errors.append("%s: no paths and no sqlite databases: nothing to restore" % field)
        services.append(ServiceRestore(host, restic, params, service))
    if params["snapshot"] != "latest" and len(params["services"]) != 1:
        errors.append("snapshot: a snapshot ID names the data of one service; give exactly one service")
    states = []
    for index, entry in enumerate(params.get("host_state") or []):
        state, entry_errors = host_state_restore(host, restic, params, entry, "host_state[%d]" % index)
        errors += entry_errors
        states.append(state)
    if errors:
        raise ValidationError("nothing was changed: %s" % "; ".join(errors), errors=errors)
    for svc in services + states:
        if unread:
            svc.plan_unread()
            continue
        try:
            svc.plan()
        except SelfhostError as exc:
            raise RestoreError("nothing was changed: %s: %s" % (svc.name, exc))
    failures = []
    if not host.check_mode and any(svc.to_apply for svc in services + states):
        workdir = params["work_dir"]
        if not os.path.isdir(workdir):
            os.makedirs(workdir, 0o700)
        os.chmod(workdir, 0o700)
        for svc in states + services:
            if not svc.to_apply:
                continue
            try:
                svc.apply(workdir)
            except (SelfhostError, OSError) as exc:
                failures.append("%s: %s" % (svc.name, exc))
                svc.action = "failed"
    results = [svc.result() for svc in services]
    state_results = [svc.result() for svc in states]
    result = dict(changed=any(entry["changed"] for entry in results + state_results), services=results,
                  host_state=state_results)
    if diff:
        result["diff"] = [svc.planned_diff for svc in states + services if svc.planned_diff]
    return result, failures
