"""selfhost.pi.service_user against a fake passwd/group database and command runner.

useradd, usermod, groupadd, loginctl and systemctl change the machine's accounts
and managers and need root, so they cannot run here: FakeHost stands in for
them (and for chown) and keeps passwd, group, linger and the user managers in
memory. /etc/subuid, /etc/subgid, the linger directory, /run/user and the homes
are real files in a temporary directory.
"""
import grp
import os
import pwd
import shutil
import stat
import types

import pytest
from ansible.module_utils import basic

from ansible_collections.selfhost.pi.plugins.module_utils import service_user as su
from ansible_collections.selfhost.pi.plugins.module_utils.errors import CommandError
from ansible_collections.selfhost.pi.plugins.module_utils.host import Host
from ansible_collections.selfhost.pi.plugins.modules import service_user

from .helpers import run_module

READ_ONLY = ("is-active", "status")


class FakeHost:
    """passwd/group in dicts; useradd & co. edit them, loginctl/systemctl drive linger and managers."""

    def __init__(self, tmp_path, monkeypatch):
        self.tmp = tmp_path
        # What a Raspberry Pi OS / Debian host has: root, a system user and the admin's login.
        self.users = {"root": [0, 0, "root", "/root", "/bin/bash"],
                      "www-data": [33, 33, "www-data", "/var/www", "/usr/sbin/nologin"],
                      "pi": [1000, 1000, "pi,,,", "/home/pi", "/bin/bash"]}
        self.groups = {"root": [0, []], "pi": [1000, []], "www-data": [33, []]}
        self.active = set()
        self.manager_starts = True
        self.linger_starts = True  # logind starts the manager on enable-linger
        self.calls = []
        self.failing = set()  # commands that exit 1
        self.owners = {}
        for key in ("linger", "run_user"):
            (tmp_path / key).mkdir()
        monkeypatch.setattr(su, "PATHS", dict(subuid=str(tmp_path / "subuid"), subgid=str(tmp_path / "subgid"),
                                              linger=str(tmp_path / "linger"),
                                              bus=str(tmp_path / "run_user" / "%d" / "bus")))
        self.clock = [0.0]
        monkeypatch.setattr(su, "time", types.SimpleNamespace(
            time=lambda: self.clock[0], sleep=lambda s: self.clock.__setitem__(0, self.clock[0] + s)))
        self.usergroups_enab = True
        monkeypatch.setattr(su.pwd, "getpwall", lambda: [
            pwd.struct_passwd((n, "x", u[0], u[1], u[2], u[3], u[4])) for n, u in self.users.items()])
        monkeypatch.setattr(su.grp, "getgrall", lambda: [
            grp.struct_group((n, "x", g[0], list(g[1]))) for n, g in self.groups.items()])
        monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda mod, name, required=False: name)
        monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda mod, args, **kw: self.run(args))
        # Record ownership instead of chowning, so the tests need not run as root.
        monkeypatch.setattr(os, "chown", lambda path, uid, gid: self.owners.__setitem__(path, (uid, gid)))
        monkeypatch.setattr(os, "fchown", lambda fd, uid, gid: self.owners.__setitem__(
            os.readlink("/proc/self/fd/%d" % fd), (uid, gid)))
        monkeypatch.setattr(su, "_lstat", self.lstat)
        (tmp_path / "subuid").write_text("# keep me\npi:100000:65536\n")
        (tmp_path / "subgid").write_text("pi:100000:65536\n")

    def lstat(self, path):
        """os.lstat with the owner the faked chown recorded (root when none)."""
        try:
            st = os.lstat(path)
        except OSError:
            return None
        uid, gid = self.owners.get(path, (0, 0))
        return types.SimpleNamespace(st_mode=st.st_mode, st_uid=uid, st_gid=gid)

    def dir_state(self, path):
        return su._dir_state(path)

    def home(self, name="svc"):
        return str(self.tmp / "home" / name)

    def changing_calls(self):
        return [c for c in self.calls if not (c[0] == "systemctl" and c[1] in READ_ONLY)]

    def run(self, args):
        self.calls.append(list(args))
        cmd, rest = args[0], list(args[1:])
        if cmd in self.failing:
            return 1, "", "%s: simulated failure\n" % cmd
        name = rest[-1]
        opts = dict(zip(rest[:-1:2], rest[1:-1:2]))
        if cmd == "groupadd":
            self.groups[name] = [int(opts["--gid"]), []]
        elif cmd == "groupmod":
            old = self.groups[name][0]
            self.groups[name][0] = int(opts["--gid"])
            for user in self.users.values():
                if user[1] == old:
                    user[1] = int(opts["--gid"])
        elif cmd == "groupdel":
            del self.groups[name]
        elif cmd == "useradd":
            self.users[name] = [int(opts["--uid"]), int(opts["--gid"]), opts["--comment"],
                                opts["--home-dir"], opts["--shell"]]
        elif cmd == "usermod":
            fields = {"--uid": 0, "--gid": 1, "--comment": 2, "--home": 3, "--shell": 4}
            for flag, value in opts.items():
                self.users[name][fields[flag]] = int(value) if fields[flag] < 2 else value
        elif cmd == "userdel":
            gid = self.users.pop(name)[1]
            if self.usergroups_enab and name in self.groups and self.groups[name][0] == gid:
                del self.groups[name]  # USERGROUPS_ENAB=yes
        elif cmd == "loginctl":
            path = os.path.join(su.PATHS["linger"], name)
            if rest[0] == "enable-linger":
                open(path, "w").close()
                if self.linger_starts:
                    self.start(self.users[name][0])
            else:
                os.unlink(path)
        elif cmd == "systemctl":
            uid = int(name.split("@")[1].split(".")[0])
            if rest[0] == "is-active":
                return (0, "active\n", "") if uid in self.active else (3, "inactive\n", "")
            if rest[0] == "start":
                self.start(uid)
            elif rest[0] == "stop":
                self.active.discard(uid)
                run_dir = os.path.join(str(self.tmp / "run_user"), str(uid))
                if os.path.isdir(run_dir):
                    shutil.rmtree(run_dir)
            elif rest[0] == "status":
                return 3, "x user@%d.service - User Manager\n   Active: failed\n" % uid, ""
        elif cmd == "journalctl":
            return 0, "systemd[1]: Failed to start user@.service\n", ""
        return 0, "", ""

    def start(self, uid):
        if self.manager_starts:
            self.active.add(uid)
            os.makedirs(os.path.join(str(self.tmp / "run_user"), str(uid)), exist_ok=True)
            open(os.path.join(str(self.tmp / "run_user"), str(uid), "bus"), "w").close()


