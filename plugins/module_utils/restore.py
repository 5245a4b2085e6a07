# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bring a service's data back from its restic snapshots (``selfhost.pi.restic_restore``).

A snapshot of service NAME carries the tag ``service:NAME`` and the host name
given to ``restic backup --host``. It holds the service's declared paths at
their absolute places, and each SQLite database as the consistent copy kept at
``service_data.staged_path(NAME, DB)``.

Restoring goes through a private directory: ``restic restore --target TMP``
first, then each declared path is renamed into place (copied with ``cp -a``
across file systems). Parent directories that do not exist yet are made with
the owner and mode the snapshot recorded, so a service's home comes back owned
by its pinned UID/GID before the account itself exists.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json
import os
import pwd
import shutil
import tempfile
import time

from ansible_collections.selfhost.pi.plugins.module_utils import service_data
from ansible_collections.selfhost.pi.plugins.module_utils.host import ModuleHost
from ansible_collections.selfhost.pi.plugins.module_utils.systemd import Systemctl

TAG_PREFIX = "service:"
# restic's exit codes (restic >= 0.17, "Scripting" in its manual).
RC_NO_REPOSITORY = 10
RC_WRONG_PASSWORD = 12
# Actions after which the service's data differs from before (a failed restore may have moved some paths).
CHANGED_ACTIONS = ("restored", "replaced", "failed")


class RestoreError(Exception):
    pass


def describe_restic_error(rc, err):
    """A message a person can act on, from restic's exit code and stderr."""
    text = (err or "").strip().splitlines()
    detail = text[-1] if text else "no output"
    if rc == RC_NO_REPOSITORY:
        return "the restic repository does not exist (restic exit code 10): %s" % detail
    if rc == RC_WRONG_PASSWORD:
        return "wrong password for the restic repository (restic exit code 12)"
    return "restic failed (rc=%d): %s" % (rc, detail)


class Restic(object):
    def __init__(self, module, command):
        self.module = module
        self.command = command

    def run(self, *args):
        rc, out, err = self.module.run_command([self.command] + list(args), environ_update={"LC_ALL": "C"})
        if rc != 0:
            raise RestoreError(describe_restic_error(rc, err or out))
        return out

    def snapshots(self, host, service, snapshot="latest"):
        """The snapshots of ``service`` (newest last), or the one named by ``snapshot``."""
        args = ["snapshots", "--json", "--tag", TAG_PREFIX + service]
        if host:
            args += ["--host", host]
        if snapshot != "latest":
            args.append(snapshot)
        found = json.loads(self.run(*args) or "[]") or []
        return sorted(found, key=lambda snap: snap.get("time", ""))

    def restore(self, snapshot_id, target):
        self.run("restore", snapshot_id, "--target", target)


