# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retire a service the record names but the list no longer declares (``selfhost.pi.services``).

In this order, each step only on what this collection made:

1. the last snapshot of its data (``selfhost-backup --final NAME``, its data
   entry from the record on standard input), when backups are configured; a
   failing snapshot stops the removal of that service (it stays as it was);
2. its units stopped and removed: the files in its user's unit directories
   named like its units that carry this collection's header
   (:class:`unit_set.Plan` with no unit left), one ``daemon-reload``;
3. its nginx site, when the file carries :data:`nginx.HEADER` and the
   ``sites-enabled`` entry is a link (a file made by hand is kept); applied
   with the other sites: one ``nginx -t``, one reload;
4. linger off (its manager stops); the account only with ``prune_users``
   (``userdel``, its group, subordinate IDs), the home (and so its volumes)
   only when the service is named in ``prune_data``.

Its data is kept otherwise, and the result says where.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import pwd
import shlex

from ansible_collections.selfhost.pi.plugins.module_utils import nginx, unit_set
from ansible_collections.selfhost.pi.plugins.module_utils.constants import BACKUP_CONFIG, SELFHOST_BACKUP
from ansible_collections.selfhost.pi.plugins.module_utils.errors import CommandError, HostStateError
from ansible_collections.selfhost.pi.plugins.module_utils.files import read_text
from ansible_collections.selfhost.pi.plugins.module_utils.service_user import PATHS, ServiceUser, normalize

# Overridable in tests.
FINAL_TAG = "final"


def snapshot_command(setting, name, backup_config=None, program=None):
    """(argv or None, why) of the final snapshot of ``name`` for the ``final_snapshot`` option.

    ``auto``: ``selfhost-backup --final NAME`` when the backup role configured the host (its config exists),
    none otherwise; ``true``: the same, an error when backups are not configured; ``false``: none; any other
    string: that command (split like a shell does, no shell runs it), NAME appended.
    """
    backup_config = backup_config or BACKUP_CONFIG
    program = program or SELFHOST_BACKUP
    if isinstance(setting, str) and setting.strip().lower() in ("true", "yes", "false", "no", "off", "auto"):
        setting = {"true": True, "yes": True, "auto": "auto"}.get(setting.strip().lower(), False)
    if setting in (False, "false", "no", "off", None):
        return None, "final_snapshot is off"
    if setting in (True, "true", "yes", "auto"):
        if os.path.exists(backup_config) and os.path.exists(program):
            return [program, "--final", name], None
        if setting == "auto":
            return None, "backups are not configured on this host (%s)" % backup_config
        raise HostStateError("final_snapshot is true but backups are not configured on this host (%s, %s); "
                             "nothing was changed" % (backup_config, program), field="final_snapshot")
    return shlex.split(str(setting)) + [name], None


