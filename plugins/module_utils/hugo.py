# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build a Hugo site from git into per-commit releases behind a ``current`` symlink.

``converge(host, params)`` is the whole job of ``selfhost.pi.hugo_site`` (and of
the blog's push-triggered ``selfhost-blog-build``, which calls it with a
``host.ProcessHost``). It composes three parts, each in its own file:

- ``hugo_source.GitSource``: resolve ``version`` with ``git ls-remote``, clone or
  fetch into ``DEST/src``, check out (git as the owner);
- ``hugo_build.HugoBuild``: the build identity (options hash, release name) and
  the hugo command (hugo as the owner);
- ``hugo_release.ReleaseStore``: what root does inside ``dest`` (owned
  directories, ``releases/<commit12>-<hash8>`` and markers, the ``current``
  switch, pruning), never following a link the owner placed.

It raises ``errors.SelfhostError`` subclasses; only the module's ``main()``
(or the host program's) turns them into a failure.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import grp
import os
import pwd

from ansible_collections.selfhost.pi.plugins.module_utils.constants import RC_TIMEOUT
from ansible_collections.selfhost.pi.plugins.module_utils.errors import HostStateError, ValidationError
from ansible_collections.selfhost.pi.plugins.module_utils.hugo_build import (
    CONTROLLED_FLAGS, HugoBuild, build_hash, build_options, release_name)
from ansible_collections.selfhost.pi.plugins.module_utils.hugo_release import ReleaseStore, now, user_desc
from ansible_collections.selfhost.pi.plugins.module_utils.hugo_source import (
    GitSource, has_credentials, mask_credentials)

# git and hugo never prompt, and speak English (messages are matched, e.g. "dubious ownership").
COMMAND_ENV = {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}

# The options of selfhost.pi.hugo_site; the host program fills the defaults from here too.
ARGUMENT_SPEC = dict(
    dest=dict(type="path", required=True),
    repo=dict(type="str", required=True),
    version=dict(type="str", default="HEAD"),
    owner=dict(type="str", required=True),
    group=dict(type="str"),
    base_url=dict(type="str"),
    environment=dict(type="str", default="production"),
    minify=dict(type="bool", default=False),
    build_drafts=dict(type="bool", default=False),
    extra_args=dict(type="list", elements="str", default=[]),
    keep_releases=dict(type="int", default=3),
    hugo_path=dict(type="path", default="hugo"),
    git_path=dict(type="path", default="git"),
    timeout=dict(type="int", default=600),
)


def validate_params(params, check_mode=False):
    """Check every option before anything is touched; return (uid, gid).

    In check mode a missing owner (made by an earlier task that did not run)
    is not an error; the uid and gid are then None.
    """
    errors = []
    dest = params["dest"]
    if not os.path.isabs(dest) or os.path.normpath(dest) == "/":
        errors.append("dest: %r must be an absolute path below /" % dest)
    uid = gid = None
    try:
        pw = pwd.getpwnam(params["owner"])
        uid, gid = pw.pw_uid, pw.pw_gid
    except KeyError:
        if not check_mode:
            errors.append("owner: user %r does not exist" % params["owner"])
    if params.get("group"):
        try:
            gid = grp.getgrnam(params["group"]).gr_gid
        except KeyError:
            errors.append("group: group %r does not exist" % params["group"])
    for name in ("repo", "version"):
        value = params[name]
        if not value or value.startswith("-") or any(c in value for c in "\n\0"):
            errors.append("%s: %r is not a valid git %s" % (
                name, mask_credentials(value), "repository" if name == "repo" else "revision"))
    if params["keep_releases"] < 1:
        errors.append("keep_releases: %d must be at least 1" % params["keep_releases"])
    if params["timeout"] < 1:
        errors.append("timeout: %d must be at least 1 second" % params["timeout"])
    if params.get("base_url") is not None and not params["base_url"].strip():
        errors.append("base_url: must not be empty when set")
    if not params["environment"] or params["environment"].startswith("-"):
        errors.append("environment: %r is not a valid Hugo environment name" % params["environment"])
    for arg in params["extra_args"]:
        if not arg.startswith("-"):
            errors.append("extra_args: %r must start with '-' (write values as --flag=value)" % arg)
        elif arg.split("=", 1)[0] in CONTROLLED_FLAGS:
            errors.append("extra_args: %r is set by the module; use its own option instead" % arg)
    if uid is not None and os.geteuid() not in (0, uid):
        errors.append("owner: the module runs as uid %d; run it as root (become) or as %r"
                      % (os.geteuid(), params["owner"]))
    if errors:
        raise ValidationError("; ".join(errors))
    return uid, gid


class AsOwner(object):
    """Run git and hugo as the site's owner (``host.run_as``), optionally within a time limit."""

    def __init__(self, host, owner):
        self.host = host
        self.owner = owner
        self.timeout_bin = host.which("timeout")

    def run(self, argv, cwd="/", timeout=None):
        """Return (rc, stdout, stderr); rc is None when ``timeout`` seconds ran out."""
        cmd = list(argv)
        if timeout and self.timeout_bin:
            cmd = [self.timeout_bin, "--kill-after=10", str(timeout)] + cmd
        rc, out, err = self.host.run_as(self.owner, cmd, cwd=cwd, env=COMMAND_ENV, check=False)
        if timeout and self.timeout_bin and rc == RC_TIMEOUT:
            rc = None
        return rc, out, err


def find_tool(host, params, field):
    """Absolute path of git_path/hugo_path (searched on PATH when it has no slash), or None."""
    value = params[field]
    path = value if "/" in value else host.which(value)
    return path if path and os.access(path, os.X_OK) else None


def _describe(dest, current, releases):
    return "current: %s\nreleases: %s\ndest: %s\n" % (current, ", ".join(releases) or "(none)", dest)


def _not_there_yet(host, params, uid, field):
    """The check-mode result when the owner or a tool is missing (an earlier task would make it)."""
    host.warn("%s is not there yet; assuming the site would be built" % (
        "owner: user %s" % params["owner"] if uid is None else "%s: %s" % (field, params[field])))
    current = os.path.join(os.path.normpath(params["dest"]), "current")
    return dict(changed=True, built=False, commit=None, release=None, previous_release=None,
                current=current, releases=[], diff=dict(before="", after="build %s of %s\n" % (
                    params["version"], mask_credentials(params["repo"])), before_header=current,
                    after_header=current))


def converge(host, params):
    """Bring ``dest`` to the wanted commit and build options; return the result dict.

    Raises a SelfhostError (ValidationError, CommandError, UnsafePathError,
    HostStateError) on bad input or a failed step; ``current`` is never
    switched then.
    """
    check = host.check_mode
    uid, gid = validate_params(params, check)
    store = ReleaseStore(params["dest"], uid, gid)
    store.check_path()
    if has_credentials(params["repo"]):
        host.warn("repo: %s holds credentials, which git shows on its command line and keeps in %s/.git/config;"
                  " use a credential helper or an SSH deploy key of %s instead"
                  % (mask_credentials(params["repo"]), store.src, params["owner"]))
    tools = {}
    for field in ("git_path", "hugo_path"):
        tools[field] = find_tool(host, params, field)
        if tools[field] is None or uid is None:
            if not check:
                raise HostStateError("%s not found or not executable" % params[field], field=field)
            return _not_there_yet(host, params, uid, field)

    runner = AsOwner(host, params["owner"])
    source = GitSource(runner, tools["git_path"], store.src, params["repo"], params["version"], params["owner"],
                       params["timeout"], fallback_cwd=store.dest)
    hugo = HugoBuild(runner, tools["hugo_path"], params, store.src, store.cache)

    # Read the state and resolve the target: no writes so far.
    previous = store.current_release()
    before_commit = (store.marker(previous) or {}).get("commit", "unknown") if previous else None
    before_releases = store.plan_prune(previous, 10 ** 6)[0]
    dest_before = store.dest_state()
    options = build_options(params, hugo.version(source.cwd()))
    options_hash = build_hash(options)
    commit, ref, spec = source.resolve()
    if commit is not None:
        name = release_name(commit, options_hash)
        up_to_date = name == previous and store.is_complete(name, commit, options_hash)
    else:
        name, up_to_date = None, False

    dirs_changed = store.ensure_dirs(check_mode=check)

    built = False
    if not up_to_date and not check:
        if commit is None:
            source.fetch(ref, None, lambda: store.reset_dir("src", 0o755))
            commit = source.lookup(spec)
            name = release_name(commit, options_hash)
        if not store.is_complete(name, commit, options_hash):
            source.fetch(ref, commit, lambda: store.reset_dir("src", 0o755))
            source.checkout(commit)
            _build(store, hugo, params, commit, name, options, options_hash, previous)
            built = True
        if name != previous:
            store.switch(name)

    active = name or previous
    kept, removed = store.plan_prune(active, params["keep_releases"],
                                     new=name if check and name and not up_to_date else None)
    if not check:
        store.prune(removed)

    if check:
        dest_after = "%s (%s, mode 0755)" % (store.dest, user_desc(uid, gid)) if dirs_changed else dest_before
    else:
        dest_after = store.dest_state()
    if previous:
        current_before = "commit %s (release %s)" % (before_commit, store.release_path(previous))
    else:
        current_before = "(none)"
    if commit:
        current_after = "commit %s (release %s)" % (commit, store.release_path(name))
    else:
        current_after = "commit of version %r (known after fetching)" % params["version"]
    return dict(
        changed=dirs_changed or not up_to_date or bool(removed),
        built=built,
        commit=commit,
        release=store.release_path(name),
        previous_release=store.release_path(previous),
        current=store.current,
        releases=[store.release_path(n) for n in kept],
        diff=dict(before_header=store.current, after_header=store.current,
                  before=_describe(dest_before, current_before, before_releases),
                  after=_describe(dest_after, current_after, kept)),
    )


def _build(store, hugo, params, commit, name, options, options_hash, previous):
    """hugo into releases/.tmp-*, renamed to releases/NAME with its marker; removed when hugo fails."""
    tmp = store.new_build_dir()
    try:
        hugo.run(tmp, commit, store.release_path(previous))
        store.publish(tmp, name, {
            "commit": commit,
            "version": params["version"],
            "repo": mask_credentials(params["repo"]),
            "build_hash": options_hash,
            "options": options,
            "built_at": now(),
        })
        tmp = None
    finally:
        if tmp is not None:
            store.discard(tmp)
