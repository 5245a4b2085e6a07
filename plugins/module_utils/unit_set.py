# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converge the units of one service user together (``selfhost.pi.services``).

A service is one Quadlet ``.container``, or a ``.pod`` with its members, plus
a ``.container`` and a plain ``.timer`` per job (see :mod:`service_units`).
They reference each other (``Pod=web.pod``), so they are converged as one set:

1. every changed Quadlet file goes through ONE generator dry run together
   (``quadlet.validate_dryrun`` with all new contents), so a first converge
   validates a member against its new pod; nothing is written before;
2. the state of every unit comes from one ``systemctl show`` call;
3. files and ``.wants`` links are written, the user's manager reloaded once,
   then each unit is started, restarted or left alone, in order: the pod (or
   the container), its members, the timers. A member whose pod is restarted
   is not restarted again (the pod's restart restarts it: ``BindsTo=``).

Units the service no longer declares are removed (a job or a member taken
out of the spec, ``NAME.container`` when the service became a pod and the
other way round): in the service user's unit directories, the files named
like the service's units (``NAME.container``, ``NAME.pod``,
``NAME-*.container``, ``NAME-job-*.timer``) that start with the header this
collection writes and are not in the set. Their services are stopped first,
while systemd still has their old definitions (a unit of the set that takes
over the same service name is then started), their ``.wants`` links removed
with them.

A job's ``.container`` is ``present`` (never started here: its timer starts
it); a timer is ``started`` and enabled by a link in
``~/.config/systemd/user/timers.target.wants/``, as ``systemctl enable``
makes it. Root reaches the user's directories without following links
(``ManagedFile``, ``ensure_directory``; links and removals through
:mod:`nofollow` descriptors).

``converge(host, user, home, units, ...)`` plans with ``host.check_mode`` and
applies otherwise, like ``quadlet.converge`` does for one unit.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import pwd
import stat

from ansible_collections.selfhost.pi.plugins.module_utils import nofollow, quadlet, quadlet_render
from ansible_collections.selfhost.pi.plugins.module_utils.constants import SYSTEMD_USER_SUBDIR
from ansible_collections.selfhost.pi.plugins.module_utils.errors import HostStateError, ValidationError
from ansible_collections.selfhost.pi.plugins.module_utils.files import ManagedFile, ensure_directory
from ansible_collections.selfhost.pi.plugins.module_utils.systemd import Systemctl


# The headers this collection writes: a file without one is never removed.
HEADERS = (quadlet_render.HEADER, "# Managed by Ansible (selfhost.pi.services).")


def _owned(service, fname, kind):
    """True when ``fname`` is named like a unit of service ``service`` in a directory of ``kind``."""
    if kind == "quadlet":
        return fname in ("%s.container" % service, "%s.pod" % service) or (
            fname.startswith(service + "-") and fname.endswith(".container"))
    return fname.startswith("%s-job-" % service) and fname.endswith(".timer")


def _open_dir(directory):
    """A descriptor of ``directory`` reached without a link a service user placed (see :mod:`nofollow`);
    None when it does not exist."""
    try:
        return nofollow.open_dir(directory)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise quadlet._unsafe(directory, exc)


def _link_state(wants_dir, name):
    """The target of the link ``wants_dir/name``, "" when something else is there, None when nothing is."""
    fd = _open_dir(wants_dir)
    if fd is None:
        return None
    try:
        st = nofollow.lstat_at(fd, name)
        if st is None:
            return None
        return os.readlink(name, dir_fd=fd) if stat.S_ISLNK(st.st_mode) else ""
    finally:
        os.close(fd)


def _make_link(wants_dir, name, target, uid, gid):
    """Make ``wants_dir/name`` a link to ``target`` owned by the user, replacing what is there (as
    ``systemctl enable`` would), never following a link on the way (the user owns these directories)."""
    fd = _open_dir(wants_dir)
    if fd is None:
        raise HostStateError("%s does not exist" % wants_dir)
    try:
        nofollow.remove_at(fd, name)
        os.symlink(target, name, dir_fd=fd)
        os.chown(name, uid, gid, dir_fd=fd, follow_symlinks=False)
    finally:
        os.close(fd)


def _remove_entry(directory, name):
    """Remove ``directory/name`` (a file or a link, never followed), reached without following links."""
    fd = _open_dir(directory)
    if fd is None:
        return
    try:
        nofollow.remove_at(fd, name)
    finally:
        os.close(fd)


