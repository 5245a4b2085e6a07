"""What every scenario's verifier uses: the project's paths, HTTP through the
host's nginx, and playbook runs with molecule's inventory.

Each scenario's tests/conftest.py puts this directory on sys.path and turns
these into fixtures.
"""
import json
import os
import subprocess
import sys

PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY",
                         os.path.abspath(os.path.join(os.path.dirname(__file__), "../..")))

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


def run_playbook(extra_vars=None, playbook="playbooks/site.yml", check=False, args=()):
    """Run a playbook of the project against the scenario's hosts; return the CompletedProcess."""
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
    cmd += list(args)
    return subprocess.run(cmd, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=900)


def declared(scenario):
    """The scenario's own group_vars (what its inventory declares)."""
    import yaml

    with open(os.path.join(PROJECT, "molecule", scenario, "inventory", "group_vars", "selfhost", "main.yml")) as handle:
        return yaml.safe_load(handle)


def node_fixture(host):
    """A session fixture: the test host through testinfra's podman backend (`podman exec` by name)."""
    import pytest
    import testinfra

    @pytest.fixture(scope="session", name="node")
    def node():
        return testinfra.get_host("podman://" + host)

    return node


def spec_fixture(scenario):
    """A session fixture: the scenario's declared group_vars."""
    import pytest

    @pytest.fixture(scope="session", name="spec")
    def spec():
        return declared(scenario)

    return spec


def run_playbook_fixture():
    """A session fixture: run_playbook, for tests that take it as an argument."""
    import pytest

    @pytest.fixture(scope="session", name="run_playbook")
    def fixture():
        return run_playbook

    return fixture
