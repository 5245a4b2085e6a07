"""Unit tests for selfhost.pi.hugo_site with real git repositories in a temporary directory.

git is real (a repository made by the test is the remote; git runs through a
wrapper that only logs its arguments). hugo is NOT installed on this machine
and is not installed for the tests: a small stand-in script (FAKE_HUGO below)
takes hugo's place. It answers ``hugo version`` and, for a build, copies the
checked-out ``content.txt`` to ``index.html`` in ``--destination``; files in the
commit make it fail (BROKEN), hang (SLOW) or misbehave as the owner (SWAP). The
tests check what the module does around hugo, not Hugo itself.
"""
import hashlib
import json
import os
import pwd
import stat
import subprocess
import sys

import pytest
from ansible.module_utils import basic

from ansible_collections.selfhost.pi.plugins.module_utils import host as host_utils
from ansible_collections.selfhost.pi.plugins.module_utils import hugo as hugo_utils
from ansible_collections.selfhost.pi.plugins.module_utils import hugo_build, hugo_release, hugo_source
from ansible_collections.selfhost.pi.plugins.modules import hugo_site

from .gitrepo import GIT, Repo, git, isolate_git, needs_git
from .helpers import run_module

pytestmark = needs_git

ME = pwd.getpwuid(os.geteuid()).pw_name
HUGO_VERSION = "hugo v0.131.0+extended linux/amd64 BuildDate=unknown"

FAKE_HUGO = """#!%(python)s
# Stand-in for hugo (not installed on the test machine); see the test module's docstring.
import json, os, sys, time
args = sys.argv[1:]
if args == ["version"]:
    print(os.environ.get("FAKE_HUGO_VERSION", %(version)r))
    sys.exit(0)
with open(os.environ["CALL_LOG"], "a") as log:
    log.write("hugo " + json.dumps({"argv": args, "uid": os.geteuid(), "cwd": os.getcwd()}) + "\\n")
src, dest = args[args.index("--source") + 1], args[args.index("--destination") + 1]
if os.path.exists(os.path.join(src, "BROKEN")):
    print('ERROR template: single.html:3: unexpected "}"')
    sys.stderr.write("Error: error building site\\n")
    sys.exit(1)
if os.path.exists(os.path.join(src, "SLOW")):
    time.sleep(30)
if os.path.exists(os.path.join(src, "SWAP")):
    # The owner (whose hugo this is) swaps DEST/releases for a link to a directory
    # it prepared, holding a directory named like the build directory.
    victim = open(os.path.join(src, "SWAP")).read().strip()
    releases = os.path.dirname(dest)
    os.makedirs(os.path.join(victim, os.path.basename(dest)))
    os.rename(releases, releases + ".moved")
    os.symlink(victim, releases)
with open(os.path.join(src, "content.txt")) as handle:
    text = handle.read()
with open(os.path.join(dest, "index.html"), "w") as handle:
    handle.write(text)
"""

GIT_WRAPPER = """#!/bin/sh
# The real git, with its arguments logged.
printf 'git %%s\\n' "$*" >>"$CALL_LOG"
exec %(git)s "$@"
"""


class Site(object):
    """A remote repository, the tool wrappers and the module's arguments."""

    def __init__(self, tmp_path, monkeypatch):
        self.tmp = tmp_path
        self.gitconfig = isolate_git(monkeypatch, tmp_path)
        self.remote = Repo(tmp_path / "remote")
        self.first = self.remote.commit({"content.txt": "<h1>first</h1>\n"}, "first")
        bindir = tmp_path / "bin"
        bindir.mkdir()
        (bindir / "hugo").write_text(FAKE_HUGO % {"python": sys.executable, "version": HUGO_VERSION})
        (bindir / "git").write_text(GIT_WRAPPER % {"git": GIT})
        for tool in ("hugo", "git"):
            (bindir / tool).chmod(0o755)
        self.log = tmp_path / "calls.log"
        self.log.write_text("")
        monkeypatch.setenv("CALL_LOG", str(self.log))
        self.dest = tmp_path / "site"
        self.releases = self.dest / "releases"
        self.monkeypatch = monkeypatch
        self.warnings = []
        monkeypatch.setattr(basic.AnsibleModule, "warn", lambda module, msg: self.warnings.append(msg))

    def args(self, **extra):
        base = dict(dest=str(self.dest), repo=str(self.remote.path), version="main", owner=ME,
                    git_path=str(self.tmp / "bin" / "git"), hugo_path=str(self.tmp / "bin" / "hugo"),
                    base_url="https://blog.example.org/")
        base.update(extra)
        return base

    def run(self, check_mode=False, diff=False, **extra):
        return run_module(self.monkeypatch, hugo_site, self.args(**extra), check_mode=check_mode, diff=diff)

    def calls(self):
        """[(tool, subcommand or argv)] since the last reset."""
        result = []
        for line in self.log.read_text().splitlines():
            tool, rest = line.split(" ", 1)
            if tool == "hugo":
                result.append(("hugo", json.loads(rest)))
            else:
                words = rest.split()
                result.append(("git", words[2] if words[0] == "-C" else words[0]))
        return result

    def reset_calls(self):
        self.log.write_text("")

    def current(self):
        return os.readlink(str(self.dest / "current"))

    def served(self):
        return (self.dest / "current" / "index.html").read_text()

    def marker(self, release):
        return json.loads((self.releases / (os.path.basename(release) + ".json")).read_text())