@pytest.fixture
def host(tmp_path, monkeypatch):
    return FakeHost(tmp_path, monkeypatch)


def run(monkeypatch, host, check_mode=False, **args):
    args.setdefault("name", "svc")
    args.setdefault("home", host.home(args["name"]))
    host.calls = []
    return run_module(monkeypatch, service_user, args, check_mode=check_mode, diff=True)


def test_create_then_idempotent(monkeypatch, host):
    failed, result = run(monkeypatch, host, uid=2001)
    assert not failed and result["changed"]
    assert result["uid"] == result["gid"] == 2001 and result["group"] == "svc"
    assert result["runtime_dir"] == host.tmp.joinpath("run_user", "2001").as_posix()
    assert result["subid_start"] == 2001 * 65536 and result["subid_count"] == 65536
    useradd = [c for c in host.calls if c[0] == "useradd"][0]
    assert ["-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0"] == useradd[-5:-1]
    assert "--no-create-home" in useradd and "--no-user-group" in useradd
    assert host.calls[0] == ["groupadd", "--gid", "2001", "svc"]
    assert host.users["svc"] == [2001, 2001, "selfhost.pi service svc", host.home(), "/usr/sbin/nologin"]
    assert host.dir_state(host.home()) == "0750 2001:2001"
    assert not os.listdir(host.home())
    entry = "svc:131137536:65536\n"
    assert (host.tmp / "subuid").read_text() == "# keep me\npi:100000:65536\n" + entry
    assert (host.tmp / "subgid").read_text() == "pi:100000:65536\n" + entry
    assert stat.S_IMODE(os.stat(str(host.tmp / "subuid")).st_mode) == 0o644
    assert ["loginctl", "enable-linger", "svc"] in host.calls
    assert "+linger: true" not in result["diff"]["before"] and "linger: true" in result["diff"]["after"]
    assert "user: absent" in result["diff"]["before"]

    failed, result = run(monkeypatch, host, uid=2001)
    assert not failed and not result["changed"]
    assert host.changing_calls() == []
    assert result["diff"]["before"] == result["diff"]["after"]