class Plan(object):
    """What converging the set means for each unit; made in check mode and reused to apply."""

    def __init__(self, host, user, home, units, manager_timeout=30, wait=True, restart=()):
        self.host = host
        self.user = user
        self.units = units
        try:
            self.pw = pwd.getpwnam(user)
        except KeyError:
            self.pw = None
        self.uid, self.gid = (self.pw.pw_uid, self.pw.pw_gid) if self.pw else (None, None)
        self.quadlet_dir = quadlet.unit_directory(self.pw) if self.pw else os.path.join(home, quadlet.USER_UNIT_SUBDIR)
        self.systemd_dir = os.path.join(self.pw.pw_dir if self.pw else home, SYSTEMD_USER_SUBDIR)
        self.systemctl = None
        self.ready = False
        if self.pw is not None:
            self.systemctl = Systemctl(host, user, self.uid)
            if wait and any(u["state"] == "started" for u in units):
                self.systemctl.wait_for_manager(manager_timeout)
            self.ready = self.systemctl.manager_ready()
        self.restart = set(restart)
        self.service_name = user
        self._plan()

    def directory(self, unit):
        return self.quadlet_dir if unit["kind"] == "quadlet" else self.systemd_dir

    def _plan(self):
        self.dirs = []
        for path in sorted(set([self.directory(u) for u in self.units]
                               + [os.path.join(self.systemd_dir, "%s.wants" % u["wanted_by"])
                                  for u in self.units if u.get("wanted_by")])):
            try:
                if ensure_directory(path, quadlet.DIR_MODE, self.uid, self.gid, check_mode=True):
                    self.dirs.append(path)
            except OSError as exc:
                raise quadlet._unsafe(path, exc)
        for unit in self.units:
            unit["path"] = os.path.join(self.directory(unit), unit["fname"])
            unit["file"] = ManagedFile(unit["path"], unit["content"], quadlet.FILE_MODE, self.uid, self.gid)
            unit["link"] = None
            if unit.get("wanted_by"):
                wants = os.path.join(self.systemd_dir, "%s.wants" % unit["wanted_by"])
                current = _link_state(wants, unit["fname"])
                if current != unit["path"]:
                    unit["link"] = (wants, current)
        self.removed = self._removed()
        changed = dict((u["fname"], u["content"]) for u in self.units
                       if u["kind"] == "quadlet" and u["file"].content_changed)
        if changed:
            error, warnings = quadlet.validate_dryrun(
                self.host, self.quadlet_dir, changed, self.user,
                absent=[r["fname"] for r in self.removed if r["kind"] == "quadlet"])
            for warning in warnings:
                self.host.warn("quadlet: %s" % warning)
            if error:
                paths = ", ".join(os.path.join(self.quadlet_dir, f) for f in sorted(changed))
                raise ValidationError("%s: the Quadlet generator rejects the units, nothing was changed: %s"
                                      % (paths, error))
        # A removed unit's service is stopped while systemd still has its old definition, also when a unit of
        # the set takes over its name (NAME.service of a container that became a pod): that one is then started.
        asked = [u["service"] for u in self.units]
        asked += [r["service"] for r in self.removed if r["service"] not in asked]
        states = self.systemctl.states(asked) if self.ready else {}
        for gone in self.removed:
            gone["active_before"] = states.get(gone["service"], ("inactive",))[0]
            gone["stop"] = gone["active_before"] in quadlet.RUNNING_STATES
        restarted_pods = set()
        for unit in self.units:
            active, sub, need_reload = states.get(unit["service"], ("inactive", "dead", False))
            content_changed = unit["file"].content_changed
            unit["stale"] = bool(self.ready and not content_changed and need_reload)
            state = unit["state"]
            if state == "started" and unit["fname"] in self.restart:
                state = "restarted"
            action, expected = quadlet.plan_service(state, active, content_changed or unit["stale"], True, sub)
            if action == "restart" and unit.get("part_of") in restarted_pods:
                action, expected = ("start", "active") if active not in quadlet.RUNNING_STATES else (None, active)
            if action and not self.ready:  # nothing runs without a manager (a user made by this run)
                action, expected = None, active
            if action == "restart":
                restarted_pods.add(unit["fname"])
            unit.update(action=action, active_before=active, sub_before=sub, active_state=expected,
                        file_changed=unit["file"].changed)
            unit["changed"] = bool(unit["file_changed"] or unit["link"] or action or unit["stale"])

    def _removed(self):
        """The files of units the service no longer declares (see the module's docstring)."""
        wanted = set((u["kind"], u["fname"]) for u in self.units)
        out = []
        for kind, directory in (("quadlet", self.quadlet_dir), ("systemd", self.systemd_dir)):
            fd = _open_dir(directory)
            if fd is None:
                continue
            try:
                names = sorted(os.listdir(fd))
            finally:
                os.close(fd)
            for fname in names:
                if (kind, fname) in wanted or not _owned(self.service_name, fname, kind):
                    continue
                text = quadlet._read_installed(directory, fname)
                if text is None or not text.startswith(HEADERS):
                    continue
                if kind == "quadlet":
                    unit_type = fname.rsplit(".", 1)[1]
                    service = quadlet_render.service_name_from_content(fname.rsplit(".", 1)[0], unit_type, text,
                                                                       os.path.join(directory, fname))
                else:
                    service = fname
                wants = os.path.join(self.systemd_dir, "timers.target.wants")
                link = wants if kind == "systemd" and _link_state(wants, fname) is not None else None
                out.append(dict(kind=kind, fname=fname, directory=directory, path=os.path.join(directory, fname),
                                content=text, service=service, link=link, stop=False))
        return out

    @property
    def changed(self):
        return bool(self.dirs) or bool(self.removed) or any(u["changed"] for u in self.units)

    def diffs(self):
        out = []
        for gone in self.removed:
            out.append({"before_header": gone["path"], "after_header": "%s (absent)" % gone["path"],
                        "before": gone["content"], "after": ""})
            if gone["link"]:
                path = os.path.join(gone["link"], gone["fname"])
                out.append({"before_header": path, "after_header": "%s (absent)" % path,
                            "before": "link to %s\n" % gone["path"], "after": ""})
            if gone["stop"]:
                out.append(quadlet.service_diff(gone["service"], gone["active_before"], "", "inactive", "stop"))
        for unit in self.units:
            if unit["file_changed"]:
                out.append(unit["file"].diff())
            if unit["link"]:
                wants, current = unit["link"]
                path = os.path.join(wants, unit["fname"])
                out.append({"before_header": path, "after_header": path,
                            "before": "" if current is None else "link to %s\n" % (current or "(not a link)"),
                            "after": "link to %s (enabled)\n" % unit["path"]})
            if unit["stale"]:
                out.append({"before_header": unit["service"], "after_header": unit["service"],
                            "before": "%s: loaded from an older %s\n" % (unit["service"], unit["path"]),
                            "after": "%s: daemon-reload\n" % unit["service"]})
            if unit["action"]:
                out.append(quadlet.service_diff(unit["service"], unit["active_before"], unit["sub_before"],
                                                unit["active_state"], unit["action"]))
        return out

    def apply(self):
        """Write, reload once, act in order. Raises the first failure (later units are left as they were)."""
        if self.pw is None:
            raise HostStateError("%s does not exist on this host" % self.user, field="user")
        reload_needed = False
        for gone in self.removed:
            if gone["stop"] and self.ready:
                self.systemctl.stop(gone["service"])
            if gone["link"]:
                _remove_entry(gone["link"], gone["fname"])
            _remove_entry(gone["directory"], gone["fname"])
            reload_needed = True
        for path in self.dirs:
            try:
                ensure_directory(path, quadlet.DIR_MODE, self.uid, self.gid)
            except OSError as exc:
                raise quadlet._unsafe(path, exc)
        for unit in self.units:
            if unit["file_changed"]:
                try:
                    unit["file"].apply()
                except OSError as exc:
                    raise quadlet._unsafe(unit["path"], exc)
            if unit["link"]:
                _make_link(unit["link"][0], unit["fname"], unit["path"], self.uid, self.gid)
            reload_needed = reload_needed or unit["file"].content_changed or unit["stale"] or bool(unit["link"])
        if not self.ready:
            return
        if reload_needed:
            self.systemctl.daemon_reload()
        for unit in self.units:
            if unit["action"]:
                quadlet.act(self.systemctl, unit["service"], unit["action"], unit["path"])
        acted = [u["service"] for u in self.units if u["action"]]
        if acted:
            states = self.systemctl.states(acted)
            for unit in self.units:
                if unit["action"]:
                    unit["active_state"] = states[unit["service"]][0]

    def results(self):
        keys = ("fname", "path", "service", "changed", "active_state")
        return [dict((k, u[k]) for k in keys) for u in self.units] + [
            dict(fname=r["fname"], path=r["path"], service=r["service"], changed=True, active_state="removed")
            for r in self.removed]


def converge(host, user, home, units, manager_timeout=30, wait=True, restart=()):
    """Plan the set on ``host``; unless ``host.check_mode``, apply what changed. Return the Plan."""
    plan = Plan(host, user, home, units, manager_timeout, wait, restart)
    if not host.check_mode and plan.changed:
        plan.apply()
    return plan
