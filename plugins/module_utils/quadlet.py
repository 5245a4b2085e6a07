# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Quadlet units on the host: where they live, the dry run, the file and the service.

Used by ``selfhost.pi.quadlet`` and by any module that converges several
units in one call; the unit's text comes from ``quadlet_render``.

* ``unit_directory(pw)`` is where Quadlet reads units for root or a user.
* ``validate_dryrun(host, unit_dir, units, user)`` runs the Quadlet
  generator's ``-dryrun`` on a copy of the unit directory with the new
  contents, so references such as ``Pod=web.pod`` resolve, and reports the
  errors about those units.
* ``plan_service(state, active_state, content_changed, restart_on_change)``
  decides start/stop/restart.
* ``converge(host, params)`` does all of it for one unit.

``host`` is a :mod:`host` object (``ModuleHost(module)``, or ``.checked()``
for a plan); failures raise the :mod:`errors` types, never ``fail_json``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import pwd
import re
import shutil
import stat
import tempfile

from ansible_collections.selfhost.pi.plugins.module_utils import nofollow
from ansible_collections.selfhost.pi.plugins.module_utils.constants import (
    QUADLET_GENERATOR, QUADLET_SYSTEM_DIR, QUADLET_USER_SUBDIR)
from ansible_collections.selfhost.pi.plugins.module_utils.errors import (
    CommandError, HostStateError, UnsafePathError, ValidationError)
from ansible_collections.selfhost.pi.plugins.module_utils.files import ManagedFile, ensure_directory
from ansible_collections.selfhost.pi.plugins.module_utils.quadlet_render import (
    UNIT_TYPES, check_name, render, service_name, service_name_from_content)
from ansible_collections.selfhost.pi.plugins.module_utils.systemd import Systemctl

# Module-level so that tests can point them at a temporary directory.
SYSTEM_UNIT_DIR = QUADLET_SYSTEM_DIR
USER_UNIT_SUBDIR = QUADLET_USER_SUBDIR
GENERATOR = QUADLET_GENERATOR

# Generator output lines that carry no information for the user.
NOISE = ("Loading source unit file", "No files parsed from")
LOG_PREFIX_RE = re.compile(r"^quadlet-generator\[\d+\]: ")
CONVERTING_RE = re.compile(r'(?:converting|error loading) "(?:[^"]*/)?([^"/]+)"')

RUNNING_STATES = ("active", "activating", "reloading", "refreshing")

# The dry run copies a unit directory a service user owns, as root: bounded, and never through a link.
MAX_UNIT_FILE_BYTES = 1 << 20      # one unit or drop-in
MAX_UNIT_TREE_BYTES = 16 << 20     # all of them
MAX_UNIT_TREE_FILES = 1000
MAX_UNIT_DIR_DEPTH = 16
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


# ---------------------------------------------------------------- naming

def unit_directory(pw=None):
    """Quadlet's unit directory for root (pw=None) or for the pwd entry ``pw``."""
    if pw is None:
        return SYSTEM_UNIT_DIR
    return os.path.join(pw.pw_dir, USER_UNIT_SUBDIR)


# ---------------------------------------------------------------- validation

def find_generator(host, path=None):
    """The Quadlet generator's path; HostStateError naming the podman version when it is missing."""
    path = path or GENERATOR
    if os.access(path, os.X_OK):
        return path
    podman = host.which("podman")
    version = "no podman installed"
    if podman:
        dummy, out, err = host.run([podman, "--version"], check=False)
        version = (out or err).strip() or "podman of unknown version"
    raise HostStateError("Quadlet needs podman >= 4.4 (Debian 13); this host has %s (%s is missing)"
                         % (version, path))


def _is_unit_file(name):
    return os.path.splitext(name)[1][1:] in UNIT_TYPES and not name.startswith(".")


def open_dir_nofollow(path):
    """A read-only descriptor of the directory ``path``, reached without a link a service user placed.

    :func:`nofollow.open_dir` (a link is followed only where root alone could
    have made it): OSError(ELOOP) for a link or a file on the way, for
    :func:`_unsafe` to name, OSError(ENOENT) for a missing component. The
    caller closes it.
    """
    try:
        return nofollow.open_dir(os.path.abspath(path))
    except UnsafePathError as exc:
        raise OSError(errno.ELOOP, str(exc))