@pytest.fixture
def site(tmp_path, monkeypatch):
    return Site(tmp_path, monkeypatch)


def test_first_run_clones_builds_and_switches(site):
    failed, result = site.run(minify=True, diff=True)
    assert not failed and result["changed"] and result["built"], result
    name = os.path.basename(result["release"])
    assert name.startswith(site.first[:12] + "-") and result["commit"] == site.first
    assert site.current() == "releases/" + name
    assert result["previous_release"] is None and result["releases"] == [result["release"]]
    assert site.served() == "<h1>first</h1>\n"
    marker = site.marker(result["release"])
    assert marker["commit"] == site.first and marker["options"]["minify"] is True
    assert marker["repo"] == str(site.remote.path) and marker["version"] == "main"
    assert marker["options"]["hugo"] == HUGO_VERSION and marker["activated_at"] >= marker["built_at"]
    build = [c for t, c in site.calls() if t == "hugo"][-1]["argv"]
    for flag in ("--cleanDestinationDir", "--noBuildLock", "--minify"):
        assert flag in build
    assert build[build.index("--source") + 1] == str(site.dest / "src")
    assert build[build.index("--cacheDir") + 1] == str(site.dest / ".cache")
    assert build[build.index("--baseURL") + 1] == "https://blog.example.org/"
    assert "--buildDrafts" not in build
    assert "commit %s" % site.first in result["diff"]["after"] and "(none)" in result["diff"]["before"]
    assert not [e for e in os.listdir(str(site.releases)) if e.startswith(".")]
    assert git(site.dest / "src", "rev-parse", "HEAD") == site.first
    modes = dict((p, stat.S_IMODE(os.stat(str(site.dest / p)).st_mode)) for p in (".", "releases", ".cache", "src"))
    assert modes == {".": 0o755, "releases": 0o755, ".cache": 0o700, "src": 0o755}


def test_release_name_and_marker_keys_are_stable(site):
    """Hosts converged by the previous version must stay changed=0: the options hash must not move."""
    dummy, result = site.run()
    options = {"base_url": "https://blog.example.org/", "environment": "production", "minify": False,
               "build_drafts": False, "extra_args": [], "hugo": HUGO_VERSION}
    blob = json.dumps(options, sort_keys=True, separators=(",", ":")).encode("utf-8")
    assert os.path.basename(result["release"]) == "%s-%s" % (site.first[:12], hashlib.sha256(blob).hexdigest()[:8])
    assert sorted(site.marker(result["release"])) == [
        "activated_at", "build_hash", "built_at", "commit", "options", "repo", "version"]


def test_second_run_is_a_cheap_noop(site):
    site.run()
    site.reset_calls()
    failed, result = site.run()
    assert not failed and not result["changed"] and not result["built"]
    assert result["previous_release"] == result["release"]
    assert site.calls() == [("git", "ls-remote")]     # and `hugo version`, which the stand-in does not log


def test_check_mode_on_fresh_dest_changes_nothing(site):
    failed, result = site.run(check_mode=True, diff=True)
    assert not failed and result["changed"] and not result["built"]
    assert result["commit"] == site.first
    assert not site.dest.exists()
    assert "(absent)" in result["diff"]["before"] and site.first in result["diff"]["after"]
    assert site.calls() == [("git", "ls-remote")]


