# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The small host interface module_utils work through.

A step needs four things from where it runs: run a command, run a command as
a service user, know whether this is check mode, and warn. ``ModuleHost``
gives them from an ``AnsibleModule``; ``ProcessHost`` from a plain Python
process (the host programs ``selfhost-backup``, ``selfhost-update`` and
``selfhost-blog-build``); unit tests pass a fake of the same shape.

Failures raise :class:`~errors.CommandError`; nothing here calls ``fail_json``.
``host.checked()`` is the same host in check mode: the ``services`` module's
plan pass uses it instead of a stand-in module.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import subprocess
import sys

from ansible_collections.selfhost.pi.plugins.module_utils.errors import CommandError, HostStateError

RUNUSER = "runuser"
BASE_ENV = {"LC_ALL": "C", "SYSTEMD_PAGER": ""}


def user_runtime_dir(uid):
    """A user's ``XDG_RUNTIME_DIR`` (systemd-logind's ``/run/user/UID``)."""
    return "/run/user/%d" % uid


def as_user_argv(user, argv, env=None, runuser=RUNUSER):
    """``runuser -u USER -- env K=V ... ARGV``: root runs ARGV as USER, never through a shell."""
    prefix = [runuser, "-u", user, "--"]
    if env:
        prefix += ["env"] + ["%s=%s" % (k, v) for k, v in sorted(env.items())]
    return prefix + list(argv)


def _stdout(msg):
    """A host program's log line: systemd puts its standard output in the journal."""
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


def _tail(text, lines=5):
    return "\n".join((text or "").strip().splitlines()[-lines:])


class Host(object):
    """What every host gives: run, run_as, run_many, check_mode, warn, which."""

    check_mode = False

    def _run(self, argv, data=None, cwd=None, env=None):
        raise NotImplementedError

    def run(self, argv, data=None, cwd=None, env=None, check=True, what=None):
        """Run ``argv`` (a list, never a shell string); return (rc, stdout, stderr).

        ``data`` goes to standard input (secrets travel this way, never in argv
        or the environment). With ``check`` a non-zero rc raises CommandError
        naming ``what`` (default: the command).
        """
        environ = dict(BASE_ENV)
        environ.update(env or {})
        rc, out, err = self._run(list(argv), data=data, cwd=cwd, env=environ)
        if check and rc != 0:
            raise CommandError("%s failed (rc=%d): %s" % (what or " ".join(argv), rc, _tail(err or out)),
                               cmd=list(argv), rc=rc, stdout=out, stderr=err)
        return rc, out, err

    def run_as(self, user, argv, data=None, cwd=None, env=None, check=True, what=None):
        """Run ``argv`` as ``user`` (root uses runuser; anyone else runs it as itself)."""
        argv, env = self._as(user, argv, env)
        return self.run(argv, data=data, cwd=cwd, env=env, check=check, what=what)

    def _as(self, user, argv, env):
        if os.geteuid() == 0:
            return as_user_argv(user, argv, env, self.which(RUNUSER, required=True)), None
        return list(argv), env

    def run_many(self, calls):
        """Run independent commands that only read; their (rc, stdout, stderr) in the order given.

        ``calls`` are ``(user, argv, env)``: ``user`` None runs ``argv`` as :meth:`run` does, a name as
        :meth:`run_as` does, always in ``/`` and without standard input. A non-zero rc is returned, not
        raised. Here one after another; hosts that start real processes start them all first.
        """
        results = []
        for call in calls:
            argv, env = self._prepared(call)
            results.append(self._run(argv, data=None, cwd="/", env=env))
        return results

    def _prepared(self, call):
        user, argv, env = call
        if user is not None:
            argv, env = self._as(user, argv, env)
        environ = dict(BASE_ENV)
        environ.update(env or {})
        return list(argv), environ

    def which(self, name, required=False):
        path = shutil.which(name) or next(
            (os.path.join(d, name) for d in ("/usr/sbin", "/sbin", "/usr/local/sbin")
             if os.access(os.path.join(d, name), os.X_OK)), None)
        if path is None and required:
            raise HostStateError("%s: command not found on the host" % name)
        return path

    def program(self, name):
        """The path of the program ``name``; None when it is missing in check mode.

        On a freshly flashed host, ``--check`` reaches a module before the
        package that brings its program is installed (the apt task only
        planned it). The module then reports what it would do (changed, with
        its diff) without running the program: the one rule for every module.
        Outside check mode a missing program raises HostStateError.
        """
        if "/" in name:
            path = name if os.access(name, os.X_OK) else None
        else:
            path = self.which(name)
        if path is None and not self.plans_missing_programs():
            raise HostStateError("%s: command not found on the host" % name)
        return path

    def plans_missing_programs(self):
        """Whether a missing program is planned (the module runs in check mode) rather than an error."""
        return self.check_mode

    def warn(self, msg):
        raise NotImplementedError

    def checked(self):
        """This host with check mode on: commands that only read still run."""
        return _Checked(self)


