"""Real git repositories in a temporary directory, for the tests of hugo_site, git_bundle and the blog builder.

git is on the machine, so the tests run it rather than a model of it. Each
test's git sees no system or user configuration (only an empty file of its
own), so the machine's ~/.gitconfig cannot change a result.
"""
import os
import shutil
import subprocess

import pytest

GIT = shutil.which("git")
needs_git = pytest.mark.skipif(GIT is None, reason="git is not installed on this machine")

IDENTITY = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.org",
    "GIT_COMMITTER_NAME": "Test Author",
    "GIT_COMMITTER_EMAIL": "author@example.org",
}


def isolate_git(monkeypatch, tmp_path, config=""):
    """Point git at an empty (or the given) global configuration and no system one; return its path."""
    path = tmp_path / "gitconfig"
    path.write_text(config)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(path))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for key, value in IDENTITY.items():
        monkeypatch.setenv(key, value)
    return path


def git(cwd, *args):
    proc = subprocess.run([GIT] + list(args), cwd=str(cwd), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
    if proc.returncode != 0:
        raise AssertionError("git %s failed: %s" % (" ".join(args), proc.stderr))
    return proc.stdout.strip()


class Repo(object):
    """A git repository with a working tree on branch main."""

    def __init__(self, path):
        self.path = path
        os.makedirs(str(path))
        git(path, "init", "-q", "-b", "main")

    def commit(self, files=None, message="change", remove=()):
        """Write ``files`` ({name: text}), remove ``remove``, commit; return the new commit's SHA."""
        for name, text in (files or {}).items():
            target = os.path.join(str(self.path), name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w") as handle:
                handle.write(text)
        for name in remove:
            os.unlink(os.path.join(str(self.path), name))
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "--allow-empty", "-m", message)
        return self.head()

    def head(self, rev="HEAD"):
        return git(self.path, "rev-parse", rev)

    def tag(self, name, rev="HEAD", annotated=True):
        """Tag ``rev``; return the SHA of the tag object (annotated) or of the commit."""
        if annotated:
            git(self.path, "tag", "-a", "-m", name, name, rev)
        else:
            git(self.path, "tag", name, rev)
        return git(self.path, "rev-parse", "refs/tags/" + name)

    def branch(self, name, rev="HEAD"):
        git(self.path, "branch", "-f", name, rev)
