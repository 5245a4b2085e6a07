# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Root reaching into a tree a service user can write, without following its links.

One way, used by every step that runs as root in a service user's home, a
restored snapshot, a request spool or a release store: walk one directory
descriptor at a time with ``O_NOFOLLOW``, stat with ``follow_symlinks=False``,
and act relative to a descriptor already checked (``dir_fd=``). A link a
service user (so its container) placed never redirects root elsewhere.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import posixpath
import stat

from ansible_collections.selfhost.pi.plugins.module_utils.errors import UnsafePathError

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)


def root_only(st):
    """True for a directory only root can change (root's, not writable by group or others)."""
    return st.st_uid == 0 and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def components(path):
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
        for name in components(path):
            current = posixpath.join(walked, name) if walked else name
            follow = follow_root_links and root_only(os.fstat(fd))
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


def lstat_at(dir_fd, name):
    """``lstat`` of ``name`` in the directory ``dir_fd``; None when it does not exist."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise


def open_dir_at(dir_fd, name):
    """Open the directory ``name`` in ``dir_fd`` without following a link (OSError otherwise)."""
    return os.open(name, DIR_FLAGS | os.O_NOFOLLOW, dir_fd=dir_fd)


def remove_at(dir_fd, name):
    """Remove ``name`` in ``dir_fd`` and, for a directory, all it holds, never following a link.

    Any entry type is handled: a link, fifo, socket or device node is unlinked
    as itself; a directory is emptied through its own descriptor. Returns
    False when there was nothing to remove.
    """
    st = lstat_at(dir_fd, name)
    if st is None:
        return False
    if stat.S_ISDIR(st.st_mode):
        fd = open_dir_at(dir_fd, name)
        try:
            for entry in os.listdir(fd):
                remove_at(fd, entry)
        finally:
            os.close(fd)
        os.rmdir(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)
    return True
