# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The git source of a Hugo site: resolve ``version``, clone or fetch, check out.

Every git command runs as the site's owner (the ``runner`` given, see
``hugo.AsOwner``) in ``DEST/src``, a working copy the owner owns, so git's
``safe.directory`` check passes for it; a local ``repo`` owned by another user
is refused by git, and the error says how to trust it. Resolving reads the
remote with ``git ls-remote`` and the existing clone; it writes nothing, so
check mode can use it.

A ``repo`` URL may carry credentials (``https://user:token@host/...``):
:func:`mask_credentials` hides them in every message, and :func:`url_secret`
gives the module the value to mark no_log.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible_collections.selfhost.pi.plugins.module_utils.errors import CommandError, ValidationError

FULL_SHA_RE = re.compile(r"^[0-9a-fA-F]{40}$")
SHORT_SHA_RE = re.compile(r"^[0-9a-fA-F]{4,39}$")
# scheme://USERINFO@ -- greedy up to the last "@" before the path, as git and curl read it.
_USERINFO_RE = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)([^/\s]*)@")
_TOKEN_SCHEMES = ("http://", "https://", "ftp://", "ftps://")
MASK = "***"


def _userinfo(match):
    scheme, userinfo = match.group(1), match.group(2)
    if ":" in userinfo:
        user, secret = userinfo.split(":", 1)
        return "%s%s:%s@" % (scheme, user, MASK), secret
    if scheme.lower() in _TOKEN_SCHEMES and userinfo:
        return "%s%s@" % (scheme, MASK), None     # a token given as the user name
    return match.group(0), None


def mask_credentials(text):
    """``text`` with the password of every URL in it (and an http(s) token given as user) as ``***``."""
    if not text:
        return text
    return _USERINFO_RE.sub(lambda m: _userinfo(m)[0], text)


def url_secret(url):
    """The password in ``url`` (``scheme://user:PASSWORD@host``), or None."""
    match = _USERINFO_RE.search(url or "")
    return _userinfo(match)[1] if match else None


def has_credentials(url):
    return mask_credentials(url) != url


def tail(text, lines):
    return "\n".join(text.strip().splitlines()[-lines:])


