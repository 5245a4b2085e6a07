"""Fixtures for the ssh scenario's verifier (molecule/shared/harness.py).

The host's state is read with testinfra's podman backend (`podman exec`);
what a user or an attacker sees is tried over the network: `ssh` from the
controller with the scenario's key and known_hosts, and TCP probes from a
second container on the host's podman network (not from the host itself).
"""
import os
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
import harness  # noqa: E402

HOST = "selfhost-ssh"
NETWORK = "selfhost-ssh"
PROBE = "selfhost-ssh-probe"
SSH_DIR = os.path.join(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", ""), "ssh")
BASE = "molecule/ssh/base.yml"  # the base role alone, for refusal and check-mode runs

node = harness.node_fixture(HOST)
spec = harness.spec_fixture("ssh")
run_playbook = harness.run_playbook_fixture()


def podman(*args, check=True, timeout=120):
    result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def address():
    """The host's IPv4 address on its podman network (it may change when the container restarts)."""
    return podman("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", HOST).stdout.strip()


def ssh(user, command="true", *options, password=False, key="id_ed25519"):
    """Log in as `user` over a new SSH connection (no connection sharing); return the CompletedProcess.

    With password=True only password authentication is offered, answered by the
    scenario's askpass helper with the admin's real password.
    """
    cmd = ["ssh", "-n", "-v", "-o", "ControlMaster=no", "-o", "ControlPath=none",
           "-o", "UserKnownHostsFile=%s/known_hosts" % SSH_DIR, "-o", "StrictHostKeyChecking=yes",
           "-o", "HostKeyAlias=%s" % HOST, "-o", "ConnectTimeout=10", "-o", "IdentitiesOnly=yes"]
    env = dict(os.environ)
    if password:
        cmd += ["-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password,keyboard-interactive",
                "-o", "NumberOfPasswordPrompts=1"]
        env.update(SSH_ASKPASS=os.path.join(SSH_DIR, "askpass"), SSH_ASKPASS_REQUIRE="force")
    else:
        cmd += ["-o", "BatchMode=yes", "-i", os.path.join(SSH_DIR, key)]
    cmd += list(options) + ["%s@%s" % (user, address()), command]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)


PROBE_SCRIPT = (
    "import socket, sys\n"
    "proto, host, port, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])\n"
    "kind = socket.SOCK_STREAM if proto == 'tcp' else socket.SOCK_DGRAM\n"
    "info = socket.getaddrinfo(host, port, type=kind)[0]\n"
    "sock = socket.socket(info[0], kind)\n"
    "sock.settimeout(timeout)\n"
    "try:\n"
    "    sock.connect(info[4])\n"
    "    if proto == 'udp':\n"
    "        sock.send(b'probe')\n"
    "        sock.recv(64)\n"
    "    print('open')\n"
    "except ConnectionRefusedError:\n"
    "    print('refused')\n"
    "except (socket.timeout, TimeoutError):\n"
    "    print('timeout')\n"
)


class Probe:
    """A second container on the test network that tries connections to the host.

    'open': something answered; 'refused': the firewall let the packet through
    and nothing listens (a TCP reset, or ICMP port unreachable for UDP);
    'timeout': the firewall dropped it.
    """

    def __init__(self, name):
        self.name = name

    def tcp(self, host, port, timeout=3.0):
        return self._probe("tcp", host, port, timeout)

    def udp(self, host, port, timeout=3.0):
        return self._probe("udp", host, port, timeout)

    def _probe(self, proto, host, port, timeout):
        result = podman("exec", self.name, "python3", "-c", PROBE_SCRIPT, proto, host, str(port), str(timeout))
        return result.stdout.strip()

    def http(self, host, port, domain):
        """GET / with a Host header; return the status line's code (or 'timeout')."""
        script = ("import http.client, sys\n"
                  "c = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=5)\n"
                  "c.request('GET', '/', headers={'Host': sys.argv[3]})\n"
                  "print(c.getresponse().status)\n")
        result = podman("exec", self.name, "python3", "-c", script, host, str(port), domain, check=False)
        return result.stdout.strip() or result.stderr.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def probe():
    """The probe container: the test host's image, on the same network, running nothing but sleep."""
    image = os.environ.get("SELFHOST_TEST_IMAGE") or podman("inspect", "-f", "{{.ImageName}}", HOST).stdout.strip()
    podman("rm", "-f", PROBE, check=False)
    podman("run", "-d", "--name", PROBE, "--network", NETWORK, "--ulimit", "nofile=1024:1024",
           "--ulimit", "nproc=1024:1024", image, "sleep", "infinity")
    yield Probe(PROBE)
    podman("rm", "-f", "-t", "0", PROBE, check=False)


def wait_booted(timeout=120):
    """Wait until systemd on the host reports running or degraded; return the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        state = podman("exec", HOST, "systemctl", "is-system-running", check=False).stdout.strip()
        if state in ("running", "degraded"):
            return time.monotonic() - start
        time.sleep(0.5)
    raise AssertionError("the test host did not finish booting in %d s (state: %s)" % (timeout, state))
