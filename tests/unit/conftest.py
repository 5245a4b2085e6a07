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
