from ansible_collections.selfhost.pi.plugins.filter.service_spec_conflicts import service_spec_conflicts
from ansible_collections.selfhost.pi.plugins.module_utils.service_spec import host_port


def test_host_port_forms():
    assert host_port("8080") is None
    assert host_port("8081:8080") == ("0.0.0.0", "8081", "tcp")
    assert host_port("127.0.0.1:8081:8080") == ("127.0.0.1", "8081", "tcp")
    assert host_port("127.0.0.1::8080") is None
    assert host_port("[::1]:8081:8080/udp") == ("::1", "8081", "udp")


def test_no_conflicts():
    specs = [
        {"name": "a", "uid": 2001, "publish_ports": ["127.0.0.1:8081:80"], "domain": "a.test"},
        {"name": "b", "uid": 2002, "publish_ports": ["127.0.0.2:8081:80", "8082:80/udp"], "domain": "b.test"},
    ]
    assert service_spec_conflicts(specs) == []


def test_each_clash_names_its_field():
    specs = [
        {"name": "a", "uid": 2001, "publish_ports": ["127.0.0.1:8081:80"], "domain": "a.test"},
        {"name": "a", "uid": 2001, "publish_ports": ["8081:80"], "domain": "a.test"},
    ]
    errors = service_spec_conflicts(specs)
    assert "service_specs[1].name: a is already used by service_specs[0] (a)" in errors
    assert any(e.startswith("service_specs[1].uid: 2001") for e in errors)
    assert any(e.startswith("service_specs[1].domain: a.test") for e in errors)
    assert any(e.startswith("service_specs[1].publish_ports[0]: host port 8081/tcp") for e in errors)


def test_reserved_ids_clash():
    errors = service_spec_conflicts([{"name": "web", "uid": 2000}], reserved={"uid": [2000]})
    assert errors == ["service_specs[0].uid: 2000 is already used by another role"]


def test_malformed_publish_port_names_its_field():
    errors = service_spec_conflicts([{"name": "a", "uid": 1, "publish_ports": ["[::1:8080:80"]},
                                     {"name": "b", "uid": 2, "publish_ports": ["1:2:3:4"]}])
    assert errors[0].startswith("service_specs[0].publish_ports[0]: '[::1:8080:80' is not")
    assert errors[1].startswith("service_specs[1].publish_ports[0]: '1:2:3:4' is not")
