"""The services module's record and the removal of recorded services that left the list.

The host is a fake that answers systemctl, loginctl, nginx -t and the final
snapshot command; the files are real, in temporary directories (the service
user's home, nginx's sites-*, the linger directory, the record).
"""
import collections
import json
import os
import pwd
import stat

import pytest

from ansible_collections.selfhost.pi.plugins.filter.service_spec_conflicts import service_spec_conflicts
from ansible_collections.selfhost.pi.plugins.module_utils import (
    managed_record, nginx, quadlet, quadlet_render, service_prune, service_set, service_user, systemd)
from ansible_collections.selfhost.pi.plugins.module_utils.errors import HostStateError, ValidationError
from ansible_collections.selfhost.pi.plugins.module_utils.host import Host
from ...argv import runuser_user, unwrap

Pw = collections.namedtuple("Pw", "pw_name pw_uid pw_gid pw_dir pw_shell pw_gecos")
HEADER = quadlet_render.HEADER


class FakeHost(Host):
    def __init__(self, check_mode=False):
        self.check_mode = check_mode
        self.calls = []
        self.warnings = []
        self.active = {}
        self.snapshot_rc = 0
        self.snapshot_input = []

    def checked(self):
        other = FakeHost(True)
        other.calls, other.warnings, other.active = self.calls, self.warnings, self.active
        other.snapshot_rc, other.snapshot_input = self.snapshot_rc, self.snapshot_input
        return other

    def which(self, name, required=False):
        return "/usr/bin/" + name

    def warn(self, msg):
        self.warnings.append(msg)

    def run_as(self, user, argv, data=None, cwd=None, env=None, check=True, what=None):
        # as root, through runuser (host.py), so the fake sees whose command it is
        return Host.run_as(self, user, argv, data=data, cwd=cwd, env=env, check=check, what=what)

    def verbs(self):
        out = []
        for who, argv in self.calls:
            name = os.path.basename(argv[0])
            if name == "systemctl":
                args = [a for a in argv[1:] if a not in ("--user",) and not a.startswith("--property")]
                out.append(("%s: " % who if who else "") + " ".join(args))
            else:
                out.append(" ".join([name] + argv[1:]))
        return out

    def _run(self, argv, data=None, cwd=None, env=None):
        who = runuser_user(argv)
        argv = unwrap(argv)
        self.calls.append((who, list(argv)))
        name = os.path.basename(argv[0])
        if name == "systemctl":
            args = [a for a in argv[1:] if a != "--user"]
            verb, units = args[0], [a for a in args[1:] if not a.startswith("--")]
            if verb == "show":
                return 0, "\n\n".join("Id=%s\nActiveState=%s\nSubState=x\nNeedDaemonReload=no"
                                      % (u, self.active.get(u, "inactive")) for u in units) + "\n", ""
            if verb == "is-active":
                return 0, "active\n", ""
            if verb == "stop":
                for unit in units:
                    self.active[unit] = "inactive"
            return 0, "", ""
        if name == "selfhost-backup" or name == "my-snapshot":
            self.snapshot_input.append(json.loads(data))
            return self.snapshot_rc, "", "restic: repository is locked\n" if self.snapshot_rc else ""
        return 0, "", ""