class Retired(object):
    """One recorded service that left the list: its plan (check mode) and how to apply it."""

    def __init__(self, host, params, name, entry):
        self.host = host
        self.name = name
        self.entry = entry
        self.uid = int(entry["uid"])
        self.home = entry.get("home") or "/home/%s" % name
        self.remove_data = name in (params.get("prune_data") or [])
        self.remove_user = bool(params.get("prune_users")) or self.remove_data
        self.final_setting = params.get("final_snapshot", "auto")
        self.manager_timeout = params.get("manager_timeout", 30)
        try:
            self.pw = pwd.getpwnam(name)
        except KeyError:
            self.pw = None
        if self.pw is not None and self.pw.pw_uid != self.uid:
            self.pw = None  # another account took the name: none of its files are this service's
        self.units = None
        self.site = None
        self.site_kept = None
        self.linger = False
        self.user_plan = None
        self.snapshot = None
        self.snapshot_why = None
        self.error = None
        self.done = False

    # -- plan -------------------------------------------------------------------
    def plan(self):
        check = self.host.checked()
        self.snapshot, self.snapshot_why = snapshot_command(self.final_setting, self.name)
        if self.pw is not None:
            self.units = unit_set.Plan(check, self.name, self.home, [], self.manager_timeout, wait=False)
        self.plan_site()
        self.linger = self.pw is not None and os.path.exists(os.path.join(PATHS["linger"], self.name))
        if self.remove_user and self.pw is not None:
            spec = normalize(dict(name=self.name, state="absent", remove_home=self.remove_data))
            self.user_plan = ServiceUser(check, spec).converge()

    def plan_site(self):
        if not self.entry.get("site"):
            return
        site = nginx.Site(self.entry["site"])
        text = read_text(site.path)
        if text is None and not os.path.lexists(site.enabled_path):
            return
        if text is not None and not text.startswith(nginx.HEADER):
            self.site_kept = "%s does not carry this collection's header" % site.path
        elif os.path.lexists(site.enabled_path) and not os.path.islink(site.enabled_path):
            self.site_kept = "%s is not a link" % site.enabled_path
        elif os.path.islink(site.enabled_path) and os.path.realpath(site.enabled_path) != site.path:
            self.site_kept = "%s points elsewhere" % site.enabled_path
        if self.site_kept:
            self.host.warn("services: the site of the removed service %s was kept: %s" % (self.name, self.site_kept))
            return
        self.site = site

    @property
    def changed(self):
        return True  # leaving the record is a change, even with nothing left on the host

    def kept_data(self):
        """Where the service's data stays, for the message."""
        if self.remove_data:
            return []
        paths = list((self.entry.get("data") or {}).get("paths") or [])
        return [self.home] + [p for p in paths if not (p == self.home or p.startswith(self.home + "/"))]

    # -- apply ------------------------------------------------------------------
    def take_snapshot(self):
        if not self.snapshot:
            return
        data = dict(self.entry.get("data") or {})
        data.setdefault("name", self.name)
        data.setdefault("uid", self.uid)
        data.setdefault("home", self.home)
        for key in ("paths", "sqlite", "pre_backup"):
            data.setdefault(key, [])
        rc, out, err = self.host.run(self.snapshot, data=json.dumps(data), check=False)
        if rc != 0:
            raise CommandError("the final snapshot failed, so %s was left as it was (rc=%d): %s" % (
                self.name, rc, "\n".join((err or out).strip().splitlines()[-5:])), cmd=self.snapshot, rc=rc)

    def apply(self):
        """Snapshot, stop and remove units, linger off, the account on request. The site goes with the others."""
        self.take_snapshot()
        if self.units is not None and self.units.changed:  # planned again with the real host, then applied
            self.units = unit_set.converge(self.host, self.name, self.home, [], self.manager_timeout, wait=False)
        if self.remove_user and self.pw is not None:
            spec = normalize(dict(name=self.name, state="absent", remove_home=self.remove_data))
            self.user_plan = ServiceUser(self.host, spec).converge()
        elif self.linger:
            self.host.run([self.host.which("loginctl", required=True), "disable-linger", self.name])
        self.done = True

    # -- report -----------------------------------------------------------------
    def message(self):
        check = self.host.check_mode
        parts = ["%s (UID %d) is no longer declared and %s" % (
            self.name, self.uid, "would be removed" if check else "was removed")]
        if self.remove_data:
            parts.append("its home %s %s deleted (prune_data)" % (self.home, "would be" if check else "was"))
        else:
            parts.append("its data is kept in %s (UID %d; declare %s again to get it back)"
                         % (", ".join(self.kept_data()), self.uid, self.name))
        if self.snapshot:
            parts.append("a last snapshot is tagged service:%s and %s (%s)" % (
                self.name, FINAL_TAG, " ".join(self.snapshot)))
        else:
            parts.append("no last snapshot: %s" % self.snapshot_why)
        return "; ".join(parts)

    def result(self):
        removed_units = [r["path"] for r in self.units.removed] if self.units is not None else []
        return dict(
            name=self.name, uid=self.uid, units=removed_units,
            site=self.site.path if self.site and self.site.changed else None, site_kept=self.site_kept,
            linger_off=self.linger, user_removed=bool(self.user_plan and self.user_plan["changed"]),
            data_removed=self.remove_data and self.pw is not None, data_kept=self.kept_data(),
            final_snapshot=" ".join(self.snapshot) if self.snapshot else None,
            msg=self.message(), error=self.error,
        )

    def diffs(self):
        out = []
        if self.snapshot:
            out.append({"before_header": "restic repository", "after_header": "restic repository",
                        "before": "", "after": "last snapshot of %s (tags service:%s, %s): %s\n"
                        % (self.name, self.name, FINAL_TAG, " ".join(self.snapshot))})
        if self.units is not None:
            out.extend(self.units.diffs())
        if self.site and self.site.changed:
            out.extend(self.site.diff())
        if self.user_plan and self.user_plan["changed"]:
            out.append(self.user_plan["diff"])
        elif self.linger:
            path = os.path.join(PATHS["linger"], self.name)
            out.append({"before_header": path, "after_header": "%s (absent)" % path,
                        "before": "linger on\n", "after": "linger off (its systemd manager stops)\n"})
        out.append({"before_header": "data of %s" % self.name, "after_header": "data of %s" % self.name,
                    "before": "%s\n" % self.home,
                    "after": "%s\n" % ("deleted (prune_data)" if self.remove_data else
                                       "kept: %s" % ", ".join(self.kept_data()))})
        return out
