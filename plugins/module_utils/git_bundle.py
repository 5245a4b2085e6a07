# -*- coding: utf-8 -*-
# Copyright: selfhost.pi contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A directory as a deterministic git bundle: one commit, fixed author and date.

The same files always give the same commit, so the same bundle bytes: a
consumer that keys on the commit (``hugo_site``'s releases) or on the bytes
(``ansible.builtin.copy``) sees no change while the directory is unchanged.
The steps are those of the shell glue the blog role used before
(``git init --bare``, ``info/exclude``, ``git add -A``, ``git commit``,
``git bundle create`` with ``pack.threads=1``), so a bundle made by either is
byte-identical.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import shutil
import tempfile

from ansible_collections.selfhost.pi.plugins.module_utils.errors import HostStateError, ValidationError

# Who and when: fixed, so the commit depends on the files only.
IDENTITY_ENV = {
    "GIT_AUTHOR_NAME": "selfhost.pi",
    "GIT_AUTHOR_EMAIL": "selfhost@localhost",
    "GIT_AUTHOR_DATE": "2000-01-01T00:00:00Z",
    "GIT_COMMITTER_NAME": "selfhost.pi",
    "GIT_COMMITTER_EMAIL": "selfhost@localhost",
    "GIT_COMMITTER_DATE": "2000-01-01T00:00:00Z",
}
REPO_DIR = "site.git"
INDEX_FILE = "index"
BUNDLE_FILE = "site.bundle"
READ_CHUNK = 1024 * 1024


def validate(host, git, params):
    """Check the options before anything is written; return the git executable's path."""
    src = params["src"]
    if not os.path.isdir(src):
        raise ValidationError("%s is not a directory" % src, field="src")
    parent = os.path.dirname(os.path.abspath(params["dest"]))
    if not os.path.isdir(parent):
        raise ValidationError("directory %s does not exist" % parent, field="dest")
    if os.path.isdir(params["dest"]):
        raise ValidationError("%s is a directory; give the bundle file's path" % params["dest"], field="dest")
    for pattern in params["exclude"]:
        if not pattern.strip() or "\n" in pattern:
            raise ValidationError("%r is not a gitignore pattern (one non-empty line)" % pattern, field="exclude")
    if "\n" in params["commit_message"] or not params["commit_message"].strip():
        raise ValidationError("must be one non-empty line", field="commit_message")
    path = git if "/" in git else host.which(git)
    if not path or not os.access(path, os.X_OK):
        raise HostStateError("%s not found or not executable" % git, field="git_path")
    rc, dummy, dummy = host.run([path, "check-ref-format", "--branch", params["branch"]], check=False)
    if rc != 0 or params["branch"].startswith("-"):
        raise ValidationError("%r is not a valid git branch name" % params["branch"], field="branch")
    return path


def make_bundle(host, git, workdir, src, branch, message, exclude):
    """Commit ``src`` as the only commit of ``branch`` in a new repository in ``workdir`` and bundle it.

    Returns (path of the bundle in ``workdir``, commit SHA). Files matched by
    ``exclude`` (gitignore patterns) or by the directory's own .gitignore
    files are left out. The user's git configuration applies, as it did
    for the shell glue this replaces; ``commit.gpgsign`` is turned off,
    since a signature would change the commit every time.
    """
    repo = os.path.join(workdir, REPO_DIR)
    bundle = os.path.join(workdir, BUNDLE_FILE)
    host.run([git, "-c", "init.defaultBranch=" + branch, "init", "-q", "--bare", repo], what="git init")
    with open(os.path.join(repo, "info", "exclude"), "w") as handle:
        handle.write("".join(pattern + "\n" for pattern in exclude))
    env = dict(IDENTITY_ENV, GIT_DIR=repo, GIT_WORK_TREE=src, GIT_INDEX_FILE=os.path.join(workdir, INDEX_FILE))
    host.run([git, "add", "-A", "."], cwd=src, env=env, what="git add -A in %s" % src)
    host.run([git, "-c", "pack.threads=1", "-c", "commit.gpgsign=false", "commit", "-q", "-m", message,
              "--allow-empty"], cwd=src, env=env, what="git commit")
    host.run([git, "-c", "pack.threads=1", "bundle", "create", "-q", bundle, branch], cwd=src, env=env,
             what="git bundle create")
    dummy, out, dummy = host.run([git, "rev-parse", "refs/heads/" + branch], cwd=src, env=env, what="git rev-parse")
    return bundle, out.strip()


def bundle_head(host, git, path, branch):
    """The commit ``refs/heads/BRANCH`` has in the bundle at ``path``; None when unreadable or absent."""
    if not os.path.isfile(path):
        return None
    rc, out, dummy = host.run([git, "bundle", "list-heads", path, "refs/heads/" + branch], check=False)
    if rc != 0:
        return None
    for line in out.splitlines():
        parts = line.split(" ", 1)
        if len(parts) == 2 and parts[1].strip() == "refs/heads/" + branch:
            return parts[0].strip()
    return None


def same_bytes(a, b):
    """True when the files ``a`` and ``b`` both exist and are equal."""
    try:
        if os.path.getsize(a) != os.path.getsize(b):
            return False
        with open(a, "rb") as left, open(b, "rb") as right:
            while True:
                chunk = left.read(READ_CHUNK)
                if chunk != right.read(READ_CHUNK):
                    return False
                if not chunk:
                    return True
    except (IOError, OSError):
        return False


def sha1_of(path):
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(READ_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def install(bundle, dest, mode=0o644):
    """Put ``bundle`` at ``dest`` atomically (a temporary file beside it, renamed over it)."""
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(dest), dir=os.path.dirname(os.path.abspath(dest)))
    try:
        with os.fdopen(fd, "wb") as out, open(bundle, "rb") as data:
            shutil.copyfileobj(data, out, READ_CHUNK)
            out.flush()
            os.fchmod(out.fileno(), mode)
        os.rename(tmp, dest)
        tmp = None
    finally:
        if tmp is not None:
            os.unlink(tmp)


def converge(host, params):
    """Make the bundle of ``src``; write ``dest`` when its bytes differ (not in check mode)."""
    git = validate(host, params["git_path"], params)
    dest = params["dest"]
    before = bundle_head(host, git, dest, params["branch"])
    workdir = tempfile.mkdtemp(prefix="selfhost-bundle.")
    try:
        bundle, commit = make_bundle(host, git, workdir, os.path.abspath(params["src"]), params["branch"],
                                     params["commit_message"], params["exclude"])
        changed = not same_bytes(bundle, dest)
        if changed and not host.check_mode:
            install(bundle, dest)
        checksum, size = sha1_of(bundle), os.path.getsize(bundle)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return dict(
        changed=changed, dest=dest, commit=commit, checksum=checksum, size=size,
        diff=dict(before_header=dest, after_header=dest,
                  before="refs/heads/%s: %s\n" % (params["branch"], before) if before else "",
                  after="refs/heads/%s: %s\n" % (params["branch"], commit)),
    )