def test_check_mode_changes_nothing(monkeypatch, host):
    failed, result = run(monkeypatch, host, check_mode=True, uid=2001)
    assert not failed and result["changed"]
    assert host.changing_calls() == [] and "svc" not in host.users
    assert not os.path.exists(host.home())
    assert "svc" not in (host.tmp / "subuid").read_text()
    assert "subuid: svc:131137536:65536" in result["diff"]["after"]


def test_drift_is_corrected_with_usermod(monkeypatch, host):
    run(monkeypatch, host, uid=2001)
    host.users["svc"][4] = "/bin/sh"
    os.chmod(host.home(), 0o755)
    failed, result = run(monkeypatch, host, uid=2001)
    assert not failed and result["changed"]
    assert host.changing_calls() == [["usermod", "--shell", "/usr/sbin/nologin", "svc"]]
    assert host.users["svc"][4] == "/usr/sbin/nologin"
    assert host.dir_state(host.home()) == "0750 2001:2001"
    assert "-shell: /bin/sh" not in result["diff"]["before"]  # plain text, the callback adds +/-
    assert "shell: /bin/sh" in result["diff"]["before"]


def test_home_field_changes_without_moving_data(monkeypatch, host):
    run(monkeypatch, host, uid=2001)
    failed, result = run(monkeypatch, host, uid=2001, home=host.home("elsewhere"))
    assert not failed
    assert ["systemctl", "stop", "user@2001.service"] in host.calls  # usermod refuses a busy user
    assert ["usermod", "--home", host.home("elsewhere"), "svc"] in host.calls
    assert os.path.isdir(host.home()) and os.path.isdir(host.home("elsewhere"))
    assert 2001 in host.active  # linger brings the manager back


def test_subid_entries_replaced_other_lines_kept(monkeypatch, host):
    (host.tmp / "subuid").write_text("# keep me\nsvc:5000000:10\npi:100000:65536\n2001:6000000:10\nbad line\n")
    failed, result = run(monkeypatch, host, uid=2001)
    assert not failed
    assert (host.tmp / "subuid").read_text() == "# keep me\nsvc:131137536:65536\npi:100000:65536\nbad line\n"
    assert "subuid: svc:5000000:10, 2001:6000000:10" in result["diff"]["before"]


@pytest.mark.parametrize("args, field", [
    (dict(name="Bad"), "name: "),
    (dict(group="9x"), "group: "),
    (dict(), "uid: required"),
    (dict(uid=70000), "uid: 70000 is outside 1000..65533"),
    (dict(uid=0), "uid: 0 is below 1000"),
    (dict(uid=999), "uid: 999 is below 1000; IDs under 1000 belong to system accounts"),
    (dict(gid=65534), "gid: 65534 is outside"),
    (dict(gid=33), "gid: 33 is below 1000"),
    (dict(home="rel/dir"), "home: "),
    (dict(home="/home"), "home: /home is a system directory"),
    (dict(home_mode="u=rwx"), "home_mode: "),
    (dict(home_mode="0999"), "home_mode: "),
    (dict(shell="/nonexistent/sh"), "shell: /nonexistent/sh does not exist"),
    (dict(comment="a:b"), "comment: "),
    (dict(subid_start=1000), "subid_start: 1000 is below 65536"),
    (dict(subid_start=2 ** 32 - 100), "subid_start: range 4294967196..4295032731 exceeds 4294967295"),
    (dict(subid_count=0), "subid_count: "),
    (dict(manager_timeout=-1), "manager_timeout: "),
    (dict(remove_home=True), "remove_home: only valid with state=absent"),
    (dict(subid_start=100000), "subid_start: range 100000..165535 overlaps"),
    (dict(uid=1000), "uid: 1000 is already used by user pi (UID 1000, comment 'pi,,,', home /home/pi"),
    (dict(gid=1000), "gid: 1000 is already used by group pi; nothing was changed"),
    (dict(group="www-data"), "gid: group www-data already exists with GID 33, not 2001"),
])
def test_bad_input_fails_before_any_change(monkeypatch, host, args, field):
    args.setdefault("uid", 2001) if field != "uid: required" else None
    before = (host.tmp / "subuid").read_text()
    failed, result = run(monkeypatch, host, **args)
    assert failed
    assert result["msg"].startswith(field), result["msg"]
    assert host.changing_calls() == []
    assert (host.tmp / "subuid").read_text() == before
    assert not os.path.exists(host.home())