class _Checked(Host):
    check_mode = True

    def __init__(self, inner):
        self.inner = inner

    def _run(self, argv, data=None, cwd=None, env=None):
        return self.inner._run(argv, data=data, cwd=cwd, env=env)

    def run_many(self, calls):
        return self.inner.run_many(calls)  # only reads

    def which(self, name, required=False):
        return self.inner.which(name, required=required)

    def plans_missing_programs(self):
        # A real run's plan pass (services) is in check mode too, but its programs must be there.
        return self.inner.plans_missing_programs()

    def warn(self, msg):
        self.inner.warn(msg)


def _side_by_side(prepared, parallel=8):
    """Start up to ``parallel`` processes at a time, then read each in turn; [(rc, stdout, stderr)].

    Plain processes, no threads: a user's systemd manager answers each in
    tens of milliseconds, mostly waiting, so thirty of them need not wait
    thirty times in a row. Nothing is written to them (standard input is
    /dev/null); each one's output is read whole before the next.
    """
    results = []
    for first in range(0, len(prepared), parallel):
        procs = []
        for argv, env in prepared[first:first + parallel]:
            environ = dict(os.environ)
            environ.update(env)
            try:
                procs.append(subprocess.Popen(argv, cwd="/", env=environ, stdin=subprocess.DEVNULL,
                                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                              universal_newlines=True, errors="replace"))
            except OSError as exc:
                procs.append(exc)
        for proc in procs:
            if isinstance(proc, OSError):
                results.append((127, "", str(proc)))
                continue
            out, err = proc.communicate()
            results.append((proc.returncode, out, err))
    return results


class ModuleHost(Host):
    """The host an AnsibleModule runs on."""

    def __init__(self, module):
        self.module = module
        self.check_mode = module.check_mode

    def _run(self, argv, data=None, cwd=None, env=None):
        return self.module.run_command(argv, data=data, binary_data=data is not None, cwd=cwd,
                                       environ_update=env)

    def which(self, name, required=False):
        path = self.module.get_bin_path(name)  # searches the sbin directories too
        if path is None and required:
            raise HostStateError("%s: command not found on the host" % name)
        return path

    def run_many(self, calls):
        return _side_by_side([self._prepared(call) for call in calls])

    def warn(self, msg):
        self.module.warn(msg)


class ProcessHost(Host):
    """A host program's own process (never check mode); warnings go to the journal via stdout."""

    def __init__(self, log=None):
        self.log = log or _stdout

    def _run(self, argv, data=None, cwd=None, env=None):
        environ = dict(os.environ)
        environ.update(env or {})
        proc = subprocess.run(argv, input=data, cwd=cwd, env=environ, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, errors="replace", check=False)
        return proc.returncode, proc.stdout, proc.stderr

    def run_many(self, calls):
        return _side_by_side([self._prepared(call) for call in calls])

    def warn(self, msg):
        self.log("warning: %s" % msg)
