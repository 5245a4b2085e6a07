"""The blog role's host side: the push-triggered builder, its units and its configuration.

The builder program runs for real (ProcessHost, real git in a temporary
directory); hugo is NOT installed here, so the stand-in of test_hugo_site takes
its place. The units' commands run with the real tools (find).
"""
import importlib.machinery
import importlib.util
import json
import os
import shlex
import subprocess

import jinja2
import pytest
import yaml

from ansible_collections.selfhost.pi.plugins.modules import git_bundle

from ..plugins.modules.gitrepo import needs_git
from ..plugins.modules.helpers import run_module
from ..plugins.modules.test_hugo_site import ME, Site

ROLE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
                    "roles", "blog")
PROGRAM = os.path.join(ROLE, "files", "selfhost-blog-build")


def render(template, **variables):
    with open(os.path.join(ROLE, "templates", template)) as handle:
        return jinja2.Template(handle.read(), keep_trailing_newline=True).render(**variables)


def directives(unit_text, key):
    return [line.split("=", 1)[1] for line in unit_text.splitlines() if line.startswith(key + "=")]


def load_program():
    loader = importlib.machinery.SourceFileLoader("selfhost_blog_build", PROGRAM)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    program = importlib.util.module_from_spec(spec)
    loader.exec_module(program)
    return program


def tasks(name):
    with open(os.path.join(ROLE, "tasks", name)) as handle:
        return yaml.safe_load(handle)


# -- finding 11: the request spool ----------------------------------------------
def drain_command(spool):
    unit = render("selfhost-blog-build.service.j2", blog_request_dir=str(spool), blog_user="blog")
    (pre,) = directives(unit, "ExecStartPre")
    assert pre.startswith("+"), "the spool belongs to root and webhook: emptied with root's rights"
    return shlex.split(pre[1:])


