"""Fixtures for the default scenario's verifier.

The test host is reached with testinfra's own podman backend (`podman exec`),
which is much faster than routing each command through Ansible. Playbook runs
use molecule's inventory, exactly as `converge` does (molecule/shared/harness.py).
"""
import os
import sys

import pytest
import testinfra

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
import harness  # noqa: E402
from harness import PROJECT, fetch  # noqa: E402,F401  (the tests import them from here)

HOST = "selfhost-molecule"


@pytest.fixture(scope="session")
def node():
    return testinfra.get_host("podman://" + HOST)


@pytest.fixture(scope="session")
def spec():
    return harness.declared("default")


@pytest.fixture(scope="session")
def run_playbook():
    """Run a playbook (site.yml by default) against the scenario's host; return the CompletedProcess."""
    return harness.run_playbook
