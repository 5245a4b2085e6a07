"""Unit tests for selfhost.pi.git_bundle, with the real git in a temporary directory."""
import os
import stat
import subprocess

import pytest

from ansible_collections.selfhost.pi.plugins.modules import git_bundle

from .gitrepo import GIT, git, isolate_git, needs_git
from .helpers import run_module

pytestmark = needs_git

EXCLUDE = ["/public/", "/resources/_gen/", ".hugo_build.lock"]

# The shell step of roles/blog/tasks/bundle.yml this module replaced, verbatim
# (with the `environment:` it ran with): the module must make the same bytes.
OLD_STEP = """git -c init.defaultBranch=main init -q --bare "$1/site.git"
printf '%s\\n' /public/ /resources/_gen/ .hugo_build.lock >"$1/site.git/info/exclude"
export GIT_DIR="$1/site.git" GIT_WORK_TREE="$2" GIT_INDEX_FILE="$1/index"
git add -A .
git -c pack.threads=1 commit -q -m "Site from $3" --allow-empty
git -c pack.threads=1 bundle create -q "$1/site.bundle" main
"""
OLD_ENV = {
    "GIT_AUTHOR_NAME": "selfhost.pi",
    "GIT_AUTHOR_EMAIL": "selfhost@localhost",
    "GIT_AUTHOR_DATE": "2000-01-01T00:00:00Z",
    "GIT_COMMITTER_NAME": "selfhost.pi",
    "GIT_COMMITTER_EMAIL": "selfhost@localhost",
    "GIT_COMMITTER_DATE": "2000-01-01T00:00:00Z",
}


@pytest.fixture
def env(tmp_path, monkeypatch):
    isolate_git(monkeypatch, tmp_path)
    src = tmp_path / "blog"
    for name, text in {
        "hugo.toml": 'baseURL = "https://blog.example.org/"\ntitle = "Blog"\n',
        "content/posts/hello.md": "---\ntitle: Hello\n---\nHello.\n",
        "layouts/index.html": "<h1>{{ .Site.Title }}</h1>\n",
        "static/run.sh": "#!/bin/sh\n",
        ".gitignore": "*.swp\n",
        "public/index.html": "built output\n",
        "resources/_gen/images/x.png": "generated\n",
        ".hugo_build.lock": "",
        "content/posts/.hello.md.swp": "editor junk\n",
    }.items():
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (src / "static" / "run.sh").chmod(0o755)
    out = tmp_path / "out"
    out.mkdir()
    return src, out, monkeypatch


def args(src, dest, **extra):
    base = dict(src=str(src), dest=str(dest), commit_message="Site from blog", exclude=EXCLUDE)
    base.update(extra)
    return base


def old_bundle(tmp_path, src):
    scratch = tmp_path / "old-scratch"
    scratch.mkdir()
    subprocess.run(["sh", "-ec", OLD_STEP, "blog-bundle", str(scratch), str(src), os.path.basename(str(src))],
                   cwd=str(src), env=dict(os.environ, **OLD_ENV), check=True)
    return (scratch / "site.bundle").read_bytes()


def files_of(tmp_path, bundle, name="clone"):
    clone = tmp_path / name
    git(tmp_path, "clone", "-q", "-b", "main", str(bundle), str(clone))
    return sorted(git(clone, "ls-files").splitlines()), clone


def test_same_bytes_as_the_shell_step_it_replaced(env, tmp_path):
    src, out, monkeypatch = env
    failed, result = run_module(monkeypatch, git_bundle, args(src, out / "site.bundle"))
    assert not failed and result["changed"], result
    assert (out / "site.bundle").read_bytes() == old_bundle(tmp_path, src)


def test_bundle_holds_one_commit_with_fixed_identity_and_date(env, tmp_path):
    src, out, monkeypatch = env
    dummy, result = run_module(monkeypatch, git_bundle, args(src, out / "site.bundle"))
    files, clone = files_of(tmp_path, out / "site.bundle")
    assert files == [".gitignore", "content/posts/hello.md", "hugo.toml", "layouts/index.html", "static/run.sh"]
    assert git(clone, "log", "--format=%H|%an <%ae>|%aI|%cn|%cI|%s") == (
        "%s|selfhost.pi <selfhost@localhost>|2000-01-01T00:00:00+00:00|selfhost.pi|2000-01-01T00:00:00+00:00|Site from blog"
        % result["commit"])
    assert git(clone, "ls-files", "-s", "static/run.sh").startswith("100755 ")
    assert result["size"] == os.path.getsize(str(out / "site.bundle")) and len(result["checksum"]) == 40
    assert stat.S_IMODE(os.stat(str(out / "site.bundle")).st_mode) == 0o644


def test_unchanged_source_is_not_a_change(env):
    src, out, monkeypatch = env
    dummy, first = run_module(monkeypatch, git_bundle, args(src, out / "site.bundle"))
    before = os.stat(str(out / "site.bundle"))
    (src / "public" / "index.html").write_text("rebuilt output\n")      # excluded: no change
    failed, second = run_module(monkeypatch, git_bundle, args(src, out / "site.bundle"), diff=True)
    assert not failed and not second["changed"]
    assert second["commit"] == first["commit"] and second["checksum"] == first["checksum"]
    assert os.stat(str(out / "site.bundle")).st_ino == before.st_ino      # not rewritten
    assert second["diff"]["before"] == second["diff"]["after"]