def _unsafe(path, exc):
    """The error for an OSError met on the way to ``path`` (a link or a file where a directory should be)."""
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return UnsafePathError("%s: a symbolic link or a file is on the way; root does not follow links a service "
                               "user can place" % path, path=path, error=str(exc))
    reason = exc.strerror or str(exc)
    return HostStateError(reason if path in reason else "%s: %s" % (path, reason), path=path)


def _read_regular(dir_fd, name, st):
    """The bytes of regular file ``name`` (lstat ``st``), or a reason why it is left out. Never follows a link."""
    if st.st_size > MAX_UNIT_FILE_BYTES:
        return None, "is larger than %d bytes" % MAX_UNIT_FILE_BYTES
    try:
        fd = os.open(name, READ_FLAGS, dir_fd=dir_fd)
    except OSError as exc:  # replaced by a link (ELOOP) or removed since it was listed
        return None, "could not be opened without following links (%s)" % (exc.strerror or exc)
    try:
        now = os.fstat(fd)
        if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            return None, "was replaced while it was read"
        chunks, size = [], 0
        while size <= MAX_UNIT_FILE_BYTES:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_UNIT_FILE_BYTES:
            return None, "is larger than %d bytes" % MAX_UNIT_FILE_BYTES
        return b"".join(chunks), None
    finally:
        os.close(fd)


def _copy_dir(dir_fd, src, dst, rel, skip, skip_dirs, skipped, depth, budget):
    in_dropin = any(part.endswith(".d") for part in rel.split("/") if part)
    for name in sorted(os.listdir(dir_fd)):
        if name.startswith("."):
            continue
        where = os.path.join(src, rel, name) if rel else os.path.join(src, name)
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:
            continue  # removed since it was listed
        if stat.S_ISDIR(st.st_mode):
            if not rel and name in skip_dirs:
                continue
            if depth >= MAX_UNIT_DIR_DEPTH:
                skipped.append("%s is deeper than %d directories, left out of the dry run"
                               % (where, MAX_UNIT_DIR_DEPTH))
                continue
            try:
                child = os.open(name, DIR_FLAGS | os.O_NOFOLLOW, dir_fd=dir_fd)
            except OSError as exc:
                skipped.append("%s could not be opened without following links (%s), left out of the dry run"
                               % (where, exc.strerror or exc))
                continue
            try:
                _copy_dir(child, src, dst, os.path.join(rel, name) if rel else name, skip, skip_dirs, skipped,
                          depth + 1, budget)
            finally:
                os.close(child)
            continue
        wanted = _is_unit_file(name) or (in_dropin and name.endswith(".conf"))
        if stat.S_ISLNK(st.st_mode) and not wanted:
            # A linked directory (a subdirectory or a drop-in ``NAME.d``) would be walked by Quadlet.
            wanted = "." not in name or name.endswith(".d")
        if not wanted or (not rel and name in skip):
            continue
        if not stat.S_ISREG(st.st_mode):
            skipped.append("%s is not a regular file (%s), left out of the dry run" % (where, _file_type(st)))
            continue
        if st.st_uid != budget["owner"]:  # e.g. a hard link to another account's file
            skipped.append("%s is owned by uid %d, not by the directory's owner (uid %d), left out of the dry run"
                           % (where, st.st_uid, budget["owner"]))
            continue
        if budget["files"] >= MAX_UNIT_TREE_FILES or budget["bytes"] + st.st_size > MAX_UNIT_TREE_BYTES:
            skipped.append("%s is past the first %d files or %d bytes, left out of the dry run"
                           % (where, MAX_UNIT_TREE_FILES, MAX_UNIT_TREE_BYTES))
            continue
        data, reason = _read_regular(dir_fd, name, st)
        if data is None:
            skipped.append("%s %s, left out of the dry run" % (where, reason))
            continue
        budget["files"] += 1
        budget["bytes"] += len(data)
        target_dir = os.path.join(dst, rel)
        if not os.path.isdir(target_dir):
            os.makedirs(target_dir)
        with open(os.path.join(target_dir, name), "wb") as handle:
            handle.write(data)


