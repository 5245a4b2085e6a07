"""Unit tests for selfhost.pi.hugo_site with git and hugo faked at run_command."""
import json
import os
import pwd

import pytest
from ansible.module_utils import basic

from ansible_collections.selfhost.pi.plugins.module_utils import hugo as hugo_utils
from ansible_collections.selfhost.pi.plugins.modules import hugo_site

from .helpers import run_module

ME = pwd.getpwuid(os.geteuid()).pw_name
SHA1 = "1111111111111111111111111111111111111111"
SHA2 = "2222222222222222222222222222222222222222"
TAG_OBJ = "7777777777777777777777777777777777777777"


class FakeTools(object):
    """A remote repository, a local clone and hugo, as seen through run_command."""

    def __init__(self):
        self.remote = {"HEAD": SHA1, "refs/heads/main": SHA1}
        self.tag_objects = {}     # annotated tag object -> commit
        self.local = set()        # commits in the clone
        self.calls = []
        self.build_rc = 0
        self.timeout_build = False
        self.checked_out = None

    def __call__(self, args, cwd=None, environ_update=None, **kwargs):
        args = list(args)
        if os.path.basename(args[0]) == "timeout":
            args = args[3:]
        tool = os.path.basename(args[0])
        self.calls.append([tool] + args[1:])
        if tool == "hugo":
            return self.hugo(args[1:])
        return self.git(args[1:])

    def hugo(self, args):
        if args == ["version"]:
            return 0, "hugo v0.131.0+extended linux/amd64 BuildDate=unknown\n", ""
        if self.timeout_build:
            return 124, "", ""
        if self.build_rc:
            return self.build_rc, "ERROR template: single.html:3: unexpected \"}\"\n", "Error: error building site\n"
        dest = args[args.index("--destination") + 1]
        with open(os.path.join(dest, "index.html"), "w") as handle:
            handle.write("<h1>%s</h1>\n" % self.checked_out)
        return 0, "Total in 5 ms\n", ""

    def git(self, args):
        if args[0] == "ls-remote":
            patterns = args[2:]
            out = "".join("%s\t%s\n" % (sha, ref) for ref, sha in sorted(self.remote.items())
                          if any(ref == p or ref.endswith("/" + p) for p in patterns))
            return (0, out, "") if args[1] != "/nonexistent.git" else (128, "", "fatal: not a git repository\n")
        assert args[0] == "-C"
        src, sub = args[1], args[2:]
        if sub[0] == "clone":
            os.mkdir(os.path.join(src, ".git"))
            self.local |= set(self.remote.values()) | set(self.tag_objects.values())
        elif sub[0] == "fetch":
            self.local |= set(self.remote.values()) | set(self.tag_objects.values())
        elif sub[0] == "rev-parse":
            spec = sub[-1][:-len("^{commit}")]
            spec = self.tag_objects.get(spec, spec)
            found = [c for c in self.local if c.startswith(spec)]
            return (0, found[0] + "\n", "") if len(found) == 1 else (1, "", "")
        elif sub[0] == "checkout":
            self.checked_out = sub[-1]
        elif sub[:2] == ["config", "--get"]:
            return 0, "/srv/git/blog.git\n", ""
        return 0, "", ""

    def commands(self, tool=None):
        return [c for c in self.calls if tool is None or c[0] == tool]


@pytest.fixture
def tools(monkeypatch):
    fake = FakeTools()
    monkeypatch.setattr(basic.AnsibleModule, "run_command", fake)
    return fake


def args(tmp_path, **extra):
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    for tool in ("git", "hugo"):
        (bindir / tool).write_text("#!/bin/false\n")
        (bindir / tool).chmod(0o755)
    base = dict(dest=str(tmp_path / "site"), repo="/srv/git/blog.git", version="main", owner=ME,
                git_path=str(bindir / "git"), hugo_path=str(bindir / "hugo"), base_url="https://blog.example.org/")
    base.update(extra)
    return base


def current_target(tmp_path):
    return os.readlink(str(tmp_path / "site" / "current"))


def test_first_run_builds_and_switches(monkeypatch, tmp_path, tools):
    failed, result = run_module(monkeypatch, hugo_site, args(tmp_path, minify=True), diff=True)
    assert not failed and result["changed"] and result["built"]
    name = os.path.basename(result["release"])
    assert name.startswith(SHA1[:12] + "-") and result["commit"] == SHA1
    assert current_target(tmp_path) == "releases/" + name
    assert result["previous_release"] is None
    assert result["releases"] == [result["release"]]
    assert (tmp_path / "site" / "current" / "index.html").read_text() == "<h1>%s</h1>\n" % SHA1
    marker = json.loads((tmp_path / "site" / "releases" / (name + ".json")).read_text())
    assert marker["commit"] == SHA1 and marker["options"]["minify"] is True
    build = tools.commands("hugo")[-1]
    for flag in ("--cleanDestinationDir", "--noBuildLock", "--minify"):
        assert flag in build
    assert build[build.index("--cacheDir") + 1] == str(tmp_path / "site" / ".cache")
    assert build[build.index("--baseURL") + 1] == "https://blog.example.org/"
    assert "--buildDrafts" not in build
    assert "commit %s" % SHA1 in result["diff"]["after"] and "(none)" in result["diff"]["before"]
    assert not [e for e in os.listdir(str(tmp_path / "site" / "releases")) if e.startswith(".tmp-")]


