"""The rest of the base OS: journal, security updates, time, host name, noatime."""
import re

from conftest import BASE, HOST


def test_the_journal_is_capped_and_kept_in_ram(node, spec):
    config = node.check_output("systemd-analyze cat-config systemd/journald.conf")
    assert "Storage=volatile" in config
    assert "RuntimeMaxUse=%s" % spec["base_journald_max_use"] in config
    # journald itself says which cap it runs with (logged when the role's handler restarted it).
    started = [line for line in node.check_output("journalctl -b -u systemd-journald -o cat --no-pager").splitlines()
               if line.startswith("Runtime Journal")]
    assert started and "max %s," % spec["base_journald_max_use"] in started[-1], started


def test_unattended_upgrades_dry_run_takes_security_updates_only(node):
    result = node.run("unattended-upgrade --dry-run --debug")
    output = result.stdout + result.stderr
    assert result.rc == 0, output[-3000:]
    origins = re.search(r"Allowed origins are: (.*)", output).group(1)
    assert origins.split(", ") == ["origin=Debian,codename=trixie-security,label=Debian-Security",
                                   "origin=Debian,codename=trixie,label=Debian-Security"]
    assert node.check_output("apt-config shell V Unattended-Upgrade::Automatic-Reboot") == "V='false'"
    assert node.service("apt-daily-upgrade.timer").is_enabled


def test_time_zone_and_time_sync(node, spec):
    assert node.check_output("timedatectl show -p Timezone --value") == spec["base_timezone"]
    assert node.service("systemd-timesyncd").is_enabled
    # systemd-timesyncd.service has ConditionVirtualization=!container: in this
    # test host it is enabled but does not start (on a Pi it runs).
    assert node.check_output("systemd-detect-virt --container") != "none"
    assert node.check_output("systemctl show -p ConditionResult --value systemd-timesyncd") == "no"


def test_the_host_name_is_the_inventory_name(node):
    # podman bind-mounts /etc/hostname, so this test host cannot be renamed;
    # the role leaves a host whose name already matches alone.
    assert node.file("/etc/hostname").content_string.strip() == HOST


def test_noatime_goes_to_fstab_only_in_check_mode_here(node, run_playbook):
    # Writing a root entry into this container's fstab would make systemd try
    # to remount its overlay root at the next boot: check mode shows the change.
    fstab = node.file("/etc/fstab").content_string
    result = run_playbook({"base_root_filesystem": {"src": "LABEL=rootfs", "fstype": "ext4"}}, playbook=BASE, check=True)
    assert result.returncode == 0, result.stdout[-3000:]
    task = result.stdout.split("Mount the root filesystem with noatime from the next boot on")[1]
    assert task.split("\n", 2)[1].startswith("changed: [%s]" % HOST), task[:500]
    assert node.file("/etc/fstab").content_string == fstab
