"""Features turned off within a service that stays remove what they installed (issue 10).

Runs last (file order): the app loses auto_update (so its update runner and
its update-app hook) and the hook site loses tls (so the certificate the
host's CA made for it). --check --diff first shows the removals and changes
nothing; the converge removes them; a second converge changes nothing. The
app and the blog's hook keep working.
"""
import json
import time

from conftest import fetch

import harness

UNITS = ["/etc/systemd/system/selfhost-update-app.%s" % ext for ext in ("service", "path", "timer")]
GONE = UNITS + ["/etc/selfhost-pi/updates/app.json", "/var/lib/selfhost-pi/requests/update-app",
                "/etc/selfhost-pi/tls/hooks.updates.test"]


def turned_off():
    declared = harness.declared("updates")
    app = {k: v for k, v in declared["service_specs"][0].items()
           if k not in ("auto_update", "update_window", "update_webhook_secret")}
    return {"service_specs": [app], "webhook_tls": "off"}


def recap(result):
    lines = [line for line in result.stdout.splitlines() if line.startswith("selfhost-updates") and "changed=" in line]
    assert lines, result.stdout[-3000:]
    return lines[-1]


def test_turning_auto_update_and_tls_off_removes_what_they_installed(node, run_playbook):
    assert all(node.file(path).exists for path in GONE)

    check = run_playbook(turned_off(), check=True)
    assert check.returncode == 0, check.stdout[-3000:]
    assert "changed=0" not in recap(check)
    assert "selfhost-update-app.timer" in check.stdout and "internal certificate hooks.updates.test" in check.stdout
    assert all(node.file(path).exists for path in GONE), "--check changed the host"

    result = run_playbook(turned_off())
    assert result.returncode == 0, result.stdout[-3000:]
    assert [path for path in GONE if node.file(path).exists] == []
    assert "selfhost-update-app" not in node.run("systemctl list-unit-files 'selfhost-update-*'").stdout
    hooks = json.loads(node.file("/etc/selfhost-pi/webhook/hooks.json").content_string)
    assert [h["id"] for h in hooks] == ["blog"]
    record = json.loads(node.file("/var/lib/selfhost-pi/tls-certificates.json").content_string)
    assert record["internal"] == []
    # What stays still works: the app through nginx, the blog's hook over plain HTTP now (403: unsigned).
    deadline = time.time() + 120  # restarted (its AutoUpdate label went): wait until it is up and answers
    while time.time() < deadline and not (
            node.run("systemctl --user -M app@ is-active app.service").stdout.strip() == "active"
            and fetch(node, "app.updates.test")[0] == 200):
        time.sleep(1)
    assert node.run("systemctl --user -M app@ is-active app.service").stdout.strip() == "active"
    assert fetch(node, "app.updates.test")[0] == 200
    code = node.run("curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Host: hooks.updates.test'"
                    " --data '{}' http://127.0.0.1/hooks/blog").stdout
    assert code == "403", code
    assert node.file("/etc/selfhost-pi/ca/ca.crt").exists  # the CA itself stays

    again = run_playbook(turned_off())
    assert again.returncode == 0, again.stdout[-3000:]
    assert "changed=0" in recap(again), recap(again)
