"""Make `ansible_collections.selfhost.pi` importable from the repository.

`make collection` links the repository to
.build/collections/ansible_collections/selfhost/pi; the unit tests import the
plugins through that path, exactly as Ansible does.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LINK = os.path.join(ROOT, ".build", "collections", "ansible_collections", "selfhost", "pi")
if not os.path.islink(LINK):
    os.makedirs(os.path.dirname(LINK), exist_ok=True)
    os.symlink(ROOT, LINK)
sys.path.insert(0, os.path.join(ROOT, ".build", "collections"))

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _managed_record(tmp_path, monkeypatch):
    """The services module's record in a temporary directory, never /var/lib/selfhost-pi on the test machine."""
    path = str(tmp_path / "selfhost-pi-record" / "managed.json")
    try:
        from ansible_collections.selfhost.pi.plugins.modules import services
        from ansible_collections.selfhost.pi.plugins.module_utils import service_set
    except ImportError:
        return path
    monkeypatch.setattr(services, "MANAGED_RECORD", path)
    monkeypatch.setattr(service_set, "MANAGED_RECORD", path)
    return path
