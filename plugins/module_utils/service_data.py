# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a service's data is, and where it lives on the host.

A service spec's ``data`` key declares what the backup role saves with restic
and what ``selfhost.pi.restic_restore`` brings back on a rebuilt host:

- ``paths``: files or directories, relative to the service's home or absolute;
- ``volumes``: the service user's named podman volumes, saved from their
  mount point ``~/.local/share/containers/storage/volumes/NAME/_data`` (podman
  adopts a restored directory there as the volume);
- ``sqlite``: SQLite databases (a path, or ``VOLUME:PATH`` inside a named
  volume), copied with SQLite's online backup API into
  ``STAGING_DIR/SERVICE/<absolute path>`` and saved from there; the live file
  and its ``-wal``/``-shm``/``-journal`` files are left out of the snapshot;
- ``pre_backup``: shell commands run as the service user before the snapshot
  (a service's own dump command, writing into one of its paths).

Shared by the ``backup_plan`` filter (what the backup script reads), the
backup program (``backup.py``) and the ``restic_restore`` module, so that all
resolve every path the same way.

The paths live in trees a service user (so its container) can write. Root
reaches them with :func:`open_dir` and :func:`lstat`, which never follow a
symbolic link such a user could have placed: a link in the service's tree
raises :class:`~errors.UnsafePathError` instead of sending root elsewhere.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import posixpath
import re
import stat

from ansible_collections.selfhost.pi.plugins.module_utils.constants import (
    BACKUP_STAGING_DIR, PROTECTED_PATHS, VOLUMES_SUBDIR)
from ansible_collections.selfhost.pi.plugins.module_utils.errors import UnsafePathError

from ansible_collections.selfhost.pi.plugins.module_utils.errors import ValidationError

DATA_OPTIONS = dict(
    paths=dict(type="list", elements="str", default=[]),
    volumes=dict(type="list", elements="str", default=[]),
    sqlite=dict(type="list", elements="str", default=[]),
    pre_backup=dict(type="list", elements="str", default=[]),
)

VOLUME_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # podman's rule for names
STAGING_DIR = BACKUP_STAGING_DIR
PROTECTED = PROTECTED_PATHS
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)


def home_of(spec):
    """The service's home, as the services module makes it."""
    return "/home/%s" % spec["name"]


def volume_path(home, volume):
    return posixpath.join(home, VOLUMES_SUBDIR, volume, "_data")


def staged_path(service, db_path):
    """Where the consistent copy of ``db_path`` is kept for the snapshot."""
    return posixpath.join(STAGING_DIR, service) + db_path


def _check_volume(volume, field):
    if not VOLUME_NAME_RE.match(volume):
        raise ValidationError("%s: %r is not a podman volume name" % (field, volume))


def _resolve(home, value, field):
    value = str(value)
    if not value or "\x00" in value or "\n" in value:
        raise ValidationError("%s: %r is not a path" % (field, value))
    if value.endswith("/") and field.split(".")[-1].startswith("sqlite"):
        raise ValidationError("%s: %s is a directory, not a database file" % (field, value))
    path = posixpath.normpath(value if value.startswith("/") else posixpath.join(home, value))
    if path in PROTECTED or path == home:
        raise ValidationError("%s: %s is not a path of one service's data" % (field, path))
    if not value.startswith("/") and not path.startswith(home + "/"):
        raise ValidationError("%s: %r leaves the service's home; write an absolute path" % (field, value))
    if path.startswith("/home/") and not path.startswith(home + "/"):
        raise ValidationError("%s: %s is in another user's home" % (field, path))
    if path.startswith(STAGING_DIR + "/") or path == STAGING_DIR:
        raise ValidationError("%s: %s is inside the backup staging directory" % (field, path))
    return path


def _inside(inner, outer):
    return inner == outer or inner.startswith(outer.rstrip("/") + "/")