def test_second_run_is_a_cheap_noop(monkeypatch, tmp_path, tools):
    run_module(monkeypatch, hugo_site, args(tmp_path))
    tools.calls = []
    failed, result = run_module(monkeypatch, hugo_site, args(tmp_path))
    assert not failed and not result["changed"] and not result["built"]
    assert result["previous_release"] == result["release"]
    assert [c[:2] for c in tools.calls] == [["hugo", "version"], ["git", "ls-remote"]]


def test_check_mode_on_fresh_dest_changes_nothing(monkeypatch, tmp_path, tools):
    failed, result = run_module(monkeypatch, hugo_site, args(tmp_path), check_mode=True, diff=True)
    assert not failed and result["changed"] and not result["built"]
    assert result["commit"] == SHA1
    assert not (tmp_path / "site").exists()
    assert "(absent)" in result["diff"]["before"] and SHA1 in result["diff"]["after"]
    assert all(c[1] in ("version", "ls-remote") for c in tools.calls)


def test_check_mode_reports_new_commit_without_fetching(monkeypatch, tmp_path, tools):
    run_module(monkeypatch, hugo_site, args(tmp_path))
    before = current_target(tmp_path)
    tools.remote["refs/heads/main"] = SHA2
    tools.calls = []
    failed, result = run_module(monkeypatch, hugo_site, args(tmp_path), check_mode=True, diff=True)
    assert result["changed"] and result["commit"] == SHA2
    assert current_target(tmp_path) == before
    assert not [c for c in tools.calls if c[0] == "git" and "fetch" in c]
    assert SHA1 in result["diff"]["before"] and SHA2 in result["diff"]["after"]


def test_new_commit_switches_and_prunes(monkeypatch, tmp_path, tools):
    dummy, first = run_module(monkeypatch, hugo_site, args(tmp_path))
    tools.remote["refs/heads/main"] = SHA2
    failed, result = run_module(monkeypatch, hugo_site, args(tmp_path, keep_releases=1))
    assert not failed and result["changed"] and result["built"]
    assert result["previous_release"] == first["release"]
    assert current_target(tmp_path) == "releases/" + os.path.basename(result["release"])
    assert result["releases"] == [result["release"]]
    assert not os.path.exists(first["release"]) and not os.path.exists(first["release"] + ".json")
    assert tools.checked_out == SHA2


def test_lower_keep_releases_prunes_without_other_change(monkeypatch, tmp_path, tools):
    run_module(monkeypatch, hugo_site, args(tmp_path))
    tools.remote["refs/heads/main"] = SHA2
    dummy, second = run_module(monkeypatch, hugo_site, args(tmp_path))
    assert len(second["releases"]) == 2
    failed, result = run_module(monkeypatch, hugo_site, args(tmp_path, keep_releases=1))
    assert result["changed"] and not result["built"] and result["releases"] == [second["release"]]


def test_failed_build_keeps_current(monkeypatch, tmp_path, tools):
    dummy, first = run_module(monkeypatch, hugo_site, args(tmp_path))
    tools.remote["refs/heads/main"] = SHA2
    tools.build_rc = 1
    failed, result = run_module(monkeypatch, hugo_site, args(tmp_path))
    assert failed
    assert SHA2 in result["msg"] and "unexpected" in result["msg"] and "Error: error building site" in result["msg"]
    assert result["commit"] == SHA2
    assert current_target(tmp_path) == "releases/" + os.path.basename(first["release"])
    assert sorted(os.listdir(str(tmp_path / "site" / "releases"))) == sorted(
        [os.path.basename(first["release"]), os.path.basename(first["release"]) + ".json"])


def test_build_timeout(monkeypatch, tmp_path, tools):
    tools.timeout_build = True
    failed, result = run_module(monkeypatch, hugo_site, args(tmp_path, timeout=5))
    assert failed and "timed out after 5 seconds" in result["msg"]
    assert not (tmp_path / "site" / "current").exists()


def test_option_change_rebuilds_same_commit(monkeypatch, tmp_path, tools):
    dummy, first = run_module(monkeypatch, hugo_site, args(tmp_path))
    failed, result = run_module(monkeypatch, hugo_site, args(tmp_path, build_drafts=True))
    assert result["built"] and result["commit"] == first["commit"] and result["release"] != first["release"]
    assert "--buildDrafts" in tools.commands("hugo")[-1]


def test_switch_back_to_kept_release_does_not_build(monkeypatch, tmp_path, tools):
    dummy, first = run_module(monkeypatch, hugo_site, args(tmp_path))
    tools.remote["refs/heads/main"] = SHA2
    run_module(monkeypatch, hugo_site, args(tmp_path))
    failed, result = run_module(monkeypatch, hugo_site, args(tmp_path, version=SHA1))
    assert result["changed"] and not result["built"] and result["release"] == first["release"]
    assert current_target(tmp_path) == "releases/" + os.path.basename(first["release"])