@pytest.fixture
def env(monkeypatch, tmp_path):
    """A host with the user gamma (UID 2803) as a converge left it, backups configured."""
    home = tmp_path / "home" / "gamma"
    units = home / ".config" / "containers" / "systemd"
    units.mkdir(parents=True)
    (units / "gamma.container").write_text(HEADER + "\n[Container]\nImage=x\n")
    (units / "gamma-sidecar.container").write_text("[Container]\nImage=x\n")  # a person's: no header
    (units / "notes.txt").write_text("mine\n")
    volume = home / ".local/share/containers/storage/volumes/gamma-data/_data"
    volume.mkdir(parents=True)
    (volume / "db").write_text("data\n")
    conf = tmp_path / "nginx"
    (conf / "sites-available").mkdir(parents=True)
    (conf / "sites-enabled").mkdir()
    (conf / "sites-available" / "gamma.conf").write_text(nginx.HEADER + "server {}\n")
    os.symlink(str(conf / "sites-available" / "gamma.conf"), str(conf / "sites-enabled" / "gamma.conf"))
    (conf / "sites-enabled" / "handmade.conf").write_text("server {}\n")
    linger = tmp_path / "linger"
    linger.mkdir()
    (linger / "gamma").write_text("")
    bus = tmp_path / "run"
    bus.mkdir()
    backup_config = tmp_path / "backup.json"
    backup_config.write_text("{}")
    program = tmp_path / "selfhost-backup"
    program.write_text("#!/bin/sh\n")
    users = {"gamma": Pw("gamma", 2803, 2803, str(home), "/usr/sbin/nologin", "selfhost.pi service gamma")}

    def getpwnam(name):
        if name not in users:
            raise KeyError(name)
        return users[name]

    monkeypatch.setattr(pwd, "getpwnam", getpwnam)
    monkeypatch.setattr(nginx, "CONF_DIR", str(conf))
    monkeypatch.setitem(service_user.PATHS, "linger", str(linger))
    monkeypatch.setattr(service_prune, "BACKUP_CONFIG", str(backup_config))
    monkeypatch.setattr(service_prune, "SELFHOST_BACKUP", str(program))
    # gamma's manager runs: its bus exists.
    monkeypatch.setattr(systemd, "BUS_PATH", str(bus) + "/%d.bus")
    (bus / "2803.bus").write_text("")
    record = tmp_path / "state" / "managed.json"
    data = {"name": "gamma", "uid": 2803, "home": str(home), "paths": [str(volume)], "sqlite": [],
            "pre_backup": []}
    managed_record.write(str(record), {"version": 1, "retired": {}, "services": {
        "gamma": {"uid": 2803, "home": str(home), "units": ["gamma.container"], "site": "gamma",
                  "domain": "gamma.test", "data": data}}})
    ns = collections.namedtuple("Env", "home units volume conf linger record backup_config tmp")
    return ns(home, units, volume, conf, linger, record, backup_config, tmp_path)


def params(env, **extra):
    out = {"services": [], "record": str(env.record), "prune": True, "prune_users": False, "prune_data": [],
           "final_snapshot": "auto", "manager_timeout": 1, "nginx_listen": ["80"], "tls_default": "off",
           "default_service_options": {}}
    out.update(extra)
    return out


def test_check_mode_lists_the_removal_and_changes_nothing(env):
    host = FakeHost(check_mode=True)
    host.active["gamma.service"] = "active"
    before = env.record.read_text()
    result, failures = service_set.converge(host, params(env), diff=True)
    assert not failures and result["changed"]
    [gone] = result["removed"]
    assert gone["units"] == [str(env.units / "gamma.container")]
    assert gone["site"] == str(env.conf / "sites-available" / "gamma.conf")
    assert gone["data_kept"] == [str(env.home)] and not gone["user_removed"]
    headers = [d["after_header"] for d in result["diff"]]
    assert "%s (absent)" % (env.units / "gamma.container") in headers
    assert "%s (absent)" % (env.conf / "sites-available" / "gamma.conf") in headers
    assert not [h for h in headers if "sidecar" in h or "handmade" in h or "notes.txt" in h]
    assert any("would be removed" in w and "its data is kept in %s" % env.home in w for w in host.warnings)
    # Nothing moved: only reads ran.
    assert env.record.read_text() == before
    assert (env.units / "gamma.container").exists() and (env.conf / "sites-enabled" / "gamma.conf").exists()
    assert (env.linger / "gamma").exists()
    assert [v for v in host.verbs() if not v.startswith("gamma: show")] == []
    assert host.snapshot_input == []


