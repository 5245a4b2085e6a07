"""SSH after the base role: keys only, no root, and the admin still gets in and becomes root."""
from conftest import ssh


def test_admin_logs_in_with_the_inventory_key_and_becomes_root():
    result = ssh("admin", "sudo -n id -u")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "0"


def test_password_login_is_refused():
    # prepare.yml logged in exactly like this, with the admin's real password, before the base role ran.
    result = ssh("admin", "true", password=True)
    assert result.returncode == 255
    assert "Authentications that can continue: publickey\n" in result.stderr
    assert "Permission denied (publickey)" in result.stderr


def test_root_login_is_refused_even_with_an_authorized_key():
    # prepare.yml put the admin's key into root's authorized_keys: only PermitRootLogin stands in the way.
    result = ssh("root", "true")
    assert result.returncode == 255
    assert "Permission denied" in result.stderr


def test_sshd_config_is_valid_and_in_effect(node):
    assert node.run("sshd -t").rc == 0
    effective = dict(line.split(" ", 1) for line in node.check_output("sshd -T").splitlines() if " " in line)
    assert effective["passwordauthentication"] == "no"
    assert effective["kbdinteractiveauthentication"] == "no"
    assert effective["permitrootlogin"] == "no"
    assert effective["maxauthtries"] == "3"
    assert effective["pubkeyauthentication"] == "yes"


def test_a_second_key_from_the_inventory_was_authorized_by_the_role(node):
    # prepare.yml authorized only id_ed25519; the inventory also declares id_second.
    assert "molecule-second" in node.file("/home/admin/.ssh/authorized_keys").content_string
    result = ssh("admin", "sudo -n true", key="id_second")
    assert result.returncode == 0, result.stderr[-2000:]
