# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release store of a Hugo site: what root does inside ``dest``.

Layout under ``dest``::

    src/                         git working copy (filled by hugo_source, as the owner)
    .cache/                      hugo --cacheDir
    releases/<commit12>-<hash8>/ hugo --destination of one build
    releases/<commit12>-<hash8>.json   marker, written last: the release is complete
    current -> releases/<commit12>-<hash8>

``dest`` belongs to the site's owner, whose git and hugo run between root's
steps. So root reaches everything in it through directory descriptors: ``dest``
is opened without following a link (and must not pass through one), every
entry below it with ``dir_fd`` and ``O_NOFOLLOW``; files and directories are
created, chowned, renamed and removed relative to those descriptors. A link
the owner puts anywhere in the tree is removed as a link, or refused, never
followed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import contextlib
import datetime
import errno
import grp
import json
import os
import pwd
import re
import stat

from ansible_collections.selfhost.pi.plugins.module_utils.errors import HostStateError, UnsafePathError

RELEASE_RE = re.compile(r"^[0-9a-f]{12}-[0-9a-f]{8}$")
TMP_PREFIX = ".tmp-"
MARKER_SUFFIX = ".json"
MARKER_MAX_BYTES = 65536
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC


def now():
    """UTC time stamp of markers (``built_at``, ``activated_at``)."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _random_name(prefix, suffix=""):
    return "%s%s%s" % (prefix, binascii.hexlify(os.urandom(4)).decode("ascii"), suffix)


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
    return os.open(name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=dir_fd)


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


def _fix_dir(fd, mode, uid, gid, check_mode):
    """Give the open directory ``fd`` its mode and owner; True when something differed."""
    st = os.fstat(fd)
    changed = False
    if stat.S_IMODE(st.st_mode) != mode:
        changed = True
        if not check_mode:
            os.fchmod(fd, mode)
    if (st.st_uid, st.st_gid) != (uid, gid):
        changed = True
        if not check_mode:
            os.fchown(fd, uid, gid)
    return changed


def read_json_at(dir_fd, name):
    """The JSON object in ``name`` (opened without following a link), or None."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | _CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        try:
            data = json.loads(handle.read(MARKER_MAX_BYTES).decode("utf-8"))
        except ValueError:
            return None
    return data if isinstance(data, dict) else None


def write_file_at(dir_fd, name, content, mode, uid, gid):
    """Write ``name`` in ``dir_fd`` atomically: a new temporary file, fchmod/fchown, rename."""
    tmp = _random_name(TMP_PREFIX, MARKER_SUFFIX)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC, 0o600, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content.encode("utf-8"))
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fchown(handle.fileno(), uid, gid)
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        tmp = None
    finally:
        if tmp is not None:
            remove_at(dir_fd, tmp)


def user_desc(uid, gid):
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        group = str(gid)
    return "owner %s, group %s" % (user, group)


