"""Fixtures for the default scenario's verifier.

The test host is reached with testinfra's own podman backend (`podman exec`),
which is much faster than routing each command through Ansible. Playbook runs
for the failure cases use molecule's inventory, exactly as `converge` does.
"""
import os
import sys

import pytest
import testinfra
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
from harness import PROJECT, fetch  # noqa: E402,F401  (the tests import them from here)
import harness  # noqa: E402

SCENARIO = os.path.join(PROJECT, "molecule", "default")
HOST = "selfhost-molecule"


def declared():
    with open(os.path.join(SCENARIO, "inventory", "group_vars", "selfhost", "main.yml")) as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="session")
def node():
    return testinfra.get_host("podman://" + HOST)


@pytest.fixture(scope="session")
def spec():
    return declared()


@pytest.fixture(scope="session")
def run_playbook():
    """Run playbooks/site.yml against the scenario's host with extra vars; return the CompletedProcess."""

    def run(extra_vars=None, playbook="playbooks/site.yml", check=False):
        return harness.run_playbook(extra_vars, playbook, check)

    return run