def normalize(spec, field="data"):
    """Return the service's data with absolute paths: dict(name, uid, home, paths, sqlite, pre_backup).

    ``paths`` holds the declared paths and the volumes' mount points, in order,
    without duplicates. Raises ValueError naming ``FIELD.key[i]``.
    """
    data = spec.get("data") or {}
    home = home_of(spec)
    paths = []  # (path, field): each restored as one whole, so none may hold another
    for index, value in enumerate(data.get("paths") or []):
        where = "%s.paths[%d]" % (field, index)
        paths.append((_resolve(home, value, where), where))
    for index, volume in enumerate(data.get("volumes") or []):
        where = "%s.volumes[%d]" % (field, index)
        _check_volume(str(volume), where)
        paths.append((volume_path(home, str(volume)), where))
    unique = []
    for path, where in paths:
        for other, other_where in unique:
            if path == other:
                break
            if _inside(path, other):
                raise ValidationError("%s: %s is inside %s (%s); declare only the outer one"
                                 % (where, path, other_where, other))
            if _inside(other, path):
                raise ValidationError("%s: %s is inside %s (%s); declare only the outer one"
                                 % (other_where, other, where, path))
        else:
            unique.append((path, where))
    sqlite = []
    for index, value in enumerate(data.get("sqlite") or []):
        where = "%s.sqlite[%d]" % (field, index)
        value = str(value)
        if ":" in value and not value.startswith("/"):  # VOLUME:PATH, a file inside a named volume
            volume, inside = value.split(":", 1)
            _check_volume(volume, where)
            if not inside or inside.startswith("/") or ".." in inside.split("/"):
                raise ValidationError("%s: %r is not VOLUME:PATH with a relative PATH" % (where, value))
            value = posixpath.join(volume_path(home, volume), inside)
        sqlite.append(_resolve(home, value, where))
    hooks = []
    for index, command in enumerate(data.get("pre_backup") or []):
        if not str(command).strip():
            raise ValidationError("%s.pre_backup[%d]: empty command" % (field, index))
        hooks.append(str(command))
    return dict(name=spec["name"], uid=int(spec["uid"]), home=home, paths=[path for path, where in unique],
                sqlite=sqlite, pre_backup=hooks)


def declares_data(spec):
    data = spec.get("data") or {}
    return bool(data.get("paths") or data.get("volumes") or data.get("sqlite"))


def present(path):
    """True when ``path`` holds data: a file, or a directory with at least one entry."""
    if os.path.islink(path) or os.path.isfile(path):
        return True
    if os.path.isdir(path):
        return bool(os.listdir(path))
    return os.path.exists(path)


def has_data(service):
    """True when any declared path or database of a normalized service is present on the host."""
    return any(present(path) for path in service["paths"] + service["sqlite"])


# -- reaching a service's paths as root, without following its links ----------


def _root_only(st):
    """True for a directory only root can change (root's, not writable by group or others)."""
    return st.st_uid == 0 and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _components(path):
    parts = [part for part in path.split("/") if part and part != "."]
    if ".." in parts:
        raise UnsafePathError("%s: '..' in a path root walks; write it without" % path)
    return parts


def open_dir(path, base_fd=None, make=None, follow_root_links=True):
    """Open the directory ``path`` without following a link a service user placed; return its descriptor.

    ``path`` is absolute, or relative to the directory ``base_fd``. Each
    component is opened from the one before with ``O_NOFOLLOW``. A symbolic
    link is followed only where root alone could have made it: in a directory
    owned by root that no one else can write (``/home -> /srv/home``), and
    never with ``follow_root_links=False`` (a tree restored from a snapshot).
    Anywhere else a link, or a file where a directory should be, raises
    UnsafePathError naming the path. A missing component raises
    ``OSError(ENOENT)``, or is first made by ``make(parent_fd, name, path)``
    when given (then opened with ``O_NOFOLLOW``; ``make`` checks what it made
    through its own descriptor). The caller closes the descriptor.
    """
    if base_fd is None:
        fd, walked = os.open("/", DIR_FLAGS), "/"
    else:
        fd, walked = os.dup(base_fd), ""
    try:
        for name in _components(path):
            current = posixpath.join(walked, name) if walked else name
            follow = follow_root_links and _root_only(os.fstat(fd))
            try:
                child = os.open(name, DIR_FLAGS | (0 if follow else os.O_NOFOLLOW), dir_fd=fd)
            except OSError as exc:
                if exc.errno == errno.ENOENT and make is not None:
                    make(fd, name, current)
                    child = os.open(name, DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
                elif exc.errno in (errno.ENOTDIR, errno.ELOOP):
                    raise UnsafePathError("%s is %s, in a directory a service user can write; root does not "
                                          "go through it" % (current, _what(fd, name)), path=current)
                else:
                    raise
            os.close(fd)
            fd, walked = child, current
    except BaseException:
        os.close(fd)
        raise
    return fd


def _what(dir_fd, name):
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return "not a directory"
    return "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a directory"


def lstat(path, base_fd=None, follow_root_links=True):
    """``os.lstat(path)`` reached as :func:`open_dir` reaches its parent; None when any part is missing."""
    parent, name = posixpath.split(path.rstrip("/"))
    try:
        fd = open_dir(parent, base_fd=base_fd, follow_root_links=follow_root_links)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    try:
        return os.stat(name, dir_fd=fd, follow_symlinks=False)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    finally:
        os.close(fd)
