"""`site.yml --check --diff` after editing one service's port: shows the change, changes nothing."""
import copy

from conftest import fetch


def test_check_diff_shows_a_port_edit_and_changes_nothing(node, spec, run_playbook):
    specs = copy.deepcopy(spec["service_specs"])
    service = specs[1]
    old = service["publish_ports"][0]
    new = old.replace(":9082:", ":9083:")
    service["publish_ports"] = [new]
    unit = "/home/%s/.config/containers/systemd/%s.container" % (service["name"], service["name"])
    site = "/etc/nginx/sites-available/%s.conf" % service["name"]
    before = node.run("sha256sum %s %s", unit, site).stdout

    result = run_playbook({"service_specs": specs}, check=True)

    assert result.returncode == 0, result.stdout[-3000:]
    assert "-PublishPort=%s" % old in result.stdout
    assert "+PublishPort=%s" % new in result.stdout
    assert "http://127.0.0.1:9083" in result.stdout
    recap = [line for line in result.stdout.splitlines() if line.startswith("selfhost-molecule") and "changed=" in line]
    assert recap and "changed=0" not in recap[-1]
    assert node.run("sha256sum %s %s", unit, site).stdout == before
    listening = node.run("ss -Htln").stdout
    assert "127.0.0.1:9082" in listening and "127.0.0.1:9083" not in listening
    status, _ = fetch(node, service["domain"])
    assert status == 200
