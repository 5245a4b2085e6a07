"""Fixtures for the reconcile scenario's verifier (molecule/shared/harness.py)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
import harness  # noqa: E402
from harness import PROJECT, declared, fetch, run_playbook  # noqa: E402,F401  (the tests import them from here)

HOST = "selfhost-reconcile"

node = harness.node_fixture(HOST)
spec = harness.spec_fixture("reconcile")


@pytest.fixture(scope="session")
def record():
    """What the ordered tests hand each other (checksums of gamma's data)."""
    return {}
