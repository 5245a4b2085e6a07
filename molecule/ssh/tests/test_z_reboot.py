"""Last, on purpose: the host reboots (the container restarts, systemd shuts down and boots again)."""
import os
import time

from conftest import HOST, SSH_DIR, address, podman, ssh, wait_booted


def test_the_firewall_and_the_service_come_back_after_a_reboot(node, probe, spec, capsys):
    start = time.monotonic()
    podman("restart", "-t", "60", HOST, timeout=180)
    booted = wait_booted()
    ip = address()
    with open(os.path.join(SSH_DIR, "address"), "w") as handle:   # the inventory reads it
        handle.write(ip)
    with capsys.disabled():
        print("\nreboot: %.1f s until systemd reported the host booted (%.1f s of it booting)"
              % (time.monotonic() - start, booted))
    assert node.run("nft list table inet selfhost_pi").rc == 0
    assert probe.tcp(ip, 22) == "open"
    assert probe.tcp(ip, 8000) == "timeout"
    assert ssh("admin", "sudo -n true").returncode == 0
    domain = spec["service_specs"][0]["domain"]
    deadline = time.monotonic() + 90
    while probe.http(ip, 80, domain) != "200" and time.monotonic() < deadline:
        time.sleep(1)
    assert probe.http(ip, 80, domain) == "200"
    with capsys.disabled():
        print("reboot: the service answered through nginx %.1f s after the restart began" % (time.monotonic() - start))
