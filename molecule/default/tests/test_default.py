"""The converged host, seen from outside: through nginx, systemd and ps."""
import glob
import os
import re

import pytest

from conftest import PROJECT, fetch


def shipped_posts():
    """(slug, title, first body line, draft) of each post of the shipped blog."""
    posts = []
    for path in sorted(glob.glob(os.path.join(PROJECT, "inventory", "files", "blog", "content", "posts", "*.md"))):
        if os.path.basename(path).startswith("_"):
            continue
        with open(path) as handle:
            _, front, body = handle.read().split("---\n", 2)
        title = re.search(r'^title:\s*"?(.+?)"?\s*$', front, re.M).group(1)
        draft = re.search(r"^draft:\s*true\s*$", front, re.M) is not None
        posts.append((os.path.basename(path)[:-3], title, body.strip().splitlines()[0], draft))
    assert posts, "the shipped blog has posts"
    return posts


def test_nginx_config_is_valid(node):
    assert node.run("nginx -t").rc == 0
    assert node.service("nginx").is_running


def test_blog_home_lists_the_published_posts(node, spec):
    status, body = fetch(node, spec["blog_domain"])
    assert status == 200
    assert '<meta name="generator" content="Hugo' in body
    for slug, title, _, draft in shipped_posts():
        assert (title in body) != draft, slug


def test_blog_post_pages_are_built_by_hugo(node, spec):
    for slug, title, first_line, draft in shipped_posts():
        status, body = fetch(node, spec["blog_domain"], "/posts/%s/" % slug)
        if draft:
            assert status == 404, slug
            continue
        assert status == 200, slug
        assert title in body
        assert first_line.split("`")[0].strip() in body
    current = node.file(spec["blog_dest"] + "/current")
    assert current.is_symlink
    assert node.file(spec["blog_dest"] + "/current/index.html").user == spec["blog_user"]


@pytest.mark.parametrize("index", [0, 1])
def test_service_answers_through_nginx(node, spec, index):
    service = spec["service_specs"][index]
    status, body = fetch(node, service["domain"])
    assert status == 200
    assert "Hello from a rootless Quadlet service" in body


@pytest.mark.parametrize("index", [0, 1])
def test_service_runs_rootless_as_its_user(node, spec, index):
    service = spec["service_specs"][index]
    name, uid = service["name"], service["uid"]
    user = node.user(name)
    assert user.uid == uid and user.gid == uid
    assert user.shell == "/usr/sbin/nologin"
    assert node.file("/var/lib/systemd/linger/" + name).exists
    assert node.run("systemctl is-active user@%s.service", str(uid)).stdout.strip() == "active"
    assert node.run("systemctl --user -M %s@ is-active %s.service", name, name).stdout.strip() == "active"
    # The container's main process (httpd) runs on the host as the service user's UID.
    port = service["exec"].split("-p ")[1].split()[0]
    procs = node.run("ps -eo uid=,args= | grep -F 'httpd -f -p %s' | grep -v grep", port).stdout.split("\n")
    uids = {line.split()[0] for line in procs if line.strip()}
    assert uids == {str(uid)}
    subid = "%s:%d:65536" % (name, uid * 65536)
    assert subid in node.file("/etc/subuid").content_string.split()
    assert subid in node.file("/etc/subgid").content_string.split()


def test_published_only_on_loopback(node, spec):
    listening = node.run("ss -Htln").stdout
    for service in spec["service_specs"]:
        host_port = service["publish_ports"][0].split(":")[1]
        assert "127.0.0.1:%s" % host_port in listening
        assert "0.0.0.0:%s" % host_port not in listening


def test_health_check_reports_healthy(node, spec):
    service = spec["service_specs"][0]
    out = node.run("runuser -u %s -- env XDG_RUNTIME_DIR=/run/user/%s podman healthcheck run %s",
                   service["name"], str(service["uid"]), service["name"])
    assert out.rc == 0, out.stderr
