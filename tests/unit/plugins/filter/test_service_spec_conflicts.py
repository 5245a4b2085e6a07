import pytest

from ansible_collections.selfhost.pi.plugins.filter.service_spec_conflicts import service_spec_conflicts
from ansible_collections.selfhost.pi.plugins.module_utils.service_spec import parse_publish, upstream


def test_publish_forms():
    assert parse_publish("8080") == ("", None, "tcp")
    assert parse_publish("8081:8080") == ("", (8081, 8081), "tcp")
    assert parse_publish("127.0.0.1:8081:8080") == ("127.0.0.1", (8081, 8081), "tcp")
    assert parse_publish("127.0.0.1::8080") == ("127.0.0.1", None, "tcp")
    assert parse_publish("[::1]:8081:8080/udp") == ("::1", (8081, 8081), "udp")
    assert parse_publish("127.0.0.1:8000-8010:8000-8010") == ("127.0.0.1", (8000, 8010), "tcp")


def test_no_conflicts():
    specs = [
        {"name": "a", "uid": 2001, "publish_ports": ["127.0.0.1:8081:80"], "domain": "a.test"},
        {"name": "b", "uid": 2002, "publish_ports": ["127.0.0.2:8081:80", "0.0.0.0:8082:80/udp", "127.0.0.1::80"],
         "domain": "b.test"},
        {"name": "c", "uid": 2003, "publish_ports": ["127.0.0.1:8082:80", "127.0.0.1:8083-8090:83-90"]},
    ]
    assert service_spec_conflicts(specs) == []


def test_each_clash_names_its_field():
    specs = [
        {"name": "a", "uid": 2001, "publish_ports": ["127.0.0.1:8081:80"], "domain": "a.test"},
        {"name": "a", "uid": 2001, "publish_ports": ["0.0.0.0:8081:80"], "domain": "a.test"},
    ]
    errors = service_spec_conflicts(specs)
    assert "service_specs[1].name: a is already used by service_specs[0] (a)" in errors
    assert any(e.startswith("service_specs[1].uid: 2001") for e in errors)
    assert any(e.startswith("service_specs[1].domain: a.test") for e in errors)
    assert any(e.startswith("service_specs[1].publish_ports[0]: host port 8081/tcp") for e in errors)
    assert len(errors) == 4


@pytest.mark.parametrize("domain", ["A.test", "a.test.", "A.TEST."])
def test_domains_differing_in_case_or_a_trailing_dot_clash(domain):
    """nginx matches server names without case, and a request's trailing dot is dropped: the same site."""
    specs = [{"name": "a", "uid": 2001, "domain": "a.test"}, {"name": "b", "uid": 2002, "domain": domain}]
    assert service_spec_conflicts(specs) == [
        "service_specs[1].domain: %s is already used by service_specs[0] (a) (as a.test)" % domain]
    assert service_spec_conflicts([specs[1]], reserved={"domain": ["a.test"]}) == [
        "service_specs[0].domain: %s is already used by another role (as a.test)" % domain]


@pytest.mark.parametrize("first, second, text", [
    ("127.0.0.1:8000-8010:80-90", "127.0.0.1:8005:80", "host port 8005/tcp is already published by"
                                                       " service_specs[0] (a) (8000-8010/tcp)"),
    ("127.0.0.1:8005:80", "127.0.0.1:8000-8010:80-90", "host port 8000-8010/tcp is already published by"
                                                       " service_specs[0] (a) (8005/tcp)"),
    ("127.0.0.1:9000-9009:80-89", "0.0.0.0:9009-9010:80-81", "host port 9009-9010/tcp"),
    ("[::1]:8080:80", "[0:0::1]:8080:80", "host port 8080/tcp"),
    ("[::]:8080:80", "127.0.0.1:8080:80", "host port 8080/tcp"),
])
def test_overlapping_port_ranges_clash(first, second, text):
    """Ranges were compared as strings: 8000-8010 and 8005 did not clash."""
    errors = service_spec_conflicts([{"name": "a", "uid": 2001, "publish_ports": [first]},
                                     {"name": "b", "uid": 2002, "publish_ports": [second]}])
    assert len(errors) == 1 and errors[0].startswith("service_specs[1].publish_ports[0]: " + text), errors


