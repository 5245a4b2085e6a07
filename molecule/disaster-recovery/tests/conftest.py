"""Fixtures for the disaster-recovery scenario's verifier."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
import harness  # noqa: E402
from harness import PROJECT, fetch, run_playbook  # noqa: E402,F401  (the tests import them from here)

HOST = "selfhost-dr"
DISK = "selfhost-dr-disk"

# podman exec by name: still right after the host is replaced by a fresh one.
node = harness.node_fixture(HOST)


@pytest.fixture(scope="session")
def record():
    """What the ordered tests hand each other (host A's data, timings)."""
    return {}
