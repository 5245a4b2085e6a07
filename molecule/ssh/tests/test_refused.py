"""A bad SSH setting or a bad ruleset is refused: the previous file stays, and SSH still gets in."""
from conftest import BASE, ssh

SSH_DROPIN = "/etc/ssh/sshd_config.d/00-selfhost-pi.conf"
RULES = "/etc/selfhost-pi/firewall.nft"


def checksum(node, path):
    return node.check_output("sha256sum %s", path)


def test_a_bad_ssh_option_is_refused_and_the_previous_file_stays(node, run_playbook):
    before = checksum(node, SSH_DROPIN)
    result = run_playbook({"base_ssh_options": {"NoSuchOption": "yes"}}, playbook=BASE)
    assert result.returncode != 0
    assert "Bad configuration option: NoSuchOption" in result.stdout
    assert checksum(node, SSH_DROPIN) == before
    assert node.run("sshd -t").rc == 0
    assert ssh("admin", "sudo -n true").returncode == 0


def test_a_bad_ruleset_is_refused_and_the_loaded_rules_stay(node, run_playbook):
    before = checksum(node, RULES), node.check_output("nft list table inet selfhost_pi")
    result = run_playbook({"base_firewall_rules": ["tcp dport 70000 accept"]}, playbook=BASE)
    assert result.returncode != 0
    assert "Error: Service out of range" in result.stdout
    assert (checksum(node, RULES), node.check_output("nft list table inet selfhost_pi")) == before
    assert ssh("admin", "sudo -n true").returncode == 0


def test_key_only_login_for_an_admin_without_a_key_is_refused_before_any_change(node, run_playbook):
    before = checksum(node, SSH_DROPIN)
    result = run_playbook({"base_ssh_admin_user": "nokey", "base_ssh_authorized_keys": []}, playbook=BASE)
    assert result.returncode != 0
    assert "would lock nokey out" in result.stdout
    assert checksum(node, SSH_DROPIN) == before