def _copy_parents(tmp, path):
    """Make the missing parents of ``path`` with the owner and mode restic restored under ``tmp``."""
    missing = []
    parent = os.path.dirname(path)
    while parent and not os.path.isdir(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    for directory in reversed(missing):
        recorded = tmp + directory
        if os.path.isdir(recorded):
            st = os.stat(recorded)
            os.mkdir(directory, st.st_mode & 0o7777)
            os.chown(directory, st.st_uid, st.st_gid)
            os.chmod(directory, st.st_mode & 0o7777)
        else:
            os.mkdir(directory, 0o755)


class ServiceRestore(object):
    """One service: its data on the host, the snapshot to restore, and how."""

    def __init__(self, module, restic, params, service):
        self.module = module
        self.restic = restic
        self.params = params
        self.service = service
        self.name = service["name"]
        self.action = None
        self.snapshot = None
        self.restored = []
        self.set_aside = []
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
        snapshots = self.restic.snapshots(self.params["host"], self.name, self.params["snapshot"])
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

    @property
    def to_apply(self):
        return self.action in ("restored", "replaced")

    def apply(self, workdir):
        tmp = tempfile.mkdtemp(prefix="%s." % self.name, dir=workdir)
        try:
            self.restic.restore(self.snapshot["id"], tmp)
            present = [(path, tmp + inside) for path, inside in self.targets if os.path.lexists(tmp + inside)]
            self.missing_in_snapshot = [path for path, inside in self.targets if not os.path.lexists(tmp + inside)]
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
                self._put_in_place(tmp, present)
            finally:  # a failed replace must not leave the service down
                if was_active:
                    rc, out, err = manager.start("%s.service" % self.name, check=False)
                    if rc != 0:
                        raise RestoreError("systemctl start %s.service failed after the restore: %s"
                                           % (self.name, (err or out).strip()))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _put_in_place(self, tmp, present):
        stamp = time.strftime("%Y%m%dT%H%M%S")
        for path, source in present:
            if self.action == "replaced":
                self._set_aside(path, stamp)
            elif os.path.lexists(path):  # an empty directory left by a first start
                if os.path.isdir(path) and not os.path.islink(path) and not os.listdir(path):
                    os.rmdir(path)
                else:
                    raise RestoreError("%s: appeared while restoring; nothing of it was replaced" % path)
            _copy_parents(tmp, path)
            self._move(source, path)
            self.restored.append(path)

    def _manager(self):
        """The user's systemd manager when the service user and its manager exist (replace mode only)."""
        if self.action != "replaced":
            return None
        try:
            pwd.getpwnam(self.name)
        except KeyError:
            return None
        manager = Systemctl(ModuleHost(self.module), user=self.name)
        return manager if manager.manager_ready() else None

    def _set_aside(self, path, stamp):
        names = [path]
        if path in self.service["sqlite"]:
            names += [path + suffix for suffix in service_data.SQLITE_SIDE_FILES]
        for name in names:
            if os.path.lexists(name):
                aside = "%s.replaced-%s" % (name, stamp)
                os.rename(name, aside)
                self.set_aside.append(aside)

    def _move(self, source, dest):
        try:
            os.rename(source, dest)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            cp = self.module.get_bin_path("cp", required=True)
            rc, out, err = self.module.run_command([cp, "-a", "--", source, dest])
            if rc != 0:
                raise RestoreError("cp -a %s %s failed: %s" % (source, dest, (err or out).strip()))

    def result(self):
        owners = {}
        for path in self.restored:
            st = os.lstat(path)
            owners[path] = "%d:%d" % (st.st_uid, st.st_gid)
        snap = self.snapshot or {}
        return dict(name=self.name, action=self.action, changed=self.action in CHANGED_ACTIONS,
                    snapshot=snap.get("id"), snapshot_time=snap.get("time"),
                    restored=self.restored, set_aside=self.set_aside, owners=owners,
                    missing_in_snapshot=self.missing_in_snapshot)

    def _diff(self):
        before = "".join("%s: %s\n" % (path, "present" if service_data.present(path) else "missing")
                         for path, dummy in self.targets)
        after = "".join("%s: from snapshot %s (%s)%s\n" % (
            path, self.snapshot.get("short_id", self.snapshot["id"]), self.snapshot.get("time", "?"),
            ", the current data set aside" if self.action == "replaced" and service_data.present(path) else "")
            for path, dummy in self.targets)
        return dict(before_header="%s data" % self.name, after_header="%s data" % self.name,
                    before=before, after=after)


def converge(module, params):
    """Plan every service first (restic is asked, nothing changes), then restore. Return the result dict."""
    restic = Restic(module, params["restic"])
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
        services.append(ServiceRestore(module, restic, params, service))
    if params["snapshot"] != "latest" and len(params["services"]) != 1:
        errors.append("snapshot: a snapshot ID names the data of one service; give exactly one service")
    if errors:
        module.fail_json(msg="nothing was changed: %s" % "; ".join(errors), errors=errors)
    for svc in services:
        try:
            svc.plan()
        except RestoreError as exc:
            module.fail_json(msg="nothing was changed: %s: %s" % (svc.name, exc))
    failures = []
    if not module.check_mode and any(svc.to_apply for svc in services):
        workdir = params["work_dir"]
        if not os.path.isdir(workdir):
            os.makedirs(workdir, 0o700)
        os.chmod(workdir, 0o700)
        for svc in services:
            if not svc.to_apply:
                continue
            try:
                svc.apply(workdir)
            except (RestoreError, OSError) as exc:
                failures.append("%s: %s" % (svc.name, exc))
                svc.action = "failed"
    results = [svc.result() for svc in services]
    result = dict(changed=any(entry["changed"] for entry in results), services=results)
    if module._diff:
        result["diff"] = [svc.planned_diff for svc in services if svc.planned_diff]
    return result, failures