class ReleaseStore(object):
    """``dest`` of one site: its owned directories, releases, markers and ``current``."""

    def __init__(self, dest, uid, gid):
        self.dest = os.path.normpath(dest)
        self.uid, self.gid = uid, gid
        self.src = os.path.join(self.dest, "src")
        self.cache = os.path.join(self.dest, ".cache")
        self.releases_dir = os.path.join(self.dest, "releases")
        self.current = os.path.join(self.dest, "current")

    def release_path(self, name):
        return os.path.join(self.releases_dir, name) if name else None

    # -- reaching dest ---------------------------------------------------------
    def _unsafe(self, path):
        return UnsafePathError("%s is (or passes through) a symlink; refusing to continue" % path, field="dest")

    def _not_a_dir(self, dir_fd, name, exc):
        """The error for ``dest/NAME`` that could not be opened as a directory."""
        path = os.path.join(self.dest, name)
        st = lstat_at(dir_fd, name)
        if st is not None and stat.S_ISLNK(st.st_mode):
            return self._unsafe(path)
        return UnsafePathError("%s is not a directory (%s)" % (path, exc.strerror), field="dest")

    def check_path(self):
        """Refuse a ``dest`` that is, or passes through, a symlink (before anything is written)."""
        probe = self.dest
        while not os.path.lexists(probe):
            probe = os.path.dirname(probe)
        if os.path.realpath(probe) != probe:
            raise self._unsafe(self.dest)

    def _open_dest(self):
        """A descriptor of ``dest``, or None when it does not exist."""
        self.check_path()
        try:
            return os.open(self.dest, _DIR_FLAGS | os.O_NOFOLLOW)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return None
            if exc.errno == errno.ELOOP:
                raise self._unsafe(self.dest)
            raise UnsafePathError("%s is not a directory (%s)" % (self.dest, exc.strerror), field="dest")

    @contextlib.contextmanager
    def _dirs(self, releases=True, required=False):
        """Yield (dest_fd, releases_fd); either is None when missing, unless ``required`` (then an error)."""
        dest_fd = self._open_dest()
        releases_fd = None
        try:
            if dest_fd is not None and releases:
                try:
                    releases_fd = open_dir_at(dest_fd, "releases")
                except OSError as exc:
                    if exc.errno != errno.ENOENT:
                        raise self._not_a_dir(dest_fd, "releases", exc)
            if required and (dest_fd is None or (releases and releases_fd is None)):
                raise HostStateError("%s disappeared during the run" % (
                    self.dest if dest_fd is None else self.releases_dir), field="dest")
            yield dest_fd, releases_fd
        finally:
            for fd in (releases_fd, dest_fd):
                if fd is not None:
                    os.close(fd)

    # -- owned directories -----------------------------------------------------
    def ensure_dest(self, check_mode=False):
        """Create ``dest`` (missing parents root-owned, 0755) and give it mode 0755 and the owner."""
        self.check_path()
        changed = False
        if not os.path.lexists(self.dest):
            if check_mode:
                return True
            parent = os.path.dirname(self.dest)
            if not os.path.isdir(parent):
                os.makedirs(parent, 0o755)
            self.check_path()
            os.mkdir(self.dest, 0o700)
            changed = True
        fd = self._open_dest()
        try:
            return _fix_dir(fd, 0o755, self.uid, self.gid, check_mode) or changed
        finally:
            os.close(fd)

    def ensure_dir(self, name, mode, check_mode=False):
        """Create ``dest/NAME`` (the owner's, ``mode``) through dest's descriptor; True when changed."""
        with self._dirs(releases=False) as (dest_fd, dummy):
            if dest_fd is None:
                return True
            changed = False
            if lstat_at(dest_fd, name) is None:
                if check_mode:
                    return True
                os.mkdir(name, 0o700, dir_fd=dest_fd)
                changed = True
            try:
                fd = open_dir_at(dest_fd, name)
            except OSError as exc:
                raise self._not_a_dir(dest_fd, name, exc)
            try:
                return _fix_dir(fd, mode, self.uid, self.gid, check_mode) or changed
            finally:
                os.close(fd)

    def ensure_dirs(self, check_mode=False):
        """``dest`` (0755), ``releases`` (0755) and ``.cache`` (0700), all the owner's."""
        if check_mode and not os.path.isdir(self.dest):
            return True
        changed = self.ensure_dest(check_mode)
        for name, mode in (("releases", 0o755), (".cache", 0o700)):
            changed = self.ensure_dir(name, mode, check_mode) or changed
        return changed

    def reset_dir(self, name, mode):
        """Replace whatever is at ``dest/NAME`` with an empty directory of the owner."""
        with self._dirs(releases=False, required=True) as (dest_fd, dummy):
            remove_at(dest_fd, name)
        self.ensure_dir(name, mode)

    # -- state -----------------------------------------------------------------
    def current_release(self):
        """Name of the release ``current`` points at, or None."""
        with self._dirs(releases=False) as (dest_fd, dummy):
            if dest_fd is None:
                return None
            st = lstat_at(dest_fd, "current")
            if st is None:
                return None
            if not stat.S_ISLNK(st.st_mode):
                raise UnsafePathError("%s exists and is not a symlink; move it away" % self.current, field="dest")
            target = os.readlink("current", dir_fd=dest_fd)
        head, name = os.path.split(target.rstrip("/"))
        if head in ("releases", self.releases_dir) and RELEASE_RE.match(name):
            return name
        return None

    def _marker_at(self, releases_fd, name):
        st = lstat_at(releases_fd, name)
        if st is None or not stat.S_ISDIR(st.st_mode):
            return None
        return read_json_at(releases_fd, name + MARKER_SUFFIX)

    def marker(self, name):
        """The marker of a complete release NAME, or None."""
        with self._dirs() as (dummy, releases_fd):
            return None if releases_fd is None else self._marker_at(releases_fd, name)

    def is_complete(self, name, commit, options_hash):
        data = self.marker(name)
        return bool(data) and data.get("commit") == commit and data.get("build_hash") == options_hash

    def dest_state(self):
        try:
            st = os.stat(self.dest)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return "%s (absent)" % self.dest
            raise
        return "%s (%s, mode %04o)" % (self.dest, user_desc(st.st_uid, st.st_gid), stat.S_IMODE(st.st_mode))

    # -- building a release ----------------------------------------------------
    def new_build_dir(self):
        """Make ``releases/.tmp-XXXXXXXX`` for hugo's output (the owner's, 0755); return its path."""
        with self._dirs(required=True) as (dummy, releases_fd):
            name = _random_name(TMP_PREFIX)
            os.mkdir(name, 0o700, dir_fd=releases_fd)
            fd = open_dir_at(releases_fd, name)
            try:
                _fix_dir(fd, 0o755, self.uid, self.gid, False)
            finally:
                os.close(fd)
        return os.path.join(self.releases_dir, name)

    def discard(self, path):
        """Remove a build directory made by :meth:`new_build_dir`."""
        with self._dirs() as (dummy, releases_fd):
            if releases_fd is not None:
                remove_at(releases_fd, os.path.basename(path))

    def publish(self, path, name, data):
        """Rename the build directory to ``releases/NAME``, then write its marker (the release is complete)."""
        with self._dirs(required=True) as (dummy, releases_fd):
            remove_at(releases_fd, name)
            os.rename(os.path.basename(path), name, src_dir_fd=releases_fd, dst_dir_fd=releases_fd)
            self._write_marker(releases_fd, name, data)

    def _write_marker(self, releases_fd, name, data):
        write_file_at(releases_fd, name + MARKER_SUFFIX, json.dumps(data, indent=2, sort_keys=True) + "\n",
                      0o644, self.uid, self.gid)

    def switch(self, name):
        """Point ``current`` at releases/NAME atomically (a symlink beside it, renamed over it).

        The marker records the time as ``activated_at``; pruning keeps the
        releases that were live most recently.
        """
        with self._dirs(required=True) as (dest_fd, releases_fd):
            data = self._marker_at(releases_fd, name)
            if data is None:
                raise HostStateError("%s has no marker; refusing to serve it" % self.release_path(name), field="dest")
            data["activated_at"] = now()
            self._write_marker(releases_fd, name, data)
            tmp = _random_name(".current.")
            os.symlink(os.path.join("releases", name), tmp, dir_fd=dest_fd)
            try:
                os.chown(tmp, self.uid, self.gid, dir_fd=dest_fd, follow_symlinks=False)
                os.rename(tmp, "current", src_dir_fd=dest_fd, dst_dir_fd=dest_fd)
            except Exception:
                remove_at(dest_fd, tmp)
                raise

    # -- pruning ---------------------------------------------------------------
    def plan_prune(self, current, keep, new=None):
        """Return (kept, removed) release names.

        kept holds ``current`` and the releases that were live most recently
        (``activated_at``, else ``built_at``), newest first; releases without
        a marker, stray temporary entries and orphan markers are removed.
        """
        names, stray, stamp = [], [], {}
        with self._dirs() as (dummy, releases_fd):
            entries = sorted(os.listdir(releases_fd)) if releases_fd is not None else []
            kinds = dict((entry, lstat_at(releases_fd, entry)) for entry in entries)
            for entry in entries:
                st = kinds[entry]
                is_dir = st is not None and stat.S_ISDIR(st.st_mode)
                if RELEASE_RE.match(entry) and is_dir:
                    names.append(entry)
                elif entry.startswith(TMP_PREFIX) or (
                        entry.endswith(MARKER_SUFFIX) and RELEASE_RE.match(entry[:-len(MARKER_SUFFIX)])
                        and not _is_dir(kinds.get(entry[:-len(MARKER_SUFFIX)]))):
                    stray.append(entry)
            for name in names:
                data = self._marker_at(releases_fd, name) or {}
                stamp[name] = data.get("activated_at", data.get("built_at"))
        if new and new not in names:
            names.append(new)
        if new:
            stamp[new] = "9999"
        complete = sorted((n for n in names if stamp[n]), key=lambda n: stamp[n], reverse=True)
        kept = [n for n in complete if n == current]
        kept += [n for n in complete if n != current][:max(keep - len(kept), 0)]
        if current in names and current not in kept:
            kept.append(current)
        kept.sort(key=lambda n: stamp[n] or "", reverse=True)
        removed = [n for n in names if n not in kept] + stray
        return kept, removed

    def prune(self, removed):
        with self._dirs() as (dummy, releases_fd):
            if releases_fd is None:
                return
            for entry in removed:
                remove_at(releases_fd, entry)
                if RELEASE_RE.match(entry):
                    remove_at(releases_fd, entry + MARKER_SUFFIX)


def _is_dir(st):
    return st is not None and stat.S_ISDIR(st.st_mode)
