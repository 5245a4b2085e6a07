"""Fixtures for the plan scenario's verifier (molecule/shared/harness.py)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
import harness  # noqa: E402

node = harness.node_fixture("selfhost-plan")
spec = harness.spec_fixture("plan")
run_playbook = harness.run_playbook_fixture()
