# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small systemctl/journalctl wrapper for the system or one user's manager.

``Systemctl(module)`` talks to the system manager. ``Systemctl(module, user="web")``
talks to that user's manager as root, with ``systemctl --user -M web@ ...``; that
works once the user's manager runs (linger enabled) and its bus socket
``/run/user/UID/bus`` exists. ``journalctl --user -M`` does not work for that
(it needs systemd-machined), so ``journal_tail`` reads the system journal with
``_SYSTEMD_USER_UNIT=``/``USER_UNIT=`` matches on the user's UID instead.

Every command goes through ``module.run_command``; failures call
``module.fail_json`` with the command, rc, stdout and stderr unless the caller
passes ``check=False`` and handles the result itself.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import pwd
import time

# A user's manager is reachable once its D-Bus socket exists (dbus-user-session).
BUS_PATH = "/run/user/%d/bus"


class Systemctl(object):
    """systemctl for the system manager (user=None) or for USER's manager."""

    def __init__(self, module, user=None):
        self.module = module
        self.user = user
        self.uid = None
        if user is not None:
            self.uid = pwd.getpwnam(user).pw_uid
        self.systemctl = module.get_bin_path("systemctl", required=True)
        self.need_daemon_reload = False
        self.journalctl = module.get_bin_path("journalctl")
        self.scope_args = ["--user", "-M", "%s@" % user] if user is not None else []

    @property
    def scope(self):
        """"system" or "user"."""
        return "system" if self.user is None else "user"

    @property
    def bus_path(self):
        """The user manager's D-Bus socket (None for the system manager)."""
        return None if self.uid is None else BUS_PATH % self.uid

    def manager_ready(self):
        """True when the manager can be reached right now (always for system)."""
        return self.uid is None or os.path.exists(self.bus_path)

    def wait_for_manager(self, timeout):
        """Wait up to ``timeout`` seconds for the user's manager; fail if it never comes.

        A user's manager runs without a login session only when linger is
        enabled for that user; the error says so.
        """
        deadline = time.time() + max(timeout, 0)
        while not self.manager_ready():
            if time.time() >= deadline:
                self.module.fail_json(
                    msg="user: the systemd manager of %s (uid %d) is not running: %s did not appear "
                        "within %d s. Enable linger for %s (selfhost.pi.service_user, or "
                        "'loginctl enable-linger %s') so its manager runs without a login session."
                        % (self.user, self.uid, self.bus_path, timeout, self.user, self.user))
            time.sleep(0.2)

    def command(self, *args):
        """The systemctl argv for ``args`` in this scope."""
        return [self.systemctl] + self.scope_args + list(args)

    def run(self, *args, **kwargs):
        """Run ``systemctl [--user -M USER@] ARGS``; return (rc, stdout, stderr).

        With ``check=True`` (the default) a non-zero rc fails the module.
        """
        check = kwargs.pop("check", True)
        cmd = self.command(*args)
        rc, out, err = self.module.run_command(cmd, environ_update={"SYSTEMD_PAGER": "", "LC_ALL": "C"})
        if check and rc != 0:
            self.module.fail_json(msg="%s failed (rc=%d): %s" % (" ".join(cmd), rc, (err or out).strip()),
                                  cmd=cmd, rc=rc, stdout=out, stderr=err)
        return rc, out, err

    def is_active(self, unit):
        """The unit's ActiveState: active, inactive, failed, activating, deactivating, ..."""
        rc, out, err = self.run("is-active", unit, check=False)
        if not out.strip():
            # rc 3/4 with output = inactive/unknown unit; no output = the manager did not answer.
            cmd = " ".join(self.command("is-active", unit))
            self.module.fail_json(msg="%s failed (rc=%d): %s" % (cmd, rc, err.strip()), rc=rc, stderr=err)
        return out.strip().splitlines()[-1]

    def state(self, unit):
        """(ActiveState, SubState) of ``unit`` in one ``systemctl show`` call.

        Unlike ``is-active`` this tells a running service (active/running)
        from one waiting to be restarted after a crash (activating/auto-restart).
        A unit systemd does not know is ("inactive", "dead").
        """
        dummy, out, dummy = self.run("show", "--property=ActiveState,SubState,NeedDaemonReload", unit)
        props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        # systemd compares the unit's files, Quadlet's SourcePath= included, with what it loaded.
        self.need_daemon_reload = props.get("NeedDaemonReload") == "yes"
        return props.get("ActiveState", "unknown"), props.get("SubState", "unknown")

    def daemon_reload(self):
        return self.run("daemon-reload")

    def start(self, unit, check=True):
        return self.run("start", unit, check=check)

    def stop(self, unit, check=True):
        return self.run("stop", unit, check=check)

    def restart(self, unit, check=True):
        return self.run("restart", unit, check=check)

    def journal_cmd(self, unit, lines=20):
        """The journalctl argv showing the last ``lines`` lines for ``unit`` in this scope."""
        cmd = [self.journalctl or "journalctl", "--no-pager", "-q", "-n", str(lines)]
        if self.uid is None:
            return cmd + ["-u", unit]
        uid = "_UID=%d" % self.uid
        return cmd + ["_SYSTEMD_USER_UNIT=%s" % unit, uid, "+", "USER_UNIT=%s" % unit, uid]

    def journal_tail(self, unit, lines=20):
        """The last ``lines`` journal lines of ``unit`` (best effort, '' if unreadable)."""
        rc, out, err = self.module.run_command(self.journal_cmd(unit, lines), environ_update={"LC_ALL": "C"})
        return out.rstrip() if rc == 0 else ""