def _file_type(st):
    for test, label in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                        (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(st.st_mode):
            return label
    return "mode %o" % st.st_mode


def copy_unit_tree(src, dst, skip=(), skip_dirs=()):
    """Copy Quadlet units and drop-in ``*.d/*.conf`` files from ``src`` to ``dst``; return what was left out.

    Root reads a directory a service user owns here, so nothing is followed:
    ``src`` is opened one component at a time without following links (a
    link on the way raises UnsafePathError), subdirectories likewise, and
    only regular files owned by the owner of ``src`` are read (a hard link
    keeps its owner), through a descriptor opened with ``O_NOFOLLOW``, within
    ``MAX_UNIT_FILE_BYTES`` each and
    ``MAX_UNIT_TREE_FILES``/``MAX_UNIT_TREE_BYTES`` in all. Links, FIFOs,
    devices and sockets are left out unread; the returned list says what was
    left out and why (for warnings).
    Top-level files named in ``skip`` are left out (they get new contents),
    as are top-level directories named in ``skip_dirs``.
    """
    try:
        fd = open_dir_nofollow(src)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return []
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise _unsafe(src, exc)
        raise
    skipped = []
    try:
        _copy_dir(fd, src, dst, "", skip, skip_dirs, skipped, 0, dict(files=0, bytes=0, owner=os.fstat(fd).st_uid))
    finally:
        os.close(fd)
    return skipped


def _mentions(text, fname):
    """True when ``text`` names the unit file ``fname`` (not just a longer name ending in it)."""
    return re.search(r"(?<![\w.@-])%s(?![\w.@-])" % re.escape(fname), text) is not None


def parse_dryrun(stderr, units, tmpdir=None, unit_dir=None):
    """Sort the generator's log lines into (errors about ``units``, warnings about them, other errors).

    An error is "about" a unit when it names one of the ``units`` file names,
    or names a unit those contents reference (e.g. the ``web.pod`` of
    ``Pod=web.pod``).
    """
    mine, warnings, others = [], [], []
    for raw in stderr.splitlines():
        line = LOG_PREFIX_RE.sub("", raw.strip())
        if not line or line.startswith(NOISE):
            continue
        if tmpdir and unit_dir:
            line = line.replace(tmpdir, unit_dir)
        match = CONVERTING_RE.search(line)
        subject = match.group(1) if match else None
        about_mine = any(
            _mentions(line, fname) if subject is None else (subject == fname or _mentions(content, subject))
            for fname, content in units.items())
        if line.startswith("Warning:"):
            if about_mine:
                warnings.append(line)
        elif about_mine:
            mine.append(line)
        else:
            others.append(line)
    return mine, warnings, others


def validate_dryrun(host, unit_dir, units, user=None, generator=None, absent=()):
    """Check new unit contents with ``quadlet -dryrun [-user]``.

    ``units`` maps file names (``web.container``) to their new text. They are
    written with copies of the other units in ``unit_dir`` to a temporary
    directory that ``QUADLET_UNIT_DIRS`` points the generator at; nothing on
    the host changes. Returns ``(error, warnings)``: ``error`` is None when
    the units convert, else the generator's message; ``warnings`` say which
    entries of ``unit_dir`` were left out of the copy (see copy_unit_tree),
    then give the generator's warnings about the units and the errors of
    other, unrelated units. Files named in ``absent`` are left out of the
    copy (they are about to be removed). Raises UnsafePathError when
    ``unit_dir`` is reached through a link.
    """
    if generator is None and not os.access(GENERATOR, os.X_OK) and host.plans_missing_programs():
        # --check before podman is installed (Host.program): the real run checks them.
        return None, ["the Quadlet generator (%s) is not installed yet: podman's package brings it, and the "
                      "real run checks %s with it" % (GENERATOR, ", ".join(sorted(units)))]
    generator = generator or find_generator(host)
    tmpdir = tempfile.mkdtemp(prefix="quadlet-dryrun.")
    try:
        # Rootful Quadlet ignores /etc/containers/systemd/users (units for users).
        skipped = copy_unit_tree(unit_dir, tmpdir, skip=set(units) | set(absent), skip_dirs=() if user else ("users",))
        for fname, content in units.items():
            with open(os.path.join(tmpdir, fname), "wb") as handle:
                handle.write(content.encode("utf-8", errors="surrogateescape"))
        cmd = [generator, "-dryrun"] + (["-user"] if user else [])
        rc, out, err = host.run(cmd, env={"QUADLET_UNIT_DIRS": tmpdir}, check=False)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    mine, warnings, others = parse_dryrun(err, units, tmpdir, unit_dir)
    warnings = skipped + warnings + ["another unit in %s fails to convert: %s" % (unit_dir, line)
                                     for line in others]
    if mine:
        return "; ".join(mine), warnings
    if rc != 0 and not out.strip():
        return "quadlet -dryrun failed (rc=%d): %s" % (rc, "; ".join(others) or err.strip()), warnings
    return None, warnings


# ---------------------------------------------------------------- service state

def plan_service(state, active_state, content_changed, restart_on_change=True, sub_state=""):
    """(action, expected ActiveState afterwards); action is None, start, stop or restart.

    A service waiting to be restarted after a crash (SubState auto-restart*)
    counts as not started (it gets a start, which reports the failure) but
    as running for stopped/absent (it gets a stop, which ends the loop).
    """
    alive = active_state in RUNNING_STATES
    healthy = alive and not sub_state.startswith("auto-restart")
    if state == "started":
        if not healthy:
            return "start", "active"
        if content_changed and restart_on_change:
            return "restart", "active"
        return None, active_state
    if state == "restarted":
        return "restart", "active"
    if state in ("stopped", "absent"):
        if alive:
            return "stop", "inactive"
        return None, "inactive" if state == "absent" else active_state
    return None, active_state  # present


DIR_MODE = 0o755
FILE_MODE = 0o644


def service_diff(service, before, sub, after, action):
    """A diff entry showing the service's ActiveState change."""
    if sub.startswith("auto-restart"):
        before = "%s (%s)" % (before, sub)
    if action == "restart":
        after += " (restarted)"
    return {"before_header": "service %s" % service, "after_header": "service %s" % service,
            "before": "%s: %s\n" % (service, before), "after": "%s: %s\n" % (service, after)}


def act(systemctl, service, action, path):
    """Run start/stop/restart; a failed start/restart raises CommandError with the journal tail."""
    if action == "stop":
        systemctl.stop(service)
        return
    rc, out, err = systemctl.run(action, service, check=False)
    if rc != 0:
        journal = systemctl.journal_tail(service, 20)
        raise CommandError(
            "systemctl %s %s failed (rc=%d): %s. The unit file %s passed the Quadlet dry run and stays "
            "installed; fix the cause and run again. Last journal lines:\n%s"
            % (action, service, rc, (err or out).strip(), path, journal or "(none readable)"),
            cmd=systemctl.command(action, service), rc=rc, stdout=out, stderr=err,
            path=path, service=service, journal=journal.splitlines())


def _read_installed(unit_dir, fname):
    """The installed unit's text, or None; reached without following links (a link is not a unit file)."""
    try:
        dir_fd = open_dir_nofollow(unit_dir)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise _unsafe(unit_dir, exc)
    try:
        st = os.stat(fname, dir_fd=dir_fd, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode):
            return None
        data, reason = _read_regular(dir_fd, fname, st)
        if data is None:
            raise UnsafePathError("%s %s; remove it by hand" % (os.path.join(unit_dir, fname), reason))
        return data.decode("utf-8", errors="surrogateescape")
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    finally:
        os.close(dir_fd)


def _remove_installed(unit_dir, fname):
    """Unlink the unit file in ``unit_dir``, reached without following links."""
    try:
        dir_fd = open_dir_nofollow(unit_dir)
    except OSError as exc:
        raise _unsafe(unit_dir, exc)
    try:
        os.unlink(fname, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


def converge(host, p):
    """Converge one unit as described by the module options ``p`` on ``host``; return the result dict.

    Raises ValidationError (bad input, a unit the generator rejects),
    UnsafePathError (a link on the way to the unit directory), HostStateError
    (no Quadlet, a user manager that never came) or CommandError (a service
    that does not start); nothing is changed before the checks pass. With
    ``host.check_mode`` nothing is changed at all.
    """
    name, unit_type, user, state = p["name"], p["type"], p["user"], p["state"]
    fname = "%s.%s" % (name, unit_type)

    # Validate everything before touching the host.
    check_name(name, unit_type)
    content = "" if state == "absent" else render(unit_type, p["unit"], p["options"], p["service"], p["install"])
    if p["manager_timeout"] < 0:
        raise ValidationError("%d must be >= 0 seconds" % p["manager_timeout"], field="manager_timeout")
    pw = None
    if user is not None:
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            raise ValidationError("%s does not exist on this host" % user, field="user")
    uid, gid = (pw.pw_uid, pw.pw_gid) if pw else (0, 0)
    unit_dir = unit_directory(pw)
    path = os.path.join(unit_dir, fname)
    systemctl = Systemctl(host, user)
    if state in ("started", "stopped", "restarted"):
        systemctl.wait_for_manager(p["manager_timeout"])
    manager = systemctl.manager_ready()

    if state == "absent":
        before = _read_installed(unit_dir, fname)
        service = service_name_from_content(name, unit_type, before, path)
    else:
        before = None
        service = service_name(name, unit_type, p["options"])
    result = dict(changed=False, path=path, service=service, scope=systemctl.scope, content=content, diff=[])

    if state == "absent":
        file_changed = content_changed = before is not None
        if file_changed:
            result["diff"].append({"before_header": path, "after_header": "%s (absent)" % path,
                                   "before": before, "after": ""})
    else:
        try:  # first: refuses a link on the way before anything there is read
            dir_changed = ensure_directory(unit_dir, DIR_MODE, uid, gid, check_mode=True)
        except OSError as exc:
            raise _unsafe(unit_dir, exc)
        managed = ManagedFile(path, content, FILE_MODE, owner=uid, group=gid)
        content_changed = managed.content_changed
        file_changed = managed.changed or dir_changed
        if content_changed:
            error, warnings = validate_dryrun(host, unit_dir, {fname: content}, user)
            for warning in warnings:
                host.warn("quadlet: %s" % warning)
            if error:
                raise ValidationError("%s: the Quadlet generator rejects the unit, nothing was changed: %s"
                                      % (path, error), path=path, content=content)
        if file_changed:
            result["diff"].append(managed.diff())

    active, sub = systemctl.state(service) if manager else ("inactive", "dead")
    # The file is as wanted but systemd still runs an older one (a run cut off
    # between writing it and daemon-reload): finish that job now.
    stale = bool(manager and state != "absent" and not content_changed and systemctl.need_daemon_reload)
    if stale:
        result["diff"].append({"before_header": service, "after_header": service,
                               "before": "%s: loaded from an older %s\n" % (service, path),
                               "after": "%s: daemon-reload\n" % service})
    action, expected = plan_service(state, active, content_changed or stale, p["restart_on_change"], sub)
    if action and not manager:  # absent/present never wait; nothing runs without a manager
        action, expected = None, active
    if action:
        result["diff"].append(service_diff(service, active, sub, expected, action))
    result["changed"] = bool(file_changed or action or stale)
    result["active_state"] = expected if host.check_mode else active
    if host.check_mode or not result["changed"]:
        return result

    if state == "absent":
        if action:
            act(systemctl, service, action, path)
        if file_changed:
            _remove_installed(unit_dir, fname)
    else:
        try:
            ensure_directory(unit_dir, DIR_MODE, uid, gid)
            managed.apply()
        except OSError as exc:
            raise _unsafe(path, exc)
    if (content_changed or stale) and manager:
        systemctl.daemon_reload()
    if action and state != "absent":
        act(systemctl, service, action, path)
    if action:
        result["active_state"] = systemctl.state(service)[0]
    return result
