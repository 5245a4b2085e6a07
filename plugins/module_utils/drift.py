# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The converge record: what the host looked like when ``site.yml`` last converged it.

A no-op converge runs every role's tasks and finds nothing to do; over SSH each
task is a round trip. ``site.yml`` first asks ``selfhost.pi.drift`` (one module
run) whether anything drifted since its last complete converge:

* the declaration: a digest, made on the controller by the action plugin, of
  every role variable the inventory sets, the controller files they name
  (``blog_source``, image archives) and the collection's own files;
* the host: :func:`observe` reads what the roles manage, the same way each
  time: files (content digest, mode, owner, link target), the unit states of
  the system manager and of every service user's manager, and dpkg's status
  file (packages installed or removed).

When both match ``/var/lib/selfhost-pi/converged.json`` (root, 0600), the roles
would find nothing to do, and the play ends there for the host. Anything else
(no record, another declaration, a file edited by hand, a unit stopped or
failed) runs the full converge, which writes the record again at its end.

Files below a service user's home (its Quadlet units, its image store's index)
are read as :mod:`nofollow` reads them: each directory through a descriptor
opened without following a link, each file opened ``O_NOFOLLOW|O_NONBLOCK``
and read only when ``fstat`` says it is a regular file. Their content is
hashed, never parsed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import json
import os
import posixpath
import stat

from ansible_collections.selfhost.pi.plugins.module_utils import nofollow
from ansible_collections.selfhost.pi.plugins.module_utils import managed_record
from ansible_collections.selfhost.pi.plugins.module_utils.constants import (
    MANAGED_RECORD, QUADLET_USER_SUBDIR, STATE_DIR, SYSTEMD_USER_SUBDIR)
from ansible_collections.selfhost.pi.plugins.module_utils.errors import UnsafePathError
from ansible_collections.selfhost.pi.plugins.module_utils.files import ManagedFile, apply_in_state_dir, read_text
from ansible_collections.selfhost.pi.plugins.module_utils.systemd import Systemctl, show_blocks

VERSION = 1
RECORD = STATE_DIR + "/converged.json"
MODE = 0o600
HASH_LIMIT = 1 << 20  # bytes: a larger file is compared by size and modification time

# Root-owned places the roles write, walked whole (directories) without following a link.
SYSTEM_PATHS = (
    "/etc/selfhost-pi", "/etc/nginx", "/etc/ssh/sshd_config", "/etc/ssh/sshd_config.d",
    "/etc/systemd/system", "/etc/systemd/journald.conf.d", "/etc/apt/apt.conf.d", "/etc/containers",
    "/etc/letsencrypt/renewal", "/etc/passwd", "/etc/group", "/etc/subuid", "/etc/subgid", "/etc/hostname",
    "/etc/hosts", "/etc/localtime", "/etc/fstab", "/var/lib/systemd/linger", "/usr/local/sbin",
    "/usr/local/libexec/selfhost-pi", "/usr/local/lib/selfhost-pi",
)
# Only the files directly in these (records, the blog bundle, image archives), not the spools below.
TOP_LEVEL_PATHS = (STATE_DIR,)
# Compared by size and modification time only: dpkg rewrites it whenever a package comes or goes.
STAT_PATHS = ("/var/lib/dpkg/status",)
SKIPPED_NAMES = frozenset(["__pycache__"])
# System units the roles start, stop or enable; the collection's own are all named selfhost-*.
SYSTEM_UNITS = ("nginx.service", "ssh.service", "systemd-timesyncd.service", "certbot.timer", "webhook.service",
                "selfhost-*")
UNIT_PROPERTIES = "--property=Id,ActiveState,UnitFileState,SourcePath,FragmentPath"
IMAGE_INDEX = ".local/share/containers/storage/overlay-images/images.json"
# A unit on its way is read as where it goes: a container still starting when the converge ended is not drift.
SETTLING = {"activating": "active", "reloading": "active", "refreshing": "active", "deactivating": "inactive"}


def _settled(state):
    return SETTLING.get(state, state)