def test_check_mode_reports_new_commit_without_fetching(site):
    site.run()
    before = site.current()
    second = site.remote.commit({"content.txt": "<h1>second</h1>\n"})
    site.reset_calls()
    failed, result = site.run(check_mode=True, diff=True)
    assert not failed and result["changed"] and result["commit"] == second
    assert site.current() == before
    assert ("git", "fetch") not in site.calls()
    assert site.first in result["diff"]["before"] and second in result["diff"]["after"]
    assert subprocess.run([GIT, "-C", str(site.dest / "src"), "cat-file", "-e", second]).returncode != 0


def test_new_commit_switches_and_prunes(site):
    dummy, first = site.run()
    second = site.remote.commit({"content.txt": "<h1>second</h1>\n"})
    failed, result = site.run(keep_releases=1)
    assert not failed and result["changed"] and result["built"]
    assert result["commit"] == second and result["previous_release"] == first["release"]
    assert site.current() == "releases/" + os.path.basename(result["release"])
    assert site.served() == "<h1>second</h1>\n"
    assert result["releases"] == [result["release"]]
    assert not os.path.exists(first["release"]) and not os.path.exists(first["release"] + ".json")
    assert ("git", "fetch") in site.calls()


def test_lower_keep_releases_prunes_without_other_change(site):
    site.run()
    site.remote.commit({"content.txt": "<h1>second</h1>\n"})
    dummy, second = site.run()
    assert len(second["releases"]) == 2
    failed, result = site.run(keep_releases=1)
    assert not failed and result["changed"] and not result["built"] and result["releases"] == [second["release"]]


def test_failed_build_keeps_current(site):
    dummy, first = site.run()
    broken = site.remote.commit({"BROKEN": "x"}, "broken")
    failed, result = site.run()
    assert failed
    assert broken in result["msg"] and "unexpected" in result["msg"] and "Error: error building site" in result["msg"]
    assert result["msg"].startswith("hugo build of commit %s failed (rc=1); current still points at %s:\n"
                                    % (broken, first["release"]))
    assert result["commit"] == broken and "Error: error building site" in result["stderr"]
    assert site.current() == "releases/" + os.path.basename(first["release"])
    assert sorted(os.listdir(str(site.releases))) == sorted(
        [os.path.basename(first["release"]), os.path.basename(first["release"]) + ".json"])


def test_build_timeout(site):
    site.remote.commit({"SLOW": "x"}, "slow")
    failed, result = site.run(timeout=1)
    assert failed and "timed out after 1 seconds (timeout); current still points at nothing" in result["msg"]
    assert not os.path.lexists(str(site.dest / "current"))
    assert not [e for e in os.listdir(str(site.releases)) if e.startswith(".tmp-")]


def test_option_change_rebuilds_same_commit(site):
    dummy, first = site.run()
    failed, result = site.run(build_drafts=True)
    assert not failed and result["built"] and result["commit"] == first["commit"] and result["release"] != first["release"]
    assert "--buildDrafts" in [c for t, c in site.calls() if t == "hugo"][-1]["argv"]


def test_hugo_upgrade_rebuilds(site, monkeypatch):
    dummy, first = site.run()
    monkeypatch.setenv("FAKE_HUGO_VERSION", "hugo v0.140.0 linux/amd64")
    failed, result = site.run()
    assert not failed and result["built"] and result["release"] != first["release"]


def test_switch_back_to_kept_release_does_not_build(site):
    dummy, first = site.run()
    site.remote.commit({"content.txt": "<h1>second</h1>\n"})
    site.run()
    site.reset_calls()
    failed, result = site.run(version=site.first)
    assert not failed and result["changed"] and not result["built"] and result["release"] == first["release"]
    assert site.current() == "releases/" + os.path.basename(first["release"])
    assert site.calls() == []          # a full SHA needs no ls-remote; the release exists


def test_short_sha_and_annotated_tag(site):
    site.remote.tag("v1")
    site.remote.commit({"content.txt": "<h1>second</h1>\n"})
    dummy, result = site.run(version="v1")
    assert result["commit"] == site.first and result["built"]
    dummy, result = site.run(version=site.first[:7])
    assert result["commit"] == site.first and not result["changed"]


def test_short_sha_unknown_to_the_clone_is_fetched(site):
    site.run()
    third = site.remote.commit({"content.txt": "<h1>third</h1>\n"})
    site.remote.commit({"content.txt": "<h1>fourth</h1>\n"})
    failed, result = site.run(check_mode=True, diff=True, version=third[:10])
    assert not failed and result["changed"] and result["commit"] is None
    assert "known after fetching" in result["diff"]["after"]
    failed, result = site.run(version=third[:10])
    assert not failed and result["commit"] == third and site.served() == "<h1>third</h1>\n"


