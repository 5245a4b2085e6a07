"""`site.yml --check --diff` on a freshly flashed host (issue 10): it runs to
the end, lists what the real converge will do, and changes nothing on it.

The host is the blank test image (debootstrap minbase with systemd, sudo, ssh
and python3; no python3-apt, podman, nginx, restic or hugo), never converged.
"""
import re

import pytest

SNAPSHOT = {
    "packages": "dpkg-query -W -f '${Package} ${Version} ${db:Status-Status}\\n' | sort",
    "passwd": "getent passwd | sort",
    "group": "getent group | sort",
    "etc": "find /etc -xdev -printf '%p %y %m %u:%g %l\\n' | sort"
           " && find /etc -xdev -type f -print0 | sort -z | xargs -0 sha256sum",
    "units": "systemctl list-unit-files --no-legend --no-pager | sort",
    "home": "find /home /srv /var/lib/selfhost-pi /mnt/backup -xdev -printf '%p %y %m %u:%g\\n' 2>/dev/null | sort; true",
}


def snapshot(node):
    state = {}
    for name, cmd in SNAPSHOT.items():
        result = node.run(cmd)
        assert result.rc == 0, (name, result.stderr)
        state[name] = result.stdout
    return state


@pytest.fixture(scope="module")
def plan(node, run_playbook):
    """The blank host before, the check run, and the host after."""
    before = snapshot(node)
    result = run_playbook(check=True)
    after = snapshot(node)
    return before, result, after


def recap(result):
    lines = [line for line in result.stdout.splitlines() if line.startswith("selfhost-plan") and "changed=" in line]
    assert lines, result.stdout[-3000:]
    return dict((key, int(value)) for key, value in re.findall(r"(\w+)=(\d+)", lines[-1]))


def test_the_host_is_blank(node):
    """What the plan is about: none of the programs the converge installs is there."""
    for program in ("podman", "nginx", "restic", "hugo"):
        assert node.run("command -v %s", program).rc != 0, program
    assert node.run("dpkg-query -W python3-apt").rc != 0
    assert node.run("getent passwd greeter").rc != 0


def test_check_runs_to_the_end_without_a_failure(plan):
    dummy, result, dummy = plan
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    counts = recap(result)
    assert counts["failed"] == 0 and counts["unreachable"] == 0 and counts["ignored"] == 0, counts
    assert counts["changed"] > 0, counts
    assert "FAILED!" not in result.stdout and "...ignoring" not in result.stdout
    assert "TASK [Certificates that needed their site first]" in result.stdout  # the play's last task


def test_the_plan_names_packages_users_units_sites_and_the_blog_build(plan, spec):
    dummy, result, dummy = plan
    out = result.stdout
    for package in ("podman", "nginx", "restic", "hugo", "nftables", "python3-cryptography", "webhook"):
        assert re.search(r"^    - %s$" % re.escape(package), out, re.M), package
    for service in spec["service_specs"]:
        assert "+user: %s" % service["name"] in out
        assert "+++ after: /etc/nginx/sites-available/%s.conf" % service["name"] in out
        assert "server_name %s;" % service["domain"] in out
    assert "+user: blog" in out
    assert "+++ after: /home/greeter/.config/containers/systemd/greeter.container" in out
    for unit in ("board.pod", "board-web.container", "board-side.container", "board-job-tick.container"):
        assert "+++ after: /home/board/.config/containers/systemd/%s" % unit in out
    assert "+++ after: /home/board/.config/systemd/user/board-job-tick.timer" in out
    assert "changed: [selfhost-plan] => (item=selfhost-backup.timer)" in out
    assert "server_name %s;" % spec["blog_domain"] in out
    assert "+build main of /var/lib/selfhost-pi/blog.bundle" in out
    assert "certificates signed by it" in out and "greeter.home.arpa" in out
    assert "restic is not installed yet" in out
    assert "+++ after: /etc/nginx/sites-available/webhook.conf" in out or "server_name hooks.plan.test;" in out
    assert "changed: [selfhost-plan] => (item=selfhost-update-greeter.timer)" in out
    assert "changed: [selfhost-plan] => (item=path)" in out  # the blog's rebuild-on-push unit


def test_the_host_did_not_change(plan):
    before, dummy, after = plan
    for name in SNAPSHOT:
        assert after[name] == before[name], name