def test_short_sha_and_annotated_tag(monkeypatch, tmp_path, tools):
    tools.remote["refs/tags/v1"] = TAG_OBJ
    tools.remote["refs/tags/v1^{}"] = SHA1
    dummy, result = run_module(monkeypatch, hugo_site, args(tmp_path, version="v1"))
    assert result["commit"] == SHA1
    dummy, result = run_module(monkeypatch, hugo_site, args(tmp_path, version=SHA1[:7]))
    assert result["commit"] == SHA1 and not result["changed"]


def test_unpeeled_tag_is_peeled_in_the_clone(monkeypatch, tmp_path, tools):
    # git bundles list tags without the peeled ^{} line.
    tools.remote["refs/tags/v1"] = TAG_OBJ
    tools.tag_objects[TAG_OBJ] = SHA1
    dummy, result = run_module(monkeypatch, hugo_site, args(tmp_path, version="v1"))
    assert result["commit"] == SHA1 and result["built"]
    dummy, result = run_module(monkeypatch, hugo_site, args(tmp_path, version="v1"))
    assert not result["changed"]


def test_unknown_version_and_unreadable_repo(monkeypatch, tmp_path, tools):
    failed, result = run_module(monkeypatch, hugo_site, args(tmp_path, version="nope"))
    assert failed and result["msg"].startswith("version: 'nope'")
    failed, result = run_module(monkeypatch, hugo_site, args(tmp_path, repo="/nonexistent.git"))
    assert failed and result["msg"].startswith("repo: cannot read /nonexistent.git")
    assert not (tmp_path / "site").exists()


@pytest.mark.parametrize("extra, field", [
    (dict(owner="no-such-user-xyz"), "owner:"),
    (dict(group="no-such-group-xyz"), "group:"),
    (dict(dest="relative/site"), "dest:"),
    (dict(keep_releases=0), "keep_releases:"),
    (dict(timeout=0), "timeout:"),
    (dict(extra_args=["--buildFuture", "public"]), "extra_args: 'public'"),
    (dict(extra_args=["--destination=/tmp/x"]), "extra_args: '--destination=/tmp/x'"),
    (dict(version="--upload-pack=evil"), "version:"),
    (dict(base_url=" "), "base_url:"),
])
def test_bad_input_fails_before_anything_runs(monkeypatch, tmp_path, tools, extra, field):
    failed, result = run_module(monkeypatch, hugo_site, args(tmp_path, **extra))
    assert failed and field in result["msg"]
    assert tools.calls == [] and not (tmp_path / "site").exists()


def test_current_must_be_a_symlink(monkeypatch, tmp_path, tools):
    (tmp_path / "site" / "current").mkdir(parents=True)
    failed, result = run_module(monkeypatch, hugo_site, args(tmp_path))
    assert failed and "is not a symlink" in result["msg"]


def test_leftovers_of_crashed_builds_are_removed(monkeypatch, tmp_path, tools):
    run_module(monkeypatch, hugo_site, args(tmp_path))
    releases = tmp_path / "site" / "releases"
    (releases / ".tmp-crashed").mkdir()
    (releases / ("a" * 12 + "-" + "b" * 8)).mkdir()      # no marker: incomplete
    failed, result = run_module(monkeypatch, hugo_site, args(tmp_path), check_mode=True)
    assert result["changed"] and (releases / ".tmp-crashed").exists()
    failed, result = run_module(monkeypatch, hugo_site, args(tmp_path))
    assert result["changed"] and not result["built"]
    assert not (releases / ".tmp-crashed").exists() and not (releases / ("a" * 12 + "-" + "b" * 8)).exists()


def test_missing_hugo_warns_in_check_mode_and_fails_otherwise(monkeypatch, tmp_path, tools):
    failed, result = run_module(monkeypatch, hugo_site, args(tmp_path, hugo_path="/nonexistent/hugo"),
                                check_mode=True)
    assert not failed and result["changed"]
    failed, result = run_module(monkeypatch, hugo_site, args(tmp_path, hugo_path="/nonexistent/hugo"))
    assert failed and result["msg"].startswith("hugo_path:")


def test_runner_drops_privileges_with_runuser():
    class Module(object):
        def __init__(self):
            self.cmd = None

        def get_bin_path(self, name, required=False):
            return "/usr/bin/" + name

        def run_command(self, cmd, **kwargs):
            self.cmd = cmd
            return 0, "", ""

    module = Module()
    runner = hugo_utils.Runner(module, "blog", os.geteuid() + 1)
    runner.run(["/usr/bin/hugo", "version"], timeout=9)
    assert module.cmd == ["/usr/bin/runuser", "-u", "blog", "--", "/usr/bin/timeout", "--kill-after=10", "9",
                          "/usr/bin/hugo", "version"]
    runner = hugo_utils.Runner(module, ME, os.geteuid())
    runner.run(["/usr/bin/git", "status"])
    assert module.cmd == ["/usr/bin/git", "status"]