def test_removal_snapshots_then_stops_and_removes_only_its_own_files(env):
    host = FakeHost()
    host.active["gamma.service"] = "active"
    result, failures = service_set.converge(host, params(env))
    assert not failures, failures
    verbs = host.verbs()
    snap = [i for i, v in enumerate(verbs) if "--final gamma" in v]
    stop = verbs.index("gamma: stop gamma.service")
    assert snap and snap[0] < stop  # the last snapshot is taken while the service still runs
    assert "gamma: daemon-reload" in verbs
    assert "nginx -t" in verbs and verbs.count("reload nginx.service") == 1
    assert "loginctl disable-linger gamma" in verbs
    assert not [v for v in verbs if v.startswith("userdel")]
    # The snapshot got the recorded data entry on stdin.
    assert host.snapshot_input[0]["paths"] == [str(env.volume)]
    # Its managed files are gone; a person's files and the data stay.
    assert not (env.units / "gamma.container").exists()
    assert (env.units / "gamma-sidecar.container").exists() and (env.units / "notes.txt").exists()
    assert not os.path.lexists(str(env.conf / "sites-enabled" / "gamma.conf"))
    assert not (env.conf / "sites-available" / "gamma.conf").exists()
    assert (env.conf / "sites-enabled" / "handmade.conf").exists()
    assert (env.volume / "db").read_text() == "data\n"
    # The record: no longer a service, its UID retired; written atomically, root only.
    record = json.loads(env.record.read_text())
    assert record["services"] == {}
    assert record["retired"]["gamma"]["uid"] == 2803 and not record["retired"]["gamma"]["user_removed"]
    assert stat.S_IMODE(os.stat(str(env.record)).st_mode) == 0o600
    assert "was removed" in result["removed"][0]["msg"] and str(env.home) in result["removed"][0]["msg"]
    # Idempotent: nothing is left to remove, the record stays as it is.
    host2 = FakeHost()
    result, failures = service_set.converge(host2, params(env))
    assert not failures and not result["changed"] and result["removed"] == []
    assert host2.calls == []


def test_a_failing_snapshot_leaves_the_service_as_it_was(env):
    host = FakeHost()
    host.snapshot_rc = 1
    host.active["gamma.service"] = "active"
    result, failures = service_set.converge(host, params(env))
    assert failures and "final snapshot failed" in failures[0] and "repository is locked" in failures[0]
    assert (env.units / "gamma.container").exists()
    assert (env.conf / "sites-available" / "gamma.conf").exists()
    assert not [v for v in host.verbs() if "stop" in v or "linger" in v]
    assert "gamma" in json.loads(env.record.read_text())["services"]  # still recorded: tried again next time


def test_final_snapshot_settings(env, tmp_path):
    assert service_prune.snapshot_command(False, "x")[0] is None
    argv, why = service_prune.snapshot_command("auto", "x", backup_config=str(tmp_path / "none"))
    assert argv is None and "not configured" in why
    with pytest.raises(HostStateError) as err:
        service_prune.snapshot_command(True, "x", backup_config=str(tmp_path / "none"))
    assert err.value.field == "final_snapshot"
    assert service_prune.snapshot_command("my-snapshot --tag 'last one'", "x")[0] == [
        "my-snapshot", "--tag", "last one", "x"]
    host = FakeHost()
    result, failures = service_set.converge(host, params(env, final_snapshot="/opt/my-snapshot"))
    assert not failures and host.snapshot_input[0]["name"] == "gamma"


def test_no_snapshot_without_backups_says_so(env):
    os.unlink(str(env.backup_config))
    host = FakeHost()
    result, failures = service_set.converge(host, params(env))
    assert not failures and host.snapshot_input == []
    assert "no last snapshot: backups are not configured" in result["removed"][0]["msg"]


def test_prune_off_leaves_it_and_keeps_it_recorded(env):
    host = FakeHost()
    before = env.record.read_text()
    result, failures = service_set.converge(host, params(env, prune=False))
    assert not failures and result["removed"] == [] and not result["changed"]
    assert any("prune is off" in w for w in host.warnings)
    assert env.record.read_text() == before and (env.units / "gamma.container").exists()


def test_a_site_made_by_hand_is_kept(env):
    (env.conf / "sites-available" / "gamma.conf").write_text("server { listen 81; }\n")  # no header
    host = FakeHost()
    result, failures = service_set.converge(host, params(env))
    assert not failures
    assert (env.conf / "sites-available" / "gamma.conf").exists()
    assert result["removed"][0]["site_kept"] and "nginx -t" not in host.verbs()
    assert any("site of the removed service gamma was kept" in w for w in host.warnings)


