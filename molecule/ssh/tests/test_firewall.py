"""The firewall seen from another host on the test network: a second container, not the host itself."""
import pytest

from conftest import address

SERVICE_PORT = 9181     # greeter, published on 127.0.0.1
UNDECLARED_PORT = 8000  # a test listener on every address (prepare.yml)
DECLARED_PORT = 8443    # the same, declared in base_firewall_tcp_ports


@pytest.fixture(scope="module")
def ip():
    return address()


def local_tcp(node, port):
    """Connect from the host itself to 127.0.0.1:port; True when something accepted."""
    return node.run("python3 -c 'import socket, sys; socket.create_connection((\"127.0.0.1\", int(sys.argv[1])), 3)' %s",
                    str(port)).rc == 0


def test_the_ruleset_is_loaded_in_its_own_table(node):
    table = node.check_output("nft list table inet selfhost_pi")
    assert "type filter hook input priority filter; policy drop;" in table
    assert node.service("selfhost-firewall.service").is_enabled
    assert node.service("selfhost-firewall.service").is_running


def test_ssh_and_declared_ports_are_open(probe, ip):
    assert probe.tcp(ip, 22) == "open"
    assert probe.tcp(ip, DECLARED_PORT) == "open"


def test_nginx_answers_from_outside(probe, ip, spec):
    assert probe.http(ip, 80, spec["service_specs"][0]["domain"]) == "200"
    # No site has a certificate here, but nginx's default server listens on 443 (it refuses every TLS
    # handshake, README "HTTPS"): the firewall lets the connection through.
    assert probe.tcp(ip, 443) == "open"


def test_a_port_not_declared_is_dropped_though_it_listens(node, probe, ip):
    assert probe.tcp(ip, UNDECLARED_PORT) == "timeout"
    assert local_tcp(node, UNDECLARED_PORT)


def test_a_service_published_on_loopback_is_unreachable_from_outside(node, probe, ip):
    assert probe.tcp(ip, SERVICE_PORT) == "timeout"
    assert local_tcp(node, SERVICE_PORT)


def test_declared_udp_port_passes_and_others_are_dropped(probe, ip):
    # Nothing listens: a port the firewall passes answers "port unreachable", a dropped one stays silent.
    assert probe.udp(ip, 51820) == "refused"
    assert probe.udp(ip, 51821) == "timeout"


def test_ipv6_is_filtered_the_same_way(node, probe):
    # The test network has IPv6 link-local addresses only; the inet table covers both families.
    link_local = node.check_output("ip -6 -o addr show dev eth0 scope link").split()[3].split("/")[0]
    target = link_local + "%eth0"
    assert probe.tcp(target, 22) == "open"
    assert probe.tcp(target, DECLARED_PORT) == "open"
    assert probe.tcp(target, UNDECLARED_PORT) == "timeout"


def test_netavark_keeps_its_tables_when_the_firewall_reloads(node):
    # A rootful container publishing on 127.0.0.1 through netavark's own nft
    # tables (DNAT): they survive a reload of the firewall, which replaces only
    # its own table, and the container keeps answering.
    archive = node.check_output("ls /var/lib/selfhost-pi/*-selfhost-hello.tar")
    node.check_output("podman load -q -i %s", archive)
    node.run("podman rm -f netavark-probe")
    node.check_output("podman run -d --name netavark-probe -p 127.0.0.1:9300:8080 localhost/selfhost-hello:1 "
                      "/bin/httpd -f -p 8080 -h /srv/www")
    try:
        netavark = [t for t in node.check_output("nft list tables").splitlines() if "netavark" in t]
        assert netavark
        node.check_output("systemctl reload selfhost-firewall.service")
        tables = node.check_output("nft list tables").splitlines()
        assert "table inet selfhost_pi" in tables
        assert set(netavark) <= set(tables)
        assert node.run("python3 -c 'import urllib.request; urllib.request.urlopen(\"http://127.0.0.1:9300/\", timeout=5)'").rc == 0
    finally:
        node.run("podman rm -f -t 0 netavark-probe")
