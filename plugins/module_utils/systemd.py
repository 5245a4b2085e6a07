# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one systemctl/journalctl helper, for the system manager or one user's manager.

``Systemctl(host)`` talks to the system manager. ``Systemctl(host, user="web")``
talks to that user's manager: root runs ``systemctl --user ...`` as the user
(``runuser -u web -- env XDG_RUNTIME_DIR=/run/user/UID ...``), which works
once the user's manager runs (linger enabled) and its bus socket
``/run/user/UID/bus`` exists. Messages name the equivalent command a person
types as root, ``systemctl --user -M web@ ...``; the modules do not run that
form because each call goes through a PAM session that ``systemd-run`` opens
for it (about ten times slower: a converge asks every service's manager). ``journalctl --user -M`` does not work for that
(it needs systemd-machined), so ``journal_tail`` reads the system journal with
``_SYSTEMD_USER_UNIT=``/``USER_UNIT=`` matches on the user's UID instead.

``host`` is a :mod:`host` object (``ModuleHost`` in a module, ``ProcessHost`` in
a host program). Failures raise :class:`~errors.CommandError` (a command that
failed) or :class:`~errors.HostStateError` (a user manager that never came);
the caller passes ``check=False`` to handle a result itself.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import pwd
import time

from ansible_collections.selfhost.pi.plugins.module_utils.constants import USER_BUS_PATH
from ansible_collections.selfhost.pi.plugins.module_utils.errors import CommandError, HostStateError

# Module-level so that tests can point it at a temporary directory.
BUS_PATH = USER_BUS_PATH

STATE_PROPERTIES = "--property=Id,ActiveState,SubState,NeedDaemonReload"

# States read ahead by prefetch_states, {(user or None, unit): (ActiveState, SubState, NeedDaemonReload)}.
# Each is used once, by the first states() or is_active() call that asks for it, so a call after a
# change asks systemd again.
_PREFETCHED = {}


def show_blocks(out):
    """``systemctl show``'s output as one {property: value} dict per unit, in the order printed.

    systemctl prints one block per unit (in the order asked, or for patterns in its own order), separated by an
    empty line.
    """
    return [dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
            for block in out.strip().split("\n\n")]


def _parse_states(out, units, cmd):
    """The state of each of ``units``, asked in that order."""
    blocks = show_blocks(out)
    if len(blocks) != len(units):
        raise CommandError("systemctl show of %d units printed %d blocks" % (len(units), len(blocks)),
                           cmd=cmd, stdout=out)
    return dict((unit, (props.get("ActiveState", "unknown"), props.get("SubState", "unknown"),
                        props.get("NeedDaemonReload") == "yes")) for unit, props in zip(units, blocks))


def prefetch_states(host, asks):
    """Read the states of many managers' units at once, for the states() calls that follow.

    ``asks`` are ``(user, uid, units)``; ``user`` None is the system manager. One ``systemctl show``
    per manager, all started side by side (``host.run_many``), so a converge of thirty services waits
    about as long as for a few. A manager that is not running, or a call that fails, is left out: the
    later states() call then asks again and reports the error itself. A host without ``run_many``
    (a test's fake) prefetches nothing.
    """
    _PREFETCHED.clear()
    if not hasattr(host, "run_many"):
        return
    asked = []
    for user, uid, units in asks:
        systemctl = Systemctl(host, user, uid)
        if units and systemctl.manager_ready():
            asked.append((systemctl, list(units)))
    results = host.run_many([systemctl.call("show", STATE_PROPERTIES, *units) for systemctl, units in asked])
    for (systemctl, units), (rc, out, dummy) in zip(asked, results):
        if rc != 0:
            continue
        try:
            states = _parse_states(out, units, systemctl.command("show", *units))
        except CommandError:
            continue
        for unit, state in states.items():
            _PREFETCHED[(systemctl.user, unit)] = state


class Systemctl(object):
    """systemctl for the system manager (user=None) or for USER's manager."""

    def __init__(self, host, user=None, uid=None):
        self.host = host
        self.user = user
        self.uid = uid
        if user is not None and uid is None:
            self.uid = pwd.getpwnam(user).pw_uid
        self.systemctl = host.which("systemctl", required=True)
        self.journalctl = host.which("journalctl")
        self.need_daemon_reload = False
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

    def wait_for_manager(self, timeout, field="user"):
        """Wait up to ``timeout`` seconds for the user's manager; raise if it never comes.

        A user's manager runs without a login session only when linger is
        enabled for that user; the error says so.
        """
        deadline = time.time() + max(timeout, 0)
        while not self.manager_ready():
            if time.time() >= deadline:
                raise HostStateError(
                    "the systemd manager of %s (uid %d) is not running: %s did not appear "
                    "within %d s. Enable linger for %s (selfhost.pi.service_user, or "
                    "'loginctl enable-linger %s') so its manager runs without a login session."
                    % (self.user, self.uid, self.bus_path, timeout, self.user, self.user), field=field)
            time.sleep(0.2)

    def command(self, *args):
        """The systemctl argv for ``args`` in this scope, as a person runs it as root (for messages)."""
        return [self.systemctl] + self.scope_args + list(args)

    def _env(self):
        return {"XDG_RUNTIME_DIR": os.path.dirname(self.bus_path),
                "DBUS_SESSION_BUS_ADDRESS": "unix:path=%s" % self.bus_path}

    def call(self, *args):
        """``systemctl ARGS`` in this scope as a ``(user, argv, env)`` entry of ``host.run_many``."""
        if self.user is None:
            return (None, self.command(*args), None)
        return (self.user, [self.systemctl, "--user"] + list(args), self._env())

    def _prefetched(self, units):
        """The prefetched states of ``units`` (used up), or None unless all of them were prefetched."""
        keys = [(self.user, unit) for unit in units]
        if not units or not all(key in _PREFETCHED for key in keys):
            return None
        return dict((unit, _PREFETCHED.pop(key)) for unit, key in zip(units, keys))

    def run(self, *args, **kwargs):
        """Run ``systemctl [--user -M USER@] ARGS``; return (rc, stdout, stderr).

        With ``check=True`` (the default) a non-zero rc raises CommandError.
        """
        check = kwargs.pop("check", True)
        if self.user is None:
            return self.host.run(self.command(*args), check=check)
        return self.host.run_as(self.user, [self.systemctl, "--user"] + list(args), cwd="/", env=self._env(),
                                check=check, what=" ".join(self.command(*args)))

    def is_active(self, unit):
        """The unit's ActiveState: active, inactive, failed, activating, deactivating, ..."""
        prefetched = self._prefetched([unit])
        if prefetched:
            return prefetched[unit][0]
        rc, out, err = self.run("is-active", unit, check=False)
        if not out.strip():
            # rc 3/4 with output = inactive/unknown unit; no output = the manager did not answer.
            cmd = self.command("is-active", unit)
            raise CommandError("%s failed (rc=%d): %s" % (" ".join(cmd), rc, err.strip()),
                               cmd=cmd, rc=rc, stderr=err)
        return out.strip().splitlines()[-1]

    def show(self, unit, *properties):
        """A dict of ``properties`` of ``unit`` from one ``systemctl show`` call."""
        dummy, out, dummy = self.run("show", "--property=" + ",".join(properties), unit)
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def state(self, unit):
        """(ActiveState, SubState) of ``unit`` in one ``systemctl show`` call.

        Unlike ``is-active`` this tells a running service (active/running)
        from one waiting to be restarted after a crash (activating/auto-restart).
        A unit systemd does not know is ("inactive", "dead").
        """
        props = self.show(unit, "ActiveState", "SubState", "NeedDaemonReload")
        # systemd compares the unit's files, Quadlet's SourcePath= included, with what it loaded.
        self.need_daemon_reload = props.get("NeedDaemonReload") == "yes"
        return props.get("ActiveState", "unknown"), props.get("SubState", "unknown")

    def states(self, units):
        """{unit: (ActiveState, SubState, NeedDaemonReload)} of several units, from one ``systemctl show`` call
        (or from :func:`prefetch_states`, when it read all of them)."""
        if not units:
            return {}
        prefetched = self._prefetched(units)
        if prefetched:
            return prefetched
        dummy, out, dummy = self.run("show", STATE_PROPERTIES, *units)
        return _parse_states(out, units, self.command("show", *units))

    def daemon_reload(self):
        return self.run("daemon-reload")

    def start(self, unit, check=True, no_block=False):
        return self.run(*(["start"] + (["--no-block"] if no_block else []) + [unit]), check=check)

    def stop(self, *units, **kwargs):
        return self.run(*(["stop"] + list(units)), check=kwargs.get("check", True))

    def restart(self, unit, check=True):
        return self.run("restart", unit, check=check)

    def reload(self, unit, check=True):
        """``systemctl reload``: the unit's ExecReload= (nginx re-reads its config; never a restart)."""
        return self.run("reload", unit, check=check)

    def status_text(self, unit):
        """``systemctl status --lines=0`` of ``unit`` (for error messages; '' when it says nothing)."""
        return self.run("status", "--no-pager", "--lines=0", unit, check=False)[1].strip()

    def journal_cmd(self, unit, lines=20):
        """The journalctl argv showing the last ``lines`` lines for ``unit`` in this scope."""
        cmd = [self.journalctl or "journalctl", "--no-pager", "-q", "-n", str(lines)]
        if self.uid is None:
            return cmd + ["-u", unit]
        uid = "_UID=%d" % self.uid
        return cmd + ["_SYSTEMD_USER_UNIT=%s" % unit, uid, "+", "USER_UNIT=%s" % unit, uid]

    def journal_tail(self, unit, lines=20):
        """The last ``lines`` journal lines of ``unit`` (best effort, '' if unreadable)."""
        rc, out, err = self.host.run(self.journal_cmd(unit, lines), check=False)
        return out.rstrip() if rc == 0 else ""