def test_branch_wins_over_tag_and_full_refs(site):
    site.remote.tag("main-tag", annotated=False)
    second = site.remote.commit({"content.txt": "<h1>second</h1>\n"})
    site.remote.branch("release", site.first)
    dummy, result = site.run(version="release")
    assert result["commit"] == site.first
    dummy, result = site.run(version="refs/heads/main")
    assert result["commit"] == second
    dummy, result = site.run(version="HEAD")
    assert result["commit"] == second and not result["changed"]


def test_unpeeled_tag_of_a_bundle_is_peeled_in_the_clone(site):
    """git bundles list tags without the peeled ^{} line: the tag is peeled in the clone."""
    site.remote.tag("v1")
    site.remote.commit({"content.txt": "<h1>second</h1>\n"})
    bundle = str(site.tmp / "site.bundle")
    git(site.remote.path, "bundle", "create", "-q", bundle, "--all")
    assert "^{}" not in git(site.tmp, "ls-remote", bundle)
    dummy, result = site.run(repo=bundle, version="v1")
    assert result["commit"] == site.first and result["built"]
    dummy, result = site.run(repo=bundle, version="v1")
    assert not result["changed"]


def test_repo_change_updates_the_clone(site):
    site.run()
    other = Repo(site.tmp / "other")
    moved = other.commit({"content.txt": "<h1>other</h1>\n"})
    failed, result = site.run(repo=str(other.path))
    assert not failed and result["commit"] == moved and site.served() == "<h1>other</h1>\n"
    assert git(site.dest / "src", "config", "--get", "remote.origin.url") == str(other.path)


def test_local_changes_in_src_are_discarded(site):
    site.run()
    (site.dest / "src" / "content.txt").write_text("tampered\n")
    (site.dest / "src" / "untracked.txt").write_text("junk\n")
    second = site.remote.commit({"content.txt": "<h1>second</h1>\n"})
    failed, result = site.run()
    assert not failed and result["commit"] == second and site.served() == "<h1>second</h1>\n"
    assert not (site.dest / "src" / "untracked.txt").exists()


def test_src_without_a_clone_is_replaced(site):
    (site.dest / "src").mkdir(parents=True)
    (site.dest / "src" / "leftover").write_text("x")
    failed, result = site.run()
    assert not failed and result["built"] and not (site.dest / "src" / "leftover").exists()


def test_unknown_version_and_unreadable_repo(site):
    failed, result = site.run(version="nope")
    assert failed and result["msg"] == "version: 'nope' is not a branch or tag of repo %s" % site.remote.path
    failed, result = site.run(repo=str(site.tmp / "nonexistent.git"))
    assert failed and result["msg"].startswith("repo: cannot read %s as user %s: " % (site.tmp / "nonexistent.git", ME))
    assert not site.dest.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the repository to another user")
def test_repository_of_another_user_explains_safe_directory(site):
    for root, dirs, files in os.walk(str(site.remote.path)):
        for name in dirs + files + ["."]:
            os.lchown(os.path.join(root, name), 65534, 65534)
    failed, result = site.run()
    assert failed and "dubious ownership" in result["msg"]
    assert "add it to safe.directory in /etc/gitconfig or %s's ~/.gitconfig" % ME in result["msg"]
    site.gitconfig.write_text("[safe]\n\tdirectory = *\n")
    failed, result = site.run()
    assert not failed and result["built"]


@pytest.mark.parametrize("extra, field", [
    (dict(owner="no-such-user-xyz"), "owner:"),
    (dict(group="no-such-group-xyz"), "group:"),
    (dict(dest="relative/site"), "dest:"),
    (dict(keep_releases=0), "keep_releases:"),
    (dict(timeout=0), "timeout:"),
    (dict(extra_args=["--buildFuture", "public"]), "extra_args: 'public'"),
    (dict(extra_args=["--destination=/tmp/x"]), "extra_args: '--destination=/tmp/x'"),
    (dict(version="--upload-pack=evil"), "version:"),
    (dict(repo="--upload-pack=evil"), "repo:"),
    (dict(base_url=" "), "base_url:"),
    (dict(environment="-x"), "environment:"),
])
def test_bad_input_fails_before_anything_runs(site, extra, field):
    failed, result = site.run(**extra)
    assert failed and field in result["msg"]
    assert site.calls() == [] and not site.dest.exists()


