"""Fixtures for the updates scenario's verifier.

The test host is reached with testinfra's own podman backend (`podman exec`),
which is much faster than routing each command through Ansible. Playbook runs
for the failure cases use molecule's inventory, exactly as `converge` does.
"""
import json
import os
import subprocess
import sys

import pytest
import testinfra
import yaml

PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.path.abspath(os.path.join(os.path.dirname(__file__), "../../..")))
SCENARIO = os.path.join(PROJECT, "molecule", "updates")
HOST = "selfhost-updates"


def declared():
    with open(os.path.join(SCENARIO, "inventory", "group_vars", "selfhost", "main.yml")) as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="session")
def node():
    return testinfra.get_host("podman://" + HOST)


@pytest.fixture(scope="session")
def spec():
    return declared()


FETCH = (
    "import sys, urllib.request, urllib.error\n"
    "req = urllib.request.Request('http://127.0.0.1' + sys.argv[2], headers={'Host': sys.argv[1]})\n"
    "try:\n"
    "    resp = urllib.request.urlopen(req, timeout=10)\n"
    "except urllib.error.HTTPError as err:\n"
    "    resp = err\n"
    "print(resp.status)\n"
    "sys.stdout.write(resp.read().decode())\n"
)


def fetch(node, domain, path="/"):
    """GET http://127.0.0.1<path> on the host through nginx, by host name; return (status, body)."""
    cmd = node.run("python3 -c %s %s %s", FETCH, domain, path)
    assert cmd.rc == 0, cmd.stderr
    status, _, body = cmd.stdout.partition("\n")
    return int(status), body


@pytest.fixture(scope="session")
def run_playbook():
    """Run playbooks/site.yml against the scenario's host with extra vars; return the CompletedProcess."""

    def run(extra_vars=None, playbook="playbooks/site.yml", check=False):
        env = dict(os.environ)
        env["ANSIBLE_COLLECTIONS_PATH"] = os.path.join(PROJECT, ".build", "collections")
        env["ANSIBLE_CONFIG"] = os.path.join(PROJECT, "ansible.cfg")
        env["ANSIBLE_NOCOLOR"] = "1"
        env["ANSIBLE_FORCE_COLOR"] = "0"  # molecule exports 1 to its children
        cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
               "-i", os.environ["MOLECULE_INVENTORY_FILE"], os.path.join(PROJECT, playbook)]
        if extra_vars is not None:
            cmd += ["-e", json.dumps(extra_vars)]
        if check:
            cmd += ["--check", "--diff"]
        return subprocess.run(cmd, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=900)

    return run
