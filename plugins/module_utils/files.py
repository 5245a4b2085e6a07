# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small file primitives shared by the selfhost.pi modules.

Every managed file goes through ``ManagedFile``: read what is there, compare it
with what is wanted (content, mode, owner), report a ``--diff``, and, outside
check mode, write a temporary file beside the target, optionally validate it,
and rename it into place. A file that fails validation never replaces the
working one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import grp
import os
import pwd
import stat
import tempfile

from ansible_collections.selfhost.pi.plugins.module_utils.errors import ValidationError


def read_text(path):
    """Return the file's text, or None when it does not exist or is a symlink.

    A symlink is never followed (it could point a root-run module at another
    user's or the system's files); treated as absent, it is replaced.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except (IOError, OSError) as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return None
        raise
    with os.fdopen(fd, "rb") as handle:
        return handle.read().decode("utf-8", errors="surrogateescape")


def check_no_symlink(path):
    """Raise OSError when any component of ``path`` is a symlink.

    Root writes into directories that service users own (their homes); a link
    there must not redirect the write elsewhere.
    """
    path = os.path.abspath(path)
    probe = path
    while not os.path.lexists(probe):
        probe = os.path.dirname(probe)
    if os.path.realpath(probe) != probe:
        raise OSError(errno.ELOOP, "%s passes through a symlink; refusing to write there" % path)


def resolve_ids(owner=None, group=None):
    """Map owner/group names (or numeric strings) to ids; None keeps 'unset'."""
    uid = gid = None
    if owner is not None:
        uid = int(owner) if str(owner).isdigit() else pwd.getpwnam(owner).pw_uid
    if group is not None:
        gid = int(group) if str(group).isdigit() else grp.getgrnam(group).gr_gid
    return uid, gid


class ManagedFile(object):
    """One file with wanted content, mode and ownership."""

    def __init__(self, path, content, mode=0o644, owner=None, group=None):
        self.path = path
        self.content = content
        self.mode = mode
        self.owner = owner
        self.group = group
        self.before = read_text(path)

    def _attrs_differ(self):
        if os.path.islink(self.path):
            return True
        try:
            st = os.lstat(self.path)
        except OSError:
            return True
        uid, gid = resolve_ids(self.owner, self.group)
        return (
            stat.S_IMODE(st.st_mode) != self.mode
            or (uid is not None and st.st_uid != uid)
            or (gid is not None and st.st_gid != gid)
        )

    @property
    def content_changed(self):
        return self.before != self.content

    @property
    def changed(self):
        return self.content_changed or self._attrs_differ()

    def diff(self):
        """A diff entry in the shape Ansible's --diff callback prints."""
        return {
            "before_header": self.path if self.before is not None else "%s (absent)" % self.path,
            "after_header": self.path,
            "before": self.before or "",
            "after": self.content,
        }

    def write_temp(self):
        """Write the wanted content to a temporary file in the target's directory.

        Mode and owner are set on the open descriptor, so nothing another user
        puts at that path in between is touched.
        """
        directory = os.path.dirname(self.path) or "."
        fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(self.path), dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(self.content.encode("utf-8", errors="surrogateescape"))
                handle.flush()
                _set_attrs(handle.fileno(), self.mode, self.owner, self.group)
        except Exception:
            os.unlink(tmp)
            raise
        return tmp

    def apply(self, validate=None):
        """Write the file if needed; return True when something changed.

        ``validate(tmp_path)`` may raise or return an error string; then the
        temporary file is removed, the target is left untouched and
        ValidationError carries that message.
        """
        if not self.changed:
            return False
        if not self.content_changed and not os.path.islink(self.path):
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
            try:
                _set_attrs(fd, self.mode, self.owner, self.group)
            finally:
                os.close(fd)
            return True
        check_no_symlink(os.path.dirname(self.path))
        tmp = self.write_temp()
        try:
            if validate is not None:
                error = validate(tmp)
                if error:
                    raise ValidationError(error, path=self.path)
            os.rename(tmp, self.path)
            tmp = None
        finally:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
        return True


def apply_in_state_dir(target):
    """``target.apply()`` for a root record (``managed.json``, ``converged.json``): its root-owned directory
    (0755) is made first when missing (the base role makes it, base_state_dir, on a converged host)."""
    directory = os.path.dirname(target.path)
    if not os.path.isdir(directory):
        ensure_directory(directory, 0o755, 0, 0)
    return target.apply()


def _set_attrs(fd, mode, owner=None, group=None):
    """fchmod/fchown an open descriptor (never a path, which could be swapped for a symlink)."""
    os.fchmod(fd, mode)
    uid, gid = resolve_ids(owner, group)
    if uid is not None or gid is not None:
        os.fchown(fd, -1 if uid is None else uid, -1 if gid is None else gid)


def ensure_directory(path, mode, uid=None, gid=None, check_mode=False):
    """Create ``path`` (and parents owned the same way) if missing; fix mode/owner.

    Returns True when something changed (or would change in check mode). A
    symlink where a directory is wanted is an error (``OSError``): root never
    follows links that a service user could have placed.
    """
    check_no_symlink(path)
    missing = []
    current = path
    while current and not os.path.lexists(current):
        missing.append(current)
        current = os.path.dirname(current)
    if current and not os.path.isdir(current):
        raise OSError(errno.ENOTDIR, "%s is not a directory" % current)
    changed = bool(missing)
    if check_mode:
        if not missing:
            st = os.lstat(path)
            changed = stat.S_IMODE(st.st_mode) != mode or (uid is not None and st.st_uid != uid) or (
                gid is not None and st.st_gid != gid)
        return changed
    for directory in reversed(missing):
        os.mkdir(directory, mode)
    for directory in reversed(missing or [path]):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            st = os.fstat(fd)
            if stat.S_IMODE(st.st_mode) != mode or (uid is not None and st.st_uid != uid) or (
                    gid is not None and st.st_gid != gid):
                _set_attrs(fd, mode, uid, gid)
                changed = True
        finally:
            os.close(fd)
    return changed
