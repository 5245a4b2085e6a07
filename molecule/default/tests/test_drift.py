"""The drift check (selfhost.pi.drift) on the converged host: a no-op site.yml ends after one module run,
and a host changed by hand is converged in full and repaired.

The scenario's inventory turns the check off (drift_check: false) so that its
idempotence step runs every role; these runs turn it on.
"""
import re

from conftest import fetch

ON = {"drift_check": True}
END_TASK = "End the play, nothing drifted since the last converge of this declaration"


def recap(result):
    lines = [line for line in result.stdout.splitlines() if line.startswith("selfhost-molecule") and "ok=" in line]
    assert lines, result.stdout[-3000:]
    return dict((key, int(value)) for key, value in re.findall(r"(\w+)=(\d+)", lines[-1]))


def ended_early(result):
    """True when the play ended at the drift check: no role ran, not even the fact gathering after it."""
    return "Read the facts the roles use" not in result.stdout and "selfhost.pi.base" not in result.stdout


def test_a_noop_converge_ends_after_the_drift_check(run_playbook):
    # The idempotence step (a full converge) recorded the host; the drift_* variables are not part of the
    # declaration, so turning the check on finds nothing to do.
    result = run_playbook(ON)
    assert result.returncode == 0, result.stdout[-3000:]
    assert ended_early(result), result.stdout[-3000:]
    counts = recap(result)
    assert counts["changed"] == 0 and counts["failed"] == 0
    assert counts["ok"] <= 4, counts


def test_check_mode_on_an_unchanged_host_ends_as_early(run_playbook):
    result = run_playbook(ON, check=True)
    assert result.returncode == 0, result.stdout[-3000:]
    assert ended_early(result) and recap(result)["changed"] == 0


def test_a_declaration_change_runs_in_full(run_playbook):
    # A variable of another role changes the declaration: the full converge runs (in check mode: the host
    # keeps server_tokens off).
    result = run_playbook(dict(ON, nginx_server_tokens=True), check=True)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "the declaration changed since the last converge" in " ".join(result.stdout.split())
    assert not ended_early(result)


def test_a_host_changed_by_hand_is_converged_in_full_and_repaired(node, spec, run_playbook):
    service = spec["service_specs"][1]
    name, uid = service["name"], service["uid"]
    site = "/etc/nginx/sites-enabled/%s.conf" % name
    unit = "/home/%s/.config/containers/systemd/%s.container" % (name, name)
    user_systemctl = "runuser -u %s -- env XDG_RUNTIME_DIR=/run/user/%d systemctl --user" % (name, uid)
    assert node.run("%s is-active %s.service" % (user_systemctl, name)).stdout.strip() == "active"
    unit_before = node.run("sha256sum %s" % unit).stdout
    assert unit_before
    # By hand, as a careless admin or a hostile container would: a site link removed, the service stopped,
    # its unit file replaced by a link to a root-only file (which root must neither follow nor read).
    assert node.run("rm %s && nginx -s reload" % site).rc == 0
    assert node.run("%s stop %s.service" % (user_systemctl, name)).rc == 0
    assert node.run("runuser -u %s -- ln -sf /etc/shadow %s" % (name, unit)).rc == 0

    result = run_playbook(ON)

    assert result.returncode == 0, result.stdout[-3000:]
    assert not ended_early(result)
    said = " ".join(result.stdout.split())  # the YAML callback folds long lines
    assert "%s: absent (was link" % site in said, said[:3000]
    assert re.search(r"unit %s\.service of %s: (inactive|failed) \(was active\)" % (name, name), said)
    assert "%s: link -> /etc/shadow (was file" % unit in said
    assert "root:" not in result.stdout  # /etc/shadow's content never reached the output
    assert recap(result)["changed"] > 0
    assert node.file(site).is_symlink
    assert not node.file(unit).is_symlink and node.run("sha256sum %s" % unit).stdout == unit_before
    assert node.run("%s is-active %s.service" % (user_systemctl, name)).stdout.strip() == "active"
    status, _ = fetch(node, service["domain"])
    assert status == 200

    again = run_playbook(ON)
    assert again.returncode == 0, again.stdout[-3000:]
    assert ended_early(again) and recap(again)["changed"] == 0