def test_overlap_message_shows_other_entry(monkeypatch, host):
    failed, result = run(monkeypatch, host, uid=2001, subid_start=120000)
    assert failed and "pi:100000:65536" in result["msg"] and "subuid" in result["msg"]


def test_own_group_is_renumbered(monkeypatch, host):
    run(monkeypatch, host, uid=2001)
    failed, result = run(monkeypatch, host, uid=2001, gid=2005)
    assert not failed and result["changed"]
    assert ["groupmod", "--gid", "2005", "svc"] in host.calls
    assert not [c for c in host.calls if c[0] == "usermod"]
    assert host.users["svc"][1] == 2005 and host.dir_state(host.home()) == "0750 2001:2005"


def test_linger_on_but_manager_stopped_is_started(monkeypatch, host):
    run(monkeypatch, host, uid=2001)
    host.active.clear()
    failed, result = run(monkeypatch, host, check_mode=True, uid=2001)
    assert result["changed"] and host.changing_calls() == []
    failed, result = run(monkeypatch, host, uid=2001)
    assert not failed and result["changed"]
    assert host.changing_calls() == [["systemctl", "start", "--no-block", "user@2001.service"]]


def test_manager_started_when_logind_does_not(monkeypatch, host):
    host.linger_starts = False  # e.g. logind still closing an earlier user with this UID
    failed, result = run(monkeypatch, host, uid=2001)
    assert not failed and host.calls[-3:-1] == [["systemctl", "is-active", "user@2001.service"],
                                                ["systemctl", "start", "--no-block", "user@2001.service"]]
    assert 2001 in host.active


def test_manager_timeout_fails_with_status(monkeypatch, host):
    host.manager_starts = False
    failed, result = run(monkeypatch, host, uid=2001, manager_timeout=1)
    assert failed and result["changed"]
    assert result["msg"].startswith("manager_timeout: user@2001.service not up within 1 s")
    assert "Active: failed" in result["msg"] and "Failed to start" in result["msg"]


def test_linger_false_disables(monkeypatch, host):
    run(monkeypatch, host, uid=2001)
    failed, result = run(monkeypatch, host, uid=2001, linger=False)
    assert not failed and host.changing_calls() == [["loginctl", "disable-linger", "svc"]]
    assert not result["linger"]


def test_absent_keeps_home_unless_asked(monkeypatch, host):
    run(monkeypatch, host, uid=2001)
    failed, result = run(monkeypatch, host, state="absent")
    assert not failed and result["changed"] and result["uid"] == 2001
    assert host.changing_calls() == [["loginctl", "disable-linger", "svc"], ["systemctl", "stop", "user@2001.service", "user-runtime-dir@2001.service"],
                                     ["userdel", "svc"]]
    assert "svc" not in host.users and "svc" not in host.groups
    assert os.path.isdir(host.home())
    assert (host.tmp / "subuid").read_text() == "# keep me\npi:100000:65536\n"
    assert (host.tmp / "subgid").read_text() == "pi:100000:65536\n"
    assert "(kept)" in result["diff"]["after"]

    failed, result = run(monkeypatch, host, state="absent")
    assert not failed and not result["changed"] and host.changing_calls() == []

    failed, result = run(monkeypatch, host, state="absent", remove_home=True)
    assert not failed and result["changed"] and not os.path.exists(host.home())
    failed, result = run(monkeypatch, host, state="absent", remove_home=True)
    assert not failed and not result["changed"]


def test_absent_check_mode_and_leftover_group(monkeypatch, host):
    run(monkeypatch, host, uid=2001)
    failed, result = run(monkeypatch, host, check_mode=True, state="absent", remove_home=True)
    assert result["changed"] and host.changing_calls() == [] and "svc" in host.users
    assert os.path.isdir(host.home())
    host.groups["svc"][1] = ["bob"]  # not empty: the group stays
    failed, result = run(monkeypatch, host, state="absent")
    assert not failed and ["groupdel", "svc"] not in host.calls