@pytest.fixture
def removed_users(monkeypatch):
    """ServiceUser replaced by a fake: the (name, remove_home) of each account removal it was asked for."""
    removed = []

    class FakeUser:
        def __init__(self, host, spec):
            self.host, self.spec = host, spec

        def converge(self):
            if not self.host.check_mode:
                removed.append((self.spec["name"], self.spec.get("remove_home")))
            return {"changed": True, "diff": {"before": "user gamma\n", "after": "absent\n"}}

    monkeypatch.setattr(service_prune, "ServiceUser", FakeUser)
    return removed


def test_users_and_data_only_on_request(env, removed_users):
    result, failures = service_set.converge(FakeHost(), params(env, prune_users=True))
    assert not failures and removed_users == [("gamma", False)]
    record = json.loads(env.record.read_text())
    assert record["retired"]["gamma"] == {"uid": 2803, "home": str(env.home), "user_removed": True,
                                          "data_removed": False}


def test_data_is_deleted_only_for_a_named_removed_service(env, removed_users):
    result, failures = service_set.converge(FakeHost(), params(env, prune_data=["gamma"]))
    assert not failures and removed_users == [("gamma", True)]
    assert result["removed"][0]["data_kept"] == []


def test_prune_data_of_a_declared_service_is_refused(env):
    spec = {"name": "alpha", "uid": 2801, "image": "x", "publish_ports": ["127.0.0.1:9281:8080"]}
    with pytest.raises(ValidationError) as err:
        service_set.converge(FakeHost(), params(env, services=[spec], prune_data=["alpha"]))
    assert "prune_data[0]: alpha is declared" in str(err.value)


def test_a_retired_uid_is_refused_for_another_name_before_anything(env):
    host = FakeHost()
    service_set.converge(host, params(env))  # gamma retired
    host = FakeHost()
    delta = {"name": "delta", "uid": 2803, "image": "x", "publish_ports": ["127.0.0.1:9284:8080"]}
    with pytest.raises(ValidationError) as err:
        service_set.converge(host, params(env, services=[dict(delta, name="eps", uid=2804,
                                                                publish_ports=["127.0.0.1:9285:8080"]), delta]))
    assert "services[1].uid: 2803 belonged to the removed service gamma" in str(err.value)
    assert host.calls == []


def test_a_recorded_service_leaving_gives_its_uid_to_nobody_in_the_same_run(env):
    delta = {"name": "delta", "uid": 2803, "image": "x", "publish_ports": ["127.0.0.1:9284:8080"]}
    host = FakeHost()
    with pytest.raises(ValidationError) as err:
        service_set.converge(host, params(env, services=[delta]))
    assert "services[0].uid: 2803 belonged to the removed service gamma" in str(err.value)
    assert host.calls == [] and (env.units / "gamma.container").exists()


# -- the record itself, and the filter that reads it in the role's validation -----------------------------------


def test_record_parse_and_write(tmp_path):
    assert managed_record.load(str(tmp_path / "none.json")) is None
    path = tmp_path / "d" / "managed.json"
    rec = managed_record.empty()
    rec["retired"]["x"] = {"uid": 2900}
    assert managed_record.write(str(path), rec)
    assert not managed_record.write(str(path), rec)  # unchanged: not written again
    assert managed_record.load(str(path)) == rec
    assert [p.name for p in path.parent.iterdir()] == ["managed.json"]  # no temporary file left
    path.write_text("{not json")
    with pytest.raises(HostStateError):
        managed_record.load(str(path))
    path.write_text('{"services": []}')
    with pytest.raises(HostStateError):
        managed_record.load(str(path))


