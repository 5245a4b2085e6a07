"""Fixtures for the tls scenario's verifier (molecule/shared/harness.py).

The test host is reached with testinfra's own podman backend (`podman exec`);
playbook runs use molecule's inventory, exactly as `converge` does.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
import harness  # noqa: E402
from harness import PROJECT  # noqa: E402,F401  (the tests import it from here)

node = harness.node_fixture("selfhost-tls")
spec = harness.spec_fixture("tls")
run_playbook = harness.run_playbook_fixture()