def test_absent_refuses_to_remove_system_home(monkeypatch, host):
    host.users["svc"] = [2001, 2001, "selfhost.pi service svc", "/var", "/usr/sbin/nologin"]
    failed, result = run(monkeypatch, host, state="absent", remove_home=True)
    assert failed and result["msg"].startswith("home: refusing to remove /var")
    assert host.changing_calls() == []


def test_parse_mode():
    assert su.parse_mode("0750") == 0o750
    assert su.parse_mode("750") == 0o750
    assert su.parse_mode(0o700) == 0o700
    with pytest.raises(su.ValidationError, match="^home_mode: "):
        su.parse_mode(0o17777)


def test_absent_deletes_own_group_left_by_userdel(monkeypatch, host):
    run(monkeypatch, host, uid=2001)
    host.usergroups_enab = False
    failed, result = run(monkeypatch, host, state="absent")
    assert not failed and host.calls[-1] == ["groupdel", "svc"] and "svc" not in host.groups
    assert "group: svc removed" in result["diff"]["after"]


def test_an_account_selfhost_did_not_make_is_never_renumbered(monkeypatch, host):
    host.users["proxy"] = [13, 13, "proxy", "/bin", "/usr/sbin/nologin"]
    host.groups["proxy"] = [13, []]
    failed, result = run_module(monkeypatch, service_user, dict(name="proxy", uid=2101))
    assert failed
    assert result["msg"].startswith("name: proxy is an existing account that selfhost.pi did not create (UID 13")
    assert host.users["proxy"][0] == 13
    assert [c for c in host.calls if c[0] in ("usermod", "groupmod")] == []


# -- finding 4: never take over an account the collection did not create --------------------------

def assert_untouched(host, name, entry):
    assert host.users[name] == entry
    assert host.changing_calls() == []
    assert not [c for c in host.calls if c[0] in ("usermod", "userdel", "groupmod", "loginctl")]


@pytest.mark.parametrize("args, msg", [
    # The admin's login: uid 1000 is a valid service UID, the account is refused because it is not ours
    # (before the fix: usermod --home /home/pi... --shell /usr/sbin/nologin --comment ... pi).
    (dict(name="pi", uid=1000, home="/home/pi"), "name: pi is an existing account that selfhost.pi did not create "
                                                 "(UID 1000, comment 'pi,,,', home /home/pi, shell /bin/bash); "
                                                 "nothing was changed"),
    (dict(name="pi", uid=1000), "name: pi is an existing account that selfhost.pi did not create"),
    (dict(name="pi", uid=1000, shell="/bin/bash", comment=""), "name: pi is an existing account"),
    # A Debian system user: UIDs below 1000 are refused before the host is read
    # (before the fix: usermod --home /home/www-data --comment ... www-data).
    (dict(name="www-data", uid=33), "uid: 33 is below 1000"),
    (dict(name="www-data", uid=33, home="/var/www"), "uid: 33 is below 1000"),
    (dict(name="www-data", uid=2033), "name: www-data is an existing account that selfhost.pi did not create"),
])
def test_an_existing_account_is_never_taken_over(monkeypatch, host, args, msg):
    name = args["name"]
    entry = list(host.users[name])
    args.setdefault("home", host.home(name))
    failed, result = run(monkeypatch, host, **args)
    assert failed
    assert result["msg"].startswith(msg), result["msg"]
    assert_untouched(host, name, entry)
    assert (host.tmp / "subuid").read_text() == "# keep me\npi:100000:65536\n"


@pytest.mark.parametrize("args", [dict(), dict(remove_home=True), dict(uid=1000)])
def test_absent_never_removes_an_account_it_did_not_create(monkeypatch, host, args):
    entry = list(host.users["pi"])
    os.makedirs(str(host.tmp / "run_user" / "1000"))  # the admin is logged in
    failed, result = run(monkeypatch, host, name="pi", home="/home/pi", state="absent", **args)
    assert failed and result["msg"].startswith("name: pi is an existing account that selfhost.pi did not create")
    assert "nothing was changed" in result["msg"]
    assert_untouched(host, "pi", entry)
    assert (host.tmp / "subuid").read_text() == "# keep me\npi:100000:65536\n"