@pytest.mark.parametrize("publish, text", [
    ("127.0.0.1:0:80", "the host port '0' is not a port"),
    ("127.0.0.1:65536:80", "the host port '65536' is outside 1-65535"),
    ("127.0.0.1:99999:80", "the host port '99999' is outside 1-65535"),
    ("127.0.0.1:08080:80", "the host port '08080' is not a port (1-65535, no leading zeros)"),
    ("127.0.0.1:8080:080", "the container port '080' is not a port"),
    ("127.0.0.1:8080:0", "the container port '0' is not a port"),
    ("127.0.0.1:8010-8000:80", "the host port '8010-8000' is outside 1-65535 or its range runs backwards"),
    ("127.0.0.1:8000-:80", "the host port '8000-' is not a port"),
    ("localhost:8080:80", "the host address 'localhost' is not an IP address"),
    ("127.0.0.1:8080:80/icmp", "the protocol 'icmp' is not one of tcp, udp, sctp"),
])
def test_bad_port_numbers_are_refused(publish, text):
    errors = service_spec_conflicts([{"name": "a", "uid": 2001, "publish_ports": [publish]}])
    assert len(errors) == 1 and errors[0].startswith("service_specs[0].publish_ports[0]: %r: %s" % (publish, text)), errors


@pytest.mark.parametrize("publish, wanted", [("8081:80", "127.0.0.1:8081:80"), ("80", "127.0.0.1::80"),
                                             ("8081:80/udp", "127.0.0.1:8081:80/udp")])
def test_a_publish_without_an_address_is_refused(publish, wanted):
    """Without an address podman binds every interface, and the service is reachable past nginx."""
    errors = service_spec_conflicts([{"name": "a", "uid": 2001, "publish_ports": [publish]}])
    assert len(errors) == 1 and errors[0].startswith("service_specs[0].publish_ports[0]: %r names no host address"
                                                     % publish), errors
    assert "write %s " % wanted in errors[0]


def test_an_address_less_publish_still_clashes():
    errors = service_spec_conflicts([{"name": "a", "uid": 2001, "publish_ports": ["127.0.0.1:8081:80"]},
                                     {"name": "b", "uid": 2002, "publish_ports": ["8081:80"]}])
    assert errors[0].startswith("service_specs[1].publish_ports[0]: '8081:80' names no host address")
    assert errors[1].startswith("service_specs[1].publish_ports[0]: host port 8081/tcp is already published by"
                                " service_specs[0] (a)")


def test_reserved_ids_clash():
    errors = service_spec_conflicts([{"name": "web", "uid": 2000}], reserved={"uid": [2000]})
    assert errors == ["service_specs[0].uid: 2000 is already used by another role"]
    errors = service_spec_conflicts([{"name": "web", "uid": 2000, "publish_ports": ["127.0.0.1:9000:80"]}],
                                    reserved={"port": [9000]})
    assert errors == ["service_specs[0].publish_ports[0]: host port 9000/tcp is already published by another role"]


def test_malformed_publish_port_names_its_field():
    errors = service_spec_conflicts([{"name": "a", "uid": 1, "publish_ports": ["[::1:8080:80"]},
                                     {"name": "b", "uid": 2, "publish_ports": ["1:2:3:4"]}])
    assert errors[0].startswith("service_specs[0].publish_ports[0]: '[::1:8080:80' is not")
    assert errors[1].startswith("service_specs[1].publish_ports[0]: '1:2:3:4' is not")


@pytest.mark.parametrize("ports, url", [
    (["127.0.0.1:8001:80"], "http://127.0.0.1:8001"),
    (["0.0.0.0:8001:80"], "http://127.0.0.1:8001"),
    (["[::1]:8001:80"], "http://[::1]:8001"),
    (["127.0.0.1:53:53/udp", "127.0.0.2:8002:80"], "http://127.0.0.2:8002"),
    (["127.0.0.1:8000-8003:80-83"], "http://127.0.0.1:8000"),
])
def test_upstream_is_the_first_tcp_host_port(ports, url):
    assert upstream({"publish_ports": ports}) == url