def test_current_must_be_a_symlink(site):
    (site.dest / "current").mkdir(parents=True)
    failed, result = site.run()
    assert failed and result["msg"] == "dest: %s exists and is not a symlink; move it away" % (site.dest / "current")


def test_dest_through_a_symlink_is_refused_before_anything_changes(site):
    real = site.tmp / "real"
    real.mkdir()
    os.symlink(str(real), str(site.tmp / "link"))
    failed, result = site.run(dest=str(site.tmp / "link" / "site"))
    assert failed and "is (or passes through) a symlink" in result["msg"]
    assert os.listdir(str(real)) == []


def test_releases_as_a_symlink_is_refused(site):
    outside = site.tmp / "outside"
    outside.mkdir()
    (outside / (".tmp-" + "a" * 8)).mkdir()
    site.dest.mkdir()
    os.symlink(str(outside), str(site.releases))
    failed, result = site.run()
    assert failed and result["msg"] == "dest: %s is (or passes through) a symlink; refusing to continue" % site.releases
    assert os.listdir(str(outside)) == [".tmp-" + "a" * 8]


def test_owner_swapping_releases_during_the_build_cannot_move_roots_writes(site):
    """hugo runs as the owner, between root's steps: a link put there then is refused, never followed.

    Before the release store worked through directory descriptors, root renamed
    the build directory by path, through the owner's new link, into the
    directory the link pointed at.
    """
    dummy, first = site.run()
    victim = site.tmp / "victim"
    victim.mkdir()
    site.remote.commit({"SWAP": str(victim) + "\n"}, "swap")
    failed, result = site.run()
    assert failed and "symlink" in result["msg"], result
    leftovers = os.listdir(str(victim))
    assert len(leftovers) == 1 and leftovers[0].startswith(".tmp-"), leftovers   # only what the owner made
    assert os.listdir(str(victim / leftovers[0])) == ["index.html"]            # hugo's own output
    assert os.readlink(str(site.dest / "current")) == "releases/" + os.path.basename(first["release"])


def test_links_in_releases_are_removed_not_followed(site):
    site.run()
    outside = site.tmp / "outside"
    (outside / "keep").mkdir(parents=True)
    (outside / "keep" / "file").write_text("precious\n")
    os.symlink(str(outside), str(site.releases / ".tmp-linked"))
    os.symlink(str(outside / "keep"), str(site.releases / ("c" * 12 + "-" + "d" * 8)))
    fifo = site.releases / ".tmp-fifo"
    os.mkfifo(str(fifo))
    failed, result = site.run()
    assert not failed and result["changed"]
    assert not os.path.lexists(str(site.releases / ".tmp-linked")) and not os.path.lexists(str(fifo))
    assert (outside / "keep" / "file").read_text() == "precious\n"


def test_leftovers_of_crashed_builds_are_removed(site):
    site.run()
    (site.releases / ".tmp-crashed" / "posts").mkdir(parents=True)
    (site.releases / ".tmp-crashed" / "posts" / "index.html").write_text("x")
    (site.releases / ("a" * 12 + "-" + "b" * 8)).mkdir()      # no marker: incomplete
    (site.releases / ("e" * 12 + "-" + "f" * 8 + ".json")).write_text("{}")   # orphan marker
    failed, result = site.run(check_mode=True)
    assert not failed and result["changed"] and (site.releases / ".tmp-crashed").exists()
    failed, result = site.run()
    assert result["changed"] and not result["built"]
    assert sorted(os.listdir(str(site.releases))) == sorted(
        [os.path.basename(result["release"]), os.path.basename(result["release"]) + ".json"])


def test_missing_hugo_warns_in_check_mode_and_fails_otherwise(site):
    failed, result = site.run(check_mode=True, hugo_path="/nonexistent/hugo")
    assert not failed and result["changed"]
    assert site.warnings == ["hugo_path: /nonexistent/hugo is not there yet; assuming the site would be built"]
    failed, result = site.run(hugo_path="/nonexistent/hugo")
    assert failed and result["msg"] == "hugo_path: /nonexistent/hugo not found or not executable"