def _size_time(st):
    return "size=%d mtime=%d" % (st.st_size, st.st_mtime_ns)


def _file_digest(dir_fd, name, st):
    """sha256 of a regular file, opened without following a link or blocking on a fifo."""
    if st.st_size > HASH_LIMIT:
        return _size_time(st)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError as exc:
        return "unreadable (%s)" % errno.errorcode.get(exc.errno, exc.errno)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return "replaced while read"
        digest = hashlib.sha256()
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            digest.update(chunk)
        return "sha256=" + digest.hexdigest()
    finally:
        os.close(fd)


def _entry(dir_fd, name, st, content=True):
    kind = stat.S_IFMT(st.st_mode)
    attrs = "%04o %d:%d" % (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    if kind == stat.S_IFDIR:
        return "dir " + attrs
    if kind == stat.S_IFLNK:
        return "link -> " + os.readlink(name, dir_fd=dir_fd)
    if kind == stat.S_IFREG:
        return "file %s %s" % (attrs, _file_digest(dir_fd, name, st) if content else _size_time(st))
    return "other %o" % kind


def _walk(dir_fd, path, out, recurse=True, skip=()):
    for name in sorted(os.listdir(dir_fd)):
        full = posixpath.join(path, name)
        if name in SKIPPED_NAMES or full in skip:
            continue
        st = nofollow.lstat_at(dir_fd, name)
        if st is None:
            continue
        out[full] = _entry(dir_fd, name, st)
        if recurse and stat.S_ISDIR(st.st_mode):
            try:
                sub = nofollow.open_dir_at(dir_fd, name)
            except OSError:  # replaced by a link or removed since the lstat
                out[full] = "replaced while read"
                continue
            try:
                _walk(sub, full, out, recurse, skip)
            finally:
                os.close(sub)


def observe_path(path, out, recurse=True, content=True, skip=()):
    """Add ``path`` (a file, a link, or a directory and all below it) to ``out``, {path: description}."""
    if not path.startswith("/"):
        out[path] = "absent"  # ~USER of a user that does not exist
        return
    parent, name = posixpath.split(path.rstrip("/"))
    try:
        parent_fd = nofollow.open_dir(parent)
    except UnsafePathError:
        out[path] = "behind a link a service user could place"
        return
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            out[path] = "absent" if exc.errno == errno.ENOENT else "unreachable"
            return
        raise
    try:
        st = nofollow.lstat_at(parent_fd, name)
        if st is None:
            out[path] = "absent"
            return
        out[path] = _entry(parent_fd, name, st, content)
        if stat.S_ISDIR(st.st_mode):
            fd = nofollow.open_dir_at(parent_fd, name)
            try:
                _walk(fd, path, out, recurse, skip)
            finally:
                os.close(fd)
    finally:
        os.close(parent_fd)


def _services(record_path):
    """{name: (uid, home)} of the services the services module recorded (root-owned, 0600)."""
    record = managed_record.load(record_path) or {}
    out = {}
    for name, entry in sorted((record.get("services") or {}).items()):
        if isinstance(entry, dict) and entry.get("uid") is not None and entry.get("home"):
            out[name] = (int(entry["uid"]), str(entry["home"]))
    return out


def _unit_states(host, services):
    """{key: state} of the system units and of each service user's units, asked side by side."""
    if not host.which("systemctl"):
        return {"system manager": "no systemctl"}  # not a host the roles can converge: they say why
    system = Systemctl(host)
    units = list(SYSTEM_UNITS) + ["user@%d.service" % uid for uid, dummy in services.values()]
    calls = [system.call("show", UNIT_PROPERTIES, *units)]
    asked = []
    out = {}
    for name, (uid, home) in services.items():
        systemctl = Systemctl(host, name, uid)
        if systemctl.manager_ready():
            asked.append((name, home))
            calls.append(systemctl.call("show", UNIT_PROPERTIES, "*.service", "*.timer"))
        else:
            out["manager of %s" % name] = "not running"
    results = host.run_many(calls)
    rc, text, err = results[0]
    if rc != 0:  # no systemd as PID 1 (an old or odd host): drift; the base role's checks say what is wrong
        out["system manager"] = "not answering: %s" % " ".join((err or text).split())[:80]
    for props in show_blocks(text) if rc == 0 else ():
        if props.get("Id"):
            out["unit %s" % props["Id"]] = "%s %s" % (_settled(props.get("ActiveState")),
                                                      props.get("UnitFileState") or "-")
    for (name, home), (rc, text, err) in zip(asked, results[1:]):
        if rc != 0:
            out["manager of %s" % name] = "not answering"
            continue
        own = (posixpath.join(home, QUADLET_USER_SUBDIR) + "/", posixpath.join(home, SYSTEMD_USER_SUBDIR) + "/")
        for props in show_blocks(text):
            source = props.get("SourcePath") or props.get("FragmentPath") or ""
            if props.get("Id") and source.startswith(own):  # the collection's units, not podman's transient ones
                out["unit %s of %s" % (props["Id"], name)] = _settled(props.get("ActiveState"))
    return out


def observe(host, extra_paths=(), record_path=MANAGED_RECORD, converged_path=RECORD):
    """{what: description} of everything the roles manage on the host, read the same way each time."""
    out = {}
    for path in SYSTEM_PATHS + tuple(extra_paths):
        observe_path(path, out)
    for path in TOP_LEVEL_PATHS:
        observe_path(path, out, recurse=False, skip=(converged_path,))
    for path in STAT_PATHS:
        observe_path(path, out, content=False)
    services = _services(record_path)
    for name, (uid, home) in services.items():
        for sub in (QUADLET_USER_SUBDIR, SYSTEMD_USER_SUBDIR):
            observe_path(posixpath.join(home, sub), out)
        observe_path(posixpath.join(home, IMAGE_INDEX), out, content=False)
    out.update(_unit_states(host, services))
    return out


def load(path=RECORD):
    text = read_text(path)
    if text is None:
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None  # a damaged record is no record: the full converge writes it again
    if not isinstance(record, dict) or record.get("version") != VERSION or not isinstance(record.get("state"), dict):
        return None
    return record


def render(declaration, state, recorded_at):
    return json.dumps({"version": VERSION, "declaration": declaration, "recorded_at": int(recorded_at),
                       "state": state}, indent=1, sort_keys=True) + "\n"


def compare(record, declaration, state, now=None, max_age=0, limit=20, path=RECORD):
    """What differs between the record and now, one line each (at most ``limit``, then a count).

    A record older than ``max_age`` seconds (0: no limit) is drift too: some work is due by the clock (an
    internal certificate signed again when it nears its end), and only the full converge looks at the clock.
    """
    if record is None:
        return ["no record of a complete converge of this host yet (%s)" % path]
    lines = []
    age = (now or 0) - int(record.get("recorded_at") or 0)
    if max_age and age > max_age:
        lines.append("the last complete converge was %d s ago, more than %d s" % (age, max_age))
    if record.get("declaration") != declaration:
        lines.append("the declaration changed since the last converge (the inventory's variables, the files "
                     "they name, or the collection)")
    before = record.get("state") or {}
    for key in changed_keys(before, state):
        lines.append("%s: %s (was %s)" % (key, _short(state.get(key, "absent")), _short(before.get(key, "absent"))))
    if len(lines) > limit:
        lines = lines[:limit] + ["... and %d more" % (len(lines) - limit)]
    return lines


def changed_keys(before, now):
    """The entries that differ between two readings (added, removed or changed), sorted."""
    return sorted(key for key in set(before) | set(now) if before.get(key) != now.get(key))


def _short(description):
    return description if len(description) < 60 else description[:57] + "..."


def record_file(path, declaration, state, recorded_at):
    return ManagedFile(path, render(declaration, state, recorded_at), MODE, 0, 0)


def write(path, declaration, state, recorded_at):
    """Write the record atomically; True when it changed."""
    return apply_in_state_dir(record_file(path, declaration, state, recorded_at))