class GitSource(object):
    """``repo`` at ``version``, cloned into ``src`` by ``runner`` (the owner)."""

    def __init__(self, runner, git, src, repo, version, owner, timeout, fallback_cwd="/"):
        self.runner = runner
        self.git = [git]
        self.src = src
        self.repo = repo
        self.version = version
        self.owner = owner
        self.timeout = timeout
        self.fallback_cwd = fallback_cwd
        self.fetched = False

    @property
    def shown_repo(self):
        return mask_credentials(self.repo)

    def has_clone(self):
        return os.path.isdir(os.path.join(self.src, ".git"))

    def cwd(self):
        for path in (self.src, self.fallback_cwd):
            if os.path.isdir(path) and not os.path.islink(path):
                return path
        return "/"

    def _run(self, argv, network=False):
        return self.runner.run(self.git + argv, cwd=self.cwd(), timeout=self.timeout if network else None)

    def _git(self, args, what, network=False, field="repo"):
        rc, out, err = self._run(["-C", self.src] + args, network=network)
        value = self.shown_repo if field == "repo" else self.version
        if rc is None:
            raise CommandError("git %s timed out after %d seconds (timeout)" % (what, self.timeout), field=field)
        if rc != 0:
            raise CommandError("git %s failed for %s: %s" % (what, value, mask_credentials(tail(err or out, 10))),
                               field=field)
        return out

    def ls_remote(self):
        """{ref: sha} of the remote for ``version`` (HEAD, or the name and its peeled tag)."""
        patterns = ["HEAD"] if self.version == "HEAD" else [self.version, self.version + "^{}"]
        rc, out, err = self._run(["ls-remote", self.repo] + patterns, network=True)
        if rc is None:
            raise CommandError("git ls-remote %s timed out after %d seconds (timeout)"
                               % (self.shown_repo, self.timeout), field="repo")
        if rc != 0:
            hint = ""
            if "dubious ownership" in err:
                hint = (" (git does not read a local repository owned by another user: make %s its owner, or"
                        " add it to safe.directory in /etc/gitconfig or %s's ~/.gitconfig)" % (self.owner, self.owner))
            raise CommandError("cannot read %s as user %s%s: %s"
                               % (self.shown_repo, self.owner, hint, mask_credentials(tail(err or out, 10))),
                               field="repo")
        refs = {}
        for line in out.splitlines():
            parts = line.split("\t", 1)
            if len(parts) == 2:
                refs[parts[1].strip()] = parts[0].strip().lower()
        return refs

    def rev_parse(self, spec):
        """Commit SHA of ``spec`` in the local clone, without fetching; None when unknown."""
        if not self.has_clone():
            return None
        rc, out, dummy = self._run(["-C", self.src, "rev-parse", "--verify", "--quiet", spec + "^{commit}"])
        return out.strip().lower() if rc == 0 and out.strip() else None

    def resolve(self):
        """Return (commit, ref, spec) for ``version`` without writing anything.

        Branches, tags and HEAD are resolved with one ``git ls-remote``; a full
        SHA needs no lookup; a short SHA or an unpeeled tag (bundles do not
        list peeled tags) is looked up in the existing clone. commit is None
        when only fetching can tell; then ``spec`` is what to look up after
        ``fetch(ref, None)``.
        """
        version = self.version
        if FULL_SHA_RE.match(version):
            return version.lower(), None, version.lower()
        refs = self.ls_remote()
        if version == "HEAD":
            candidates = ["HEAD"]
        elif version.startswith("refs/"):
            candidates = [version]
        else:
            candidates = ["refs/heads/" + version, "refs/tags/" + version]
        for ref in candidates:
            if ref in refs:
                if ref + "^{}" in refs:
                    return refs[ref + "^{}"], ref, refs[ref + "^{}"]
                if not ref.startswith("refs/tags/"):
                    return refs[ref], ref, refs[ref]
                return self.rev_parse(refs[ref]), ref, refs[ref]
        if not SHORT_SHA_RE.match(version):
            raise ValidationError("%r is not a branch or tag of repo %s" % (version, self.shown_repo), field="version")
        return self.rev_parse(version), None, version

    def lookup(self, spec):
        """Commit SHA of ``spec`` after fetching; ValidationError when the repository has none."""
        commit = self.rev_parse(spec)
        if commit is None:
            raise ValidationError("%r is not a branch, tag or commit of repo %s" % (self.version, self.shown_repo),
                                  field="version")
        return commit

    def fetch(self, ref, commit, make_src):
        """Clone the repository, or fetch all branches and tags into the existing clone.

        ``make_src()`` replaces whatever is at ``src`` with an empty directory
        of the owner (root's job, see hugo_release) before the first clone.
        """
        if not self.fetched:
            if self.has_clone():
                rc, out, dummy = self._run(["-C", self.src, "config", "--get", "remote.origin.url"])
                if out.strip() != self.repo:
                    self._git(["remote", "set-url", "origin", self.repo], "remote set-url")
                self._git(["fetch", "--quiet", "--force", "--prune", "origin",
                           "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"],
                          "fetch", network=True)
            else:
                make_src()
                self._git(["clone", "--quiet", "--no-checkout", "--origin", "origin", self.repo, "."],
                          "clone", network=True)
            self.fetched = True
        if commit and self.rev_parse(commit) is None:
            # Not on any branch or tag: ask for the ref (or the commit) itself.
            self._run(["-C", self.src, "fetch", "--quiet", "origin", ref or commit], network=True)

    def checkout(self, commit):
        """Check out ``commit`` detached, drop local changes and untracked files, update submodules."""
        self._git(["checkout", "--quiet", "--force", "--detach", commit], "checkout", field="version")
        self._git(["clean", "-ffdxq"], "clean")
        if os.path.isfile(os.path.join(self.src, ".gitmodules")):
            self._git(["submodule", "--quiet", "sync", "--recursive"], "submodule sync")
            self._git(["submodule", "--quiet", "update", "--init", "--recursive", "--force"],
                      "submodule update", network=True)
            self._git(["submodule", "--quiet", "foreach", "--recursive", "git clean -ffdxq"], "submodule clean")