def test_a_changed_file_makes_a_new_commit(env):
    src, out, monkeypatch = env
    dummy, first = run_module(monkeypatch, git_bundle, args(src, out / "site.bundle"))
    (src / "content" / "posts" / "hello.md").write_text("---\ntitle: Hello\n---\nHello again.\n")
    failed, second = run_module(monkeypatch, git_bundle, args(src, out / "site.bundle"), diff=True)
    assert not failed and second["changed"] and second["commit"] != first["commit"]
    assert second["diff"]["before"] == "refs/heads/main: %s\n" % first["commit"]
    assert second["diff"]["after"] == "refs/heads/main: %s\n" % second["commit"]
    assert git(out, "bundle", "list-heads", str(out / "site.bundle")).split()[0] == second["commit"]


def test_check_mode_compares_without_writing(env):
    src, out, monkeypatch = env
    failed, result = run_module(monkeypatch, git_bundle, args(src, out / "site.bundle"), check_mode=True)
    assert not failed and result["changed"] and len(result["commit"]) == 40
    assert os.listdir(str(out)) == []
    run_module(monkeypatch, git_bundle, args(src, out / "site.bundle"))
    failed, result = run_module(monkeypatch, git_bundle, args(src, out / "site.bundle"), check_mode=True)
    assert not failed and not result["changed"]
    (src / "hugo.toml").write_text('title = "Other"\n')
    data = (out / "site.bundle").read_bytes()
    failed, result = run_module(monkeypatch, git_bundle, args(src, out / "site.bundle"), check_mode=True)
    assert result["changed"] and (out / "site.bundle").read_bytes() == data


def test_message_and_branch_are_part_of_the_bundle(env, tmp_path):
    src, out, monkeypatch = env
    dummy, first = run_module(monkeypatch, git_bundle, args(src, out / "a.bundle"))
    dummy, other = run_module(monkeypatch, git_bundle, args(src, out / "b.bundle", commit_message="Site from elsewhere"))
    assert other["commit"] != first["commit"]
    dummy, result = run_module(monkeypatch, git_bundle, args(src, out / "c.bundle", branch="site"))
    assert result["commit"] == first["commit"]
    assert git(out, "bundle", "list-heads", str(out / "c.bundle")) == "%s refs/heads/site" % first["commit"]


def test_the_users_signing_setting_cannot_make_every_run_differ(env, tmp_path):
    src, out, monkeypatch = env
    (tmp_path / "gitconfig").write_text("[commit]\n\tgpgsign = true\n[gpg]\n\tprogram = /bin/false\n")
    failed, result = run_module(monkeypatch, git_bundle, args(src, out / "site.bundle"))
    assert not failed, result


@pytest.mark.parametrize("extra, field", [
    (dict(src="/nonexistent/blog"), "src: /nonexistent/blog is not a directory"),
    (dict(dest="/nonexistent/dir/site.bundle"), "dest: directory /nonexistent/dir does not exist"),
    (dict(branch="bad..name"), "branch: 'bad..name' is not a valid git branch name"),
    (dict(branch="-x"), "branch: '-x' is not a valid git branch name"),
    (dict(commit_message="two\nlines"), "commit_message: must be one non-empty line"),
    (dict(exclude=[""]), "exclude: '' is not a gitignore pattern"),
    (dict(git_path="/nonexistent/git"), "git_path: /nonexistent/git not found or not executable"),
])
def test_bad_input_fails_before_writing(env, extra, field):
    src, out, monkeypatch = env
    given = args(src, out / "site.bundle")
    given.update(extra)
    failed, result = run_module(monkeypatch, git_bundle, given)
    assert failed and result["msg"].startswith(field), result
    assert os.listdir(str(out)) == []


def test_dest_directory_is_refused(env):
    src, out, monkeypatch = env
    failed, result = run_module(monkeypatch, git_bundle, args(src, out))
    assert failed and result["msg"] == "dest: %s is a directory; give the bundle file's path" % out


def test_a_failing_git_step_names_the_step(env, tmp_path):
    src, out, monkeypatch = env
    unreadable = src / "content" / "secret.md"
    unreadable.write_text("x")
    wrapper = tmp_path / "git"
    wrapper.write_text('#!/bin/sh\nif [ "$1" = add ]; then echo "fatal: simulated" >&2; exit 128; fi\nexec %s "$@"\n'
                       % GIT)
    wrapper.chmod(0o755)
    failed, result = run_module(monkeypatch, git_bundle, args(src, out / "site.bundle", git_path=str(wrapper)))
    assert failed and result["msg"].startswith("git add -A in %s failed (rc=128): fatal: simulated" % src)
    assert result["rc"] == 128 and os.listdir(str(out)) == []
