"""Failure cases on the real host: each is refused and the previous version keeps serving.

These run after converge/idempotence against the same host, through the same
playbook and modules a user runs.
"""
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from conftest import PROJECT, fetch


def snapshot(node, paths):
    return {path: node.run("sha256sum %s 2>/dev/null || echo missing", path).stdout for path in paths}


def unit_path(service):
    return "/home/%s/.config/containers/systemd/%s.container" % (service["name"], service["name"])


def recap_changed(stdout):
    return [line for line in stdout.splitlines() if "changed=" in line and "changed=0" not in line]


def test_invalid_quadlet_option_keeps_the_running_unit(node, spec, run_playbook):
    specs = copy.deepcopy(spec["service_specs"])
    specs[0]["container_options"] = {"NoSuchQuadletKey": "1"}
    path = unit_path(specs[0])
    before = snapshot(node, [path])
    result = run_playbook({"service_specs": specs})
    assert result.returncode != 0
    assert "NoSuchQuadletKey" in result.stdout
    assert snapshot(node, [path]) == before
    status, body = fetch(node, specs[0]["domain"])
    assert status == 200 and "Hello" in body


def test_site_failing_nginx_t_restores_the_previous_site(node, spec):
    service = spec["service_specs"][1]
    path = "/etc/nginx/sites-available/%s.conf" % service["name"]
    before = snapshot(node, [path])
    args = json.dumps({
        "name": service["name"], "server_name": [service["domain"]],
        "proxy_pass": "http://127.0.0.1:9082", "directives": ["no_such_directive on;"],
    })
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(PROJECT, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(PROJECT, ".build", "collections"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible"), "-i", os.environ["MOLECULE_INVENTORY_FILE"],
         "selfhost-molecule", "-b", "-m", "selfhost.pi.nginx_site", "-a", args],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "no_such_directive" in result.stdout
    assert snapshot(node, [path]) == before
    assert node.run("nginx -t").rc == 0
    status, body = fetch(node, service["domain"])
    assert status == 200 and "Hello" in body


def test_failed_hugo_build_keeps_the_current_release(node, spec, run_playbook):
    broken = tempfile.mkdtemp(prefix="broken-blog.")
    try:
        site = os.path.join(broken, "blog")
        shutil.copytree(os.path.join(PROJECT, "inventory", "files", "blog"), site)
        with open(os.path.join(site, "layouts", "index.html"), "w") as handle:
            handle.write("{{ if }}broken template\n")
        current = node.run("readlink %s/current", spec["blog_dest"]).stdout
        status, body_before = fetch(node, spec["blog_domain"])
        result = run_playbook({"blog_source": site})
        assert result.returncode != 0
        assert "index.html" in result.stdout
        assert node.run("readlink %s/current", spec["blog_dest"]).stdout == current
        status, body = fetch(node, spec["blog_domain"])
        assert status == 200 and body == body_before
    finally:
        shutil.rmtree(broken)


BAD_SPECS = [
    ("wrong type", lambda s: s[0].update(uid="two thousand"), "uid"),
    ("unknown key", lambda s: s[0].update(imgae="x"), "imgae"),
    ("duplicate name", lambda s: s[1].update(name=s[0]["name"]), "service_specs[1].name"),
    ("duplicate port", lambda s: s[1].update(publish_ports=list(s[0]["publish_ports"])), "service_specs[1].publish_ports[0]"),
    ("duplicate uid", lambda s: s[1].update(uid=s[0]["uid"]), "service_specs[1].uid"),
]


@pytest.mark.parametrize("label,mutate,field", BAD_SPECS, ids=[b[0] for b in BAD_SPECS])
def test_malformed_spec_fails_before_any_change(node, spec, run_playbook, label, mutate, field):
    specs = copy.deepcopy(spec["service_specs"])
    # A new service rides along: if anything ran, its user would appear.
    specs.append({"name": "canary", "uid": 2699, "image": "localhost/none:1", "publish_ports": ["127.0.0.1:9099:80"]})
    mutate(specs)
    result = run_playbook({"service_specs": specs})
    assert result.returncode != 0, label
    assert field in result.stdout, result.stdout[-3000:]
    assert not recap_changed(result.stdout), label
    assert not node.user("canary").exists