def test_absent_leaves_another_accounts_uid_alone(monkeypatch, host):
    """The user is gone and its old UID now belongs to pi: pi's manager and subids are not leftovers."""
    os.makedirs(str(host.tmp / "run_user" / "1000"))
    (host.tmp / "subuid").write_text("1000:100000:65536\n")
    failed, result = run(monkeypatch, host, name="gone", uid=1000, state="absent")
    assert not failed and not result["changed"]
    assert host.changing_calls() == []
    assert (host.tmp / "subuid").read_text() == "1000:100000:65536\n"


def test_home_of_another_account_is_refused(monkeypatch, host):
    failed, result = run(monkeypatch, host, uid=2001, home="/var/www")
    assert failed and result["msg"].startswith("home: /var/www is the home of www-data (UID 33"), result["msg"]
    assert "nothing was changed" in result["msg"]
    assert host.changing_calls() == []


def test_home_directory_owned_by_another_account_is_refused(monkeypatch, host):
    os.makedirs(host.home("shared"))
    host.owners[host.home("shared")] = (1000, 1000)
    failed, result = run(monkeypatch, host, uid=2001, home=host.home("shared"))
    assert failed and result["msg"].startswith("home: %s belongs to pi (UID 1000" % host.home("shared"))
    assert host.changing_calls() == [] and host.owners[host.home("shared")] == (1000, 1000)


def test_home_left_by_a_removed_user_or_made_by_root_is_taken(monkeypatch, host):
    os.makedirs(host.home())
    host.owners[host.home()] = (2999, 2999)  # no account has UID 2999 any more
    failed, result = run(monkeypatch, host, uid=2001)
    assert not failed and host.dir_state(host.home()) == "0750 2001:2001"
    os.makedirs(host.home("other"))  # made by root
    failed, result = run(monkeypatch, host, name="other", uid=2002)
    assert not failed and host.dir_state(host.home("other")) == "0750 2002:2002"


def test_account_made_by_the_previous_version_converges_unchanged(monkeypatch, host):
    """What the previous version left (useradd --comment 'selfhost.pi service svc', home, subids, linger)."""
    host.users["svc"] = [2001, 2001, "selfhost.pi service svc", host.home(), "/usr/sbin/nologin"]
    host.groups["svc"] = [2001, []]
    os.makedirs(host.home(), 0o750)
    os.chmod(host.home(), 0o750)
    host.owners[host.home()] = (2001, 2001)
    for kind in ("subuid", "subgid"):
        with open(str(host.tmp / kind), "a") as handle:
            handle.write("svc:131137536:65536\n")
    open(str(host.tmp / "linger" / "svc"), "w").close()
    host.start(2001)
    failed, result = run(monkeypatch, host, uid=2001)
    assert not failed and not result["changed"], result
    assert host.changing_calls() == []


def test_custom_comment_marks_the_account(monkeypatch, host):
    failed, result = run(monkeypatch, host, uid=2001, comment="Gitea")
    assert not failed and host.users["svc"][2] == "Gitea"
    failed, result = run(monkeypatch, host, uid=2001, comment="Gitea")
    assert not failed and not result["changed"]
    # Another comment: the account no longer carries a mark this play recognises.
    failed, result = run(monkeypatch, host, uid=2001, comment="Forgejo")
    assert failed and result["msg"].startswith("name: svc is an existing account that selfhost.pi did not create")
    failed, result = run(monkeypatch, host, uid=2001, comment="selfhost.pi forgejo")
    assert failed
    # A comment that starts with the mark can be changed: it is always the collection's.
    host.users["svc"][2] = "selfhost.pi service svc"
    failed, result = run(monkeypatch, host, uid=2001, comment="selfhost.pi forgejo")
    assert not failed and result["changed"] and host.users["svc"][2] == "selfhost.pi forgejo"


def test_an_empty_comment_is_never_a_mark(monkeypatch, host):
    host.users["admin"] = [1001, 1001, "", "/home/admin", "/bin/bash"]  # useradd without --comment
    failed, result = run(monkeypatch, host, name="admin", uid=1001, comment="", shell="/bin/sh")
    assert failed and result["msg"].startswith("name: admin is an existing account that selfhost.pi did not create")
    assert host.users["admin"] == [1001, 1001, "", "/home/admin", "/bin/bash"]


