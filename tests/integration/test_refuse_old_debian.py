"""site.yml refuses Debian 12 before changing anything.

The machines that run the tests are Debian 12 "bookworm", whose podman 4.3 has
no Quadlet: a real old host is at hand. The run is in --check mode, so even a
broken refusal could not change this machine.
"""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def debian_major():
    try:
        with open("/etc/debian_version") as handle:
            return int(handle.read().split(".")[0])
    except (OSError, ValueError):
        return None


@pytest.mark.skipif(debian_major() is None or debian_major() >= 13, reason="needs a Debian 12 (or older) machine")
def test_site_refuses_debian_12_with_a_clear_message():
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0")
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "oldhost,", "-c", "local",
         "-e", "ansible_python_interpreter=" + sys.executable, "--check", "playbooks/site.yml"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    out = result.stdout
    assert "selfhost.pi needs Debian 13" in out
    assert "has no Quadlet" in out
    assert "changed=0" in out
