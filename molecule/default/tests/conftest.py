"""Fixtures for the default scenario's verifier (molecule/shared/harness.py).

The test host is reached with testinfra's own podman backend (`podman exec`),
which is much faster than routing each command through Ansible. Playbook runs
use molecule's inventory, exactly as `converge` does.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
import harness  # noqa: E402
from harness import PROJECT, fetch  # noqa: E402,F401  (the tests import them from here)

node = harness.node_fixture("selfhost-molecule")
spec = harness.spec_fixture("default")
run_playbook = harness.run_playbook_fixture()
