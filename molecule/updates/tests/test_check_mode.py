"""`site.yml --check --diff` on the converged host (before test_updates.py changes anything): nothing to do.

Runs first (file order): the webhook, blog-rebuild and update-runner tasks all report no change in check mode.
"""


def test_check_mode_on_the_converged_host_changes_nothing(node, run_playbook):
    hooks = node.run("sha256sum /etc/selfhost-pi/webhook/hooks.json /etc/selfhost-pi/updates/app.json").stdout
    result = run_playbook(check=True)
    assert result.returncode == 0, result.stdout[-3000:]
    recap = [line for line in result.stdout.splitlines() if line.startswith("selfhost-updates") and "changed=" in line]
    assert recap and "changed=0" in recap[-1], recap
    assert node.run("sha256sum /etc/selfhost-pi/webhook/hooks.json /etc/selfhost-pi/updates/app.json").stdout == hooks
    # The hooks file holds secrets: --diff must not print them.
    assert "hook-secret-for-molecule" not in result.stdout