def test_credentials_in_the_repo_url_are_never_shown(site):
    """Finding 10: a repo URL with a password or token reaches no message, marker or warning."""
    url = "https://deploy:s3cret-t0ken@git.example.invalid/me/blog.git"
    # git rewrites the URL to the local repository, so clone and fetch work offline.
    site.gitconfig.write_text('[url "%s"]\n\tinsteadOf = %s\n' % (site.remote.path, url))
    failed, result = site.run(repo=url, diff=True)
    assert not failed and result["built"]
    assert site.marker(result["release"])["repo"] == "https://deploy:***@git.example.invalid/me/blog.git"
    assert site.warnings and "https://deploy:***@git.example.invalid" in site.warnings[0]
    assert "credential helper" in site.warnings[0]
    failed, bad = site.run(repo=url, version="nope")
    assert failed and "https://deploy:***@git.example.invalid/me/blog.git" in bad["msg"]
    shown = json.dumps([result, bad, site.warnings]) + (site.releases / (
        os.path.basename(result["release"]) + ".json")).read_text()
    assert "s3cret" not in shown


def test_credentials_are_masked_in_git_errors_and_marked_no_log(site, monkeypatch):
    url = "https://deploy:s3cret-t0ken@127.0.0.1:9/blog.git"     # discard port: nothing listens
    added = []
    real_init = basic.AnsibleModule.__init__

    def init(module, *args, **kwargs):
        real_init(module, *args, **kwargs)
        added.append(module.no_log_values)
    monkeypatch.setattr(basic.AnsibleModule, "__init__", init)
    failed, result = site.run(repo=url, timeout=20)
    assert failed and result["msg"].startswith("repo: cannot read https://deploy:***@127.0.0.1:9/blog.git")
    assert "s3cret" not in result["msg"]
    assert "s3cret-t0ken" in added[0]


@pytest.mark.parametrize("url, shown, secret", [
    ("https://user:pw@host/x.git", "https://user:***@host/x.git", "pw"),
    ("https://TOKEN@github.com/x.git", "https://***@github.com/x.git", None),
    ("https://user:p@ss@host/x.git", "https://user:***@host/x.git", "p@ss"),
    ("ssh://git@host:22/x.git", "ssh://git@host:22/x.git", None),
    ("git@host:me/x.git", "git@host:me/x.git", None),
    ("/srv/git/blog.git", "/srv/git/blog.git", None),
    ("fatal: unable to access 'https://u:pw@h/r/': refused", "fatal: unable to access 'https://u:***@h/r/': refused",
     "pw"),
])
def test_mask_credentials(url, shown, secret):
    assert hugo_source.mask_credentials(url) == shown
    assert hugo_source.url_secret(url) == secret


class RecordingHost(host_utils.Host):
    def __init__(self):
        self.argv = None

    def _run(self, argv, data=None, cwd=None, env=None):
        self.argv = argv
        return 0, "", ""

    def which(self, name, required=False):
        return "/usr/bin/" + name


def test_git_and_hugo_run_as_the_owner_through_runuser(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    host = RecordingHost()
    hugo_utils.AsOwner(host, "blog").run(["/usr/bin/hugo", "version"], timeout=9)
    assert host.argv == ["/usr/bin/runuser", "-u", "blog", "--", "env", "GIT_TERMINAL_PROMPT=0", "LC_ALL=C",
                         "/usr/bin/timeout", "--kill-after=10", "9", "/usr/bin/hugo", "version"]
    monkeypatch.setattr(os, "geteuid", lambda: 2000)
    hugo_utils.AsOwner(host, "blog").run(["/usr/bin/git", "status"])
    assert host.argv == ["/usr/bin/git", "status"]


def test_build_identity_helpers():
    options = hugo_build.build_options(dict(base_url=None, environment="production", minify=0, build_drafts=1,
                                            extra_args=("--buildFuture",)), "hugo v1")
    assert options == {"base_url": None, "environment": "production", "minify": False, "build_drafts": True,
                       "extra_args": ["--buildFuture"], "hugo": "hugo v1"}
    assert hugo_build.release_name("ABCDEF0123456789", "01234567") == "abcdef012345-01234567"


def test_remove_at_handles_any_entry_without_following_links(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("x")
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "f").write_text("x")
    os.symlink(str(outside), str(tree / "a" / "link"))
    os.mkfifo(str(tree / "a" / "fifo"))
    fd = os.open(str(tmp_path), os.O_RDONLY)
    try:
        assert hugo_release.remove_at(fd, "tree")
        assert not hugo_release.remove_at(fd, "tree")
    finally:
        os.close(fd)
    assert not tree.exists() and (outside / "precious").exists()
