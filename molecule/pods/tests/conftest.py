"""Fixtures for the pods scenario's verifier (molecule/shared/harness.py)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
import harness  # noqa: E402
from harness import PROJECT, fetch, run_playbook  # noqa: E402,F401  (the tests import them from here)

HOST = "selfhost-pods"
DISK = "selfhost-pods-disk"

# podman exec by name: still right after the host is replaced by a fresh one.
node = harness.node_fixture(HOST)
spec = harness.spec_fixture("pods")


@pytest.fixture(scope="session")
def record():
    """What the ordered tests hand each other."""
    return {}
