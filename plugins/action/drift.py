# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller side of ``selfhost.pi.drift``: the declaration's digest, then the module on the host.

The digest covers, in this order: the ansible-core version; the collection's
own files (roles, plugins, playbooks, ``galaxy.yml``), so a new version of the
collection is a new declaration; every variable named in a ``meta/argument_specs.yml``
of the collection's roles that the inventory sets, templated (but the drift
role's own, which say how to check, not what the host holds); and the content
of the controller files those variables name (``blog_source``'s tree and each
``image_archive``). Only the digest goes to the host.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import functools
import glob
import hashlib
import json
import os

import yaml

try:
    from yaml import CSafeLoader as SafeLoader  # libyaml: the specs are read on every run
except ImportError:  # pragma: no cover
    from yaml import SafeLoader

from ansible.module_utils.ansible_release import __version__ as ansible_version
from ansible.plugins.action import ActionBase

COLLECTION = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONTENT = ("galaxy.yml", "MANIFEST.json", "roles", "plugins", "playbooks")
SKIPPED = frozenset(["__pycache__", ".git"])
BLOG_SKIPPED = frozenset([".git", "public", ".hugo_build.lock"])  # the blog role's bundle leaves them out too
_DIGESTS = {}  # controller file digests by (path, size, mtime), for a run over many hosts


@functools.lru_cache(maxsize=None)
def role_variables(collection=COLLECTION):
    """Every option name in the collection's roles' meta/argument_specs.yml, sorted (read once per run, not per
    host)."""
    names = set()
    for spec_file in glob.glob(os.path.join(collection, "roles", "*", "meta", "argument_specs.yml")):
        with open(spec_file) as handle:
            specs = (yaml.load(handle, Loader=SafeLoader) or {}).get("argument_specs") or {}
        for entry in specs.values():
            names.update((entry or {}).get("options") or {})
    return sorted(names)  # callers only read it


def file_digest(path):
    st = os.stat(path)
    key = (path, st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def tree_digest(root, skipped=SKIPPED):
    """Digest of every file's relative path, executable bit and content (or link target) below ``root``."""
    digest = hashlib.sha256()
    if not os.path.exists(root):
        digest.update(b"absent")
        return digest.hexdigest()
    if not os.path.isdir(root):
        digest.update(file_digest(root).encode())
        return digest.hexdigest()
    for base, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in skipped)
        for name in sorted(files):
            if name in skipped or name.endswith(".pyc"):
                continue
            path = os.path.join(base, name)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                digest.update(("%s -> %s\n" % (rel, os.readlink(path))).encode("utf-8", "surrogateescape"))
            else:
                executable = os.stat(path).st_mode & 0o111 != 0
                digest.update(("%s %s %s\n" % (rel, executable, file_digest(path))).encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def archives(value):
    """Every ``image_archive`` value anywhere in ``value`` (service_specs, pod members)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "image_archive" and isinstance(item, str):
                yield item
            else:
                yield from archives(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from archives(item)


def declaration(values, collection=COLLECTION, resolve=None):
    """The digest of ``values`` ({variable: templated value}), the files they name and the collection.

    ``resolve`` turns a relative controller path into the file a task would read (the action plugin searches
    as M(ansible.builtin.copy) does); absolute paths are read as they are.
    """
    resolve = resolve or (lambda path: path)
    digest = hashlib.sha256()
    digest.update(("ansible-core %s\n" % ansible_version).encode())
    for name in CONTENT:
        digest.update(("%s %s\n" % (name, tree_digest(os.path.join(collection, name)))).encode())
    digest.update(json.dumps(values, sort_keys=True, default=str).encode("utf-8", "surrogateescape"))
    files = set(archives(values))
    if values.get("blog_source"):
        digest.update(("blog_source %s\n" % tree_digest(resolve(values["blog_source"]), BLOG_SKIPPED)).encode())
    for path in sorted(files):
        digest.update(("%s %s\n" % (path, tree_digest(resolve(path)))).encode())
    return digest.hexdigest()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("state", "declaration", "path", "paths", "max_age"))

    def _values(self, task_vars):
        templar = self._templar.copy_with_new_env(available_variables=task_vars)
        values = {}
        for name in role_variables():
            if name not in task_vars or name.startswith("drift_"):  # how to check, not what the host holds
                continue
            try:
                values[name] = templar.template(task_vars[name])
            except Exception:  # an undefined reference the role's own checks report; its text still counts
                values[name] = repr(task_vars[name])
        return values

    def _controller_path(self, path):
        if os.path.isabs(path):
            return path
        try:
            return self._find_needle("files", path)  # where ansible.builtin.copy looks for a relative src
        except Exception:  # not found: its absence is part of the digest
            return path

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        args = dict(self._task.args)
        if args.get("state", "check") in ("check", "record") and not args.get("declaration"):
            args["declaration"] = declaration(self._values(task_vars), resolve=self._controller_path)
        result.update(self._execute_module(module_name="selfhost.pi.drift", module_args=args, task_vars=task_vars))
        return result