def test_any_entry_in_the_request_spool_is_removed_without_following_links(tmp_path):
    """A directory (empty or not), a link or a fifo in the spool must not make the drain fail.

    A failed ExecStartPre fails the service while the spool stays non-empty, so
    selfhost-blog-build.path (DirectoryNotEmpty=) started it again, forever.
    """
    spool = tmp_path / "requests" / "blog"
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "dir" / "precious").write_text("keep\n")
    (outside / "file").write_text("keep\n")
    (spool / "nested" / "deeper").mkdir(parents=True)
    (spool / "nested" / "deeper" / "req").write_text("{}")
    (spool / "nested" / "link-in-dir").symlink_to(outside / "dir")
    (spool / "empty-dir").mkdir()
    (spool / "20250101T000000-1234").write_text("{}")
    (spool / "link-to-dir").symlink_to(outside / "dir")
    (spool / "link-to-file").symlink_to(outside / "file")
    (spool / "dangling").symlink_to(tmp_path / "nowhere")
    os.mkfifo(str(spool / "fifo"))
    proc = subprocess.run(drain_command(spool), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
    assert proc.returncode == 0, proc.stderr
    assert os.listdir(str(spool)) == []
    assert (outside / "dir" / "precious").read_text() == "keep\n" and (outside / "file").read_text() == "keep\n"


def test_the_path_unit_watches_the_spool_the_service_empties(tmp_path):
    path_unit = render("selfhost-blog-build.path.j2", blog_request_dir="/var/lib/selfhost-pi/requests/blog")
    assert directives(path_unit, "DirectoryNotEmpty") == ["/var/lib/selfhost-pi/requests/blog"]
    assert str(tmp_path) in drain_command(tmp_path)


# -- finding 10: the builder's configuration ---------------------------------------
def test_the_builder_configuration_is_readable_by_the_blog_user_only():
    (task,) = [t for t in tasks("webhook.yml") if t.get("ansible.builtin.copy", {}).get("dest") ==
               "/etc/selfhost-pi/blog-build.json"]
    copy = task["ansible.builtin.copy"]
    assert (copy["owner"], copy["group"], copy["mode"]) == ("root", "{{ blog_user }}", "0640")
    unit = render("selfhost-blog-build.service.j2", blog_request_dir="/spool", blog_user="blog")
    assert directives(unit, "User") == ["blog"] and directives(unit, "Group") == ["blog"]
    assert directives(unit, "ExecStart") == [
        "/usr/local/libexec/selfhost-pi/selfhost-blog-build /etc/selfhost-pi/blog-build.json"]


def test_module_utils_are_installed_from_the_role_list():
    (task,) = [t for t in tasks("webhook.yml") if t["name"] == "Install the site builder's code for the rebuild"]
    assert task["loop"] == "{{ __blog_module_utils }}"


# -- the builder program -----------------------------------------------------------
@pytest.fixture
def builder(tmp_path, monkeypatch):
    site = Site(tmp_path, monkeypatch)
    params = dict(site.args(), keep_releases=2, minify=False, environment="production")
    config = tmp_path / "blog-build.json"
    config.write_text(json.dumps(params))
    return site, load_program(), str(config), params


@needs_git
def test_builder_builds_what_the_module_builds(builder, capsys):
    site, program, config, params = builder
    assert program.main(config) == 0
    out = capsys.readouterr().out
    assert "built commit %s into %s/releases/%s-" % (site.first, site.dest, site.first[:12]) in out
    assert program.main(config) == 0
    assert "up to date: commit %s is current" % site.first in capsys.readouterr().out
    failed, result = site.run(**params)
    assert not failed and not result["changed"], result


@needs_git
def test_builder_reports_a_failed_build_and_keeps_current(builder, capsys):
    site, program, config, dummy = builder
    assert program.main(config) == 0
    before = site.current()
    broken = site.remote.commit({"BROKEN": "x"}, "broken")
    capsys.readouterr()
    assert program.main(config) == 1
    err = capsys.readouterr().err
    assert err.startswith("build failed: hugo build of commit %s failed (rc=1)" % broken)
    assert site.current() == before


@needs_git
def test_builder_masks_credentials_and_warns(builder, capsys):
    site, program, config, params = builder
    url = "https://deploy:s3cret@git.example.invalid/blog.git"
    site.gitconfig.write_text('[url "%s"]\n\tinsteadOf = %s\n' % (site.remote.path, url))
    with open(config, "w") as handle:
        json.dump(dict(params, repo=url), handle)
    assert program.main(config) == 0
    out = capsys.readouterr()
    assert "warning: repo: https://deploy:***@git.example.invalid/blog.git holds credentials" in out.out
    assert "s3cret" not in out.out + out.err


def test_builder_fails_cleanly_on_bad_configuration(tmp_path, capsys):
    program = load_program()
    assert program.main(str(tmp_path / "missing.json")) == 1
    assert capsys.readouterr().err.startswith("build failed: cannot read ")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(dict(dest="relative", repo="/x", owner=ME)))
    assert program.main(str(bad)) == 1
    assert "dest: 'relative' must be an absolute path below /" in capsys.readouterr().err


# -- blog_source: the bundle made on the controller, built on the host --------------
@needs_git
def test_an_unchanged_blog_source_rebuilds_nothing(tmp_path, monkeypatch):
    """bundle.yml then hugo_site, as the role runs them: the same files give the same release."""
    site = Site(tmp_path, monkeypatch)
    source = tmp_path / "blog_source"
    source.mkdir()
    (source / "content.txt").write_text("<h1>from the controller</h1>\n")
    (tmp_path / "scratch").mkdir()
    bundle = str(tmp_path / "scratch" / "site.bundle")
    (task,) = [t for t in tasks("bundle.yml") if "selfhost.pi.git_bundle" in t]
    with open(os.path.join(ROLE, "vars", "main.yml")) as handle:
        exclude = yaml.safe_load(handle)["__blog_bundle_exclude"]
    assert task["selfhost.pi.git_bundle"]["exclude"] == "{{ __blog_bundle_exclude }}"
    bundle_args = dict(src=str(source), dest=bundle, branch="main", commit_message="Site from blog_source", exclude=exclude)
    failed, made = run_module(monkeypatch, git_bundle, bundle_args)
    assert not failed, made
    failed, first = site.run(repo=bundle, version="main")
    assert not failed and first["built"] and first["commit"] == made["commit"]
    assert site.served() == "<h1>from the controller</h1>\n"
    os.unlink(bundle)                                  # a fresh scratch directory on the next run
    run_module(monkeypatch, git_bundle, bundle_args)
    failed, again = site.run(repo=bundle, version="main")
    assert not failed and not again["changed"]