def test_uid_errors():
    rec = {"services": {"beta": {"uid": 2802}}, "retired": {"gamma": {"uid": 2803}}}
    ok = [{"name": "alpha", "uid": 2801}, {"name": "beta", "uid": 2802}]
    assert managed_record.uid_errors(ok, rec) == []
    assert managed_record.uid_errors(ok + [{"name": "gamma", "uid": 2803}], rec) == []  # it comes back
    assert managed_record.uid_errors(ok, None) == []
    errors = managed_record.uid_errors(ok + [{"name": "delta", "uid": 2803}], rec, var="service_specs")
    assert errors and errors[0].startswith("service_specs[2].uid: 2803 belonged to the removed service gamma")
    # beta leaves in this run: its UID is not for delta either
    errors = managed_record.uid_errors([{"name": "delta", "uid": 2802}], rec)
    assert errors[0].startswith("services[0].uid: 2802 belonged to the removed service beta")
    errors = managed_record.uid_errors([{"name": "gamma", "uid": 2809}], rec)
    assert errors[0].startswith("services[0].uid: gamma was removed with UID 2803")


def test_the_role_filter_reads_the_slurped_record():
    text = json.dumps({"version": 1, "services": {}, "retired": {"gamma": {"uid": 2803}}})
    specs = [{"name": "delta", "uid": 2803, "image": "x", "publish_ports": ["127.0.0.1:9284:8080"]}]
    errors = service_spec_conflicts(specs, record=text)
    assert errors and errors[0].startswith("service_specs[0].uid: 2803 belonged to the removed service gamma")
    assert service_spec_conflicts(specs, record="") == []
    assert service_spec_conflicts(specs, record="{broken") == []  # the module reports it


def test_a_host_without_a_record_adopts_the_declared_services_and_removes_nothing(env):
    os.unlink(str(env.record))  # converged before the record existed; gamma was made then, or by hand
    host = FakeHost()
    result, failures = service_set.converge(host, params(env))
    assert not failures and result["removed"] == [] and host.calls == []
    assert (env.units / "gamma.container").exists() and (env.conf / "sites-available" / "gamma.conf").exists()
    assert json.loads(env.record.read_text()) == {"version": 1, "services": {}, "retired": {}}
    # gamma is still not recorded: the next converge leaves it alone too.
    result, failures = service_set.converge(FakeHost(), params(env))
    assert not failures and result["removed"] == [] and not result["changed"]


def test_a_domain_taken_off_removes_only_the_site_the_collection_wrote(env, monkeypatch):
    generator = env.tmp / "quadlet"
    generator.write_text("#!/bin/sh\n")
    generator.chmod(0o755)
    monkeypatch.setattr(quadlet, "GENERATOR", str(generator))

    class Host(FakeHost):
        def _run(self, argv, data=None, cwd=None, env=None):
            if os.path.basename(unwrap(argv)[0]) == "quadlet":  # the generator's dry run accepts the unit
                return 0, "---gamma.service---\n", ""
            return FakeHost._run(self, argv, data=data, cwd=cwd, env=env)

    spec = {"name": "gamma", "uid": 2803, "image": "localhost/x:1"}
    host = Host(check_mode=True)
    result, failures = service_set.converge(host, params(env, services=[spec]), diff=True)
    [svc] = result["services"]
    site = str(env.conf / "sites-available" / "gamma.conf")
    assert svc["site_removed"] == site and svc["site"] is None
    assert "%s (absent)" % site in [d["after_header"] for d in result["diff"]]
    assert os.path.exists(site)  # check mode: only listed
    assert json.loads(env.record.read_text())["services"]["gamma"]["site"] == "gamma"


def test_removable_site_keeps_what_a_person_made(env):
    available, enabled = env.conf / "sites-available", env.conf / "sites-enabled"
    site, kept = service_prune.removable_site("gamma")
    assert site is not None and kept is None
    assert service_prune.removable_site("nothing") == (None, None)
    (available / "mine.conf").write_text("server {}\n")
    assert "header" in service_prune.removable_site("mine")[1]
    (available / "copied.conf").write_text(nginx.HEADER + "server {}\n")
    (enabled / "copied.conf").write_text(nginx.HEADER + "server {}\n")
    assert "not a link" in service_prune.removable_site("copied")[1]
    os.symlink(str(available / "mine.conf"), str(enabled / "other.conf"))
    (available / "other.conf").write_text(nginx.HEADER + "server {}\n")
    assert "points elsewhere" in service_prune.removable_site("other")[1]