# -- the services module runs the same code through ModuleHost(module).checked() --------------------

@pytest.mark.parametrize("name, uid, msg", [
    ("pi", 1000, "services[0] (pi): name: pi is an existing account that selfhost.pi did not create"),
    ("www-data", 33, "services[0].uid: 33 is below 1000"),
])
def test_services_module_refuses_a_takeover(monkeypatch, host, name, uid, msg):
    from ansible_collections.selfhost.pi.plugins.modules import services
    entry = list(host.users[name])
    spec = {"name": name, "uid": uid, "image": "localhost/%s:1" % name, "publish_ports": ["127.0.0.1:8001:8080"]}
    host.calls = []
    failed, result = run_module(monkeypatch, services, {"services": [spec]})
    assert failed and result["msg"].startswith("nothing was changed: ")
    assert msg in result["msg"], result["msg"]
    assert_untouched(host, name, entry)



# -- plan, diff, apply on a Host (what the services module does) -------------------------------------

class FakeCommandHost(Host):
    """A Host whose commands go to FakeHost (useradd & co. cannot run here)."""

    def __init__(self, fake):
        self.fake = fake
        self.warnings = []

    def _run(self, argv, data=None, cwd=None, env=None):
        return self.fake.run(argv)

    def which(self, name, required=False):
        return name

    def warn(self, msg):
        self.warnings.append(msg)


def spec(host, **args):
    args.setdefault("name", "svc")
    args.setdefault("home", host.home(args["name"]))
    return su.normalize(args)


def test_plan_reads_only_and_apply_runs_the_steps(host):
    user = su.ServiceUser(FakeCommandHost(host), spec(host, uid=2001))
    plan = user.plan()
    assert plan.changed and not user.changed
    assert host.changing_calls() == [] and "svc" not in host.users and not os.path.exists(host.home())
    assert [c[0] for c in plan.commands] == ["groupadd", "useradd"]
    assert plan.home and len(plan.subids) == 2 and plan.set_linger == ["loginctl", "enable-linger", "svc"]
    assert plan.stop == [] and not plan.start_manager
    diff = user.diff(plan)
    assert "user: absent" in diff["before"] and "uid: 2001" in diff["after"]

    user.apply(plan)
    assert user.changed and host.users["svc"][0] == 2001 and 2001 in host.active
    assert [c[0] for c in host.changing_calls()] == ["groupadd", "useradd", "loginctl"]

    again = su.ServiceUser(FakeCommandHost(host), spec(host, uid=2001))
    plan = again.plan()
    assert not plan.changed
    assert again.diff(plan)["before"] == again.diff(plan)["after"]


def test_renumbering_plans_a_stop_of_the_old_manager(monkeypatch, host):
    run(monkeypatch, host, uid=2001)
    plan = su.ServiceUser(FakeCommandHost(host), spec(host, uid=2002)).plan()
    assert plan.stop == ["user@2001.service", "user-runtime-dir@2001.service"]
    assert plan.commands == [["groupmod", "--gid", "2002", "svc"], ["usermod", "--uid", "2002", "svc"]]


def test_a_checked_host_plans_and_never_applies(host):
    result = su.ServiceUser(FakeCommandHost(host).checked(), spec(host, uid=2001)).converge()
    assert result["changed"] and "useradd" not in result["diff"]["after"]
    assert host.changing_calls() == [] and "svc" not in host.users


def test_a_failing_command_raises_and_the_module_reports_it(monkeypatch, host):
    host.failing = {"useradd"}
    user = su.ServiceUser(FakeCommandHost(host), spec(host, uid=2001))
    with pytest.raises(CommandError, match=r"^useradd --uid 2001 .* failed \(rc=1\): useradd: simulated failure$"):
        user.converge()
    assert user.changed  # groupadd ran

    del host.groups["svc"]
    failed, result = run(monkeypatch, host, uid=2001)
    assert failed and result["changed"] and result["rc"] == 1
    assert result["msg"].startswith("useradd --uid 2001")
    assert result["cmd"][0] == "useradd" and "simulated failure" in result["stderr"]
