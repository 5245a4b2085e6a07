"""selfhost.pi.services: checks before changes, per-service isolation, one nginx pass.

The steps themselves (user, Quadlet unit, nginx site) have their own tests;
here they are replaced by recorders so the orchestration is what is tested.
"""
import json
import os

import pytest

from ansible_collections.selfhost.pi.plugins.module_utils import service_set, service_spec
from ansible_collections.selfhost.pi.plugins.module_utils.errors import CommandError
from ansible_collections.selfhost.pi.plugins.modules import services

from .helpers import run_module


def spec(name, uid, port, **extra):
    base = {"name": name, "uid": uid, "image": "localhost/%s:1" % name,
            "publish_ports": ["127.0.0.1:%d:8080" % port], "domain": "%s.test" % name}
    base.update(extra)
    return base


class Recorder:
    """Stands in for ServiceUser, unit_set.converge and nginx.apply_sites."""

    def __init__(self, monkeypatch, tmp_path):
        self.calls = []
        self.user_changed = {}   # name -> bool (plan)
        self.unit_changed = {}   # name -> bool (plan)
        self.fail_unit = set()
        self.site_changed = True
        self.units = {}          # user -> the units handed to unit_set.converge
        rec = self

        class FakeUser:
            def __init__(self, module, spec):
                self.module, self.spec = module, spec

            def converge(self):
                rec.calls.append(("user", self.spec["name"], self.module.check_mode))
                return {"changed": rec.user_changed.get(self.spec["name"], False), "uid": self.spec["uid"],
                        "diff": {"before": "", "after": "user\n"}}

        class FakePlan:  # unit_set.converge raises, as every module_utils does
            def __init__(self, host, user, units, restart):
                self.user, self.units, self.restart = user, units, restart
                self.changed = rec.unit_changed.get(user, False)
                for unit in units:
                    unit.setdefault("path", "/x/%s" % unit["fname"])

            def results(self):
                return [dict(fname=u["fname"], path=u["path"], service=u["service"], changed=self.changed)
                        for u in self.units]

            def diffs(self):
                return []

        def fake_converge(host, user, home, units, manager_timeout=30, wait=True, restart=()):
            rec.calls.append(("unit", user, host.check_mode))
            rec.units[user] = units
            if not host.check_mode and user in rec.fail_unit:
                raise CommandError("systemctl start %s.service failed" % user)
            return FakePlan(host, user, units, restart)

        class FakeSite:
            def __init__(self, name, content):
                self.name, self.content, self.path = name, content, "/etc/nginx/sites-available/%s.conf" % name
                self.changed = rec.site_changed

            def diff(self):
                return [{"before": "", "after": self.content}]

        def fake_apply(module, sites, reload=True):
            rec.calls.append(("nginx", sorted(s.name for s in sites), module.check_mode))
            return {"reloaded": True}

        monkeypatch.setattr(service_set, "ServiceUser", FakeUser)
        monkeypatch.setattr(service_set.unit_set, "converge", fake_converge)
        monkeypatch.setattr(service_set.nginx, "Site", FakeSite)
        monkeypatch.setattr(service_set.nginx, "apply_sites", fake_apply)

    def applied(self):
        return [c for c in self.calls if not c[2]]


@pytest.fixture
def rec(monkeypatch, tmp_path):
    return Recorder(monkeypatch, tmp_path)


def test_noop_run_changes_nothing_and_applies_nothing(monkeypatch, rec):
    rec.site_changed = False
    args = {"services": [spec("a", 2001, 8001), spec("b", 2002, 8002)]}
    failed, result = run_module(monkeypatch, services, args)
    assert not failed and result["changed"]  # the first run writes the record (test_services_prune.py)
    rec.calls = []
    failed, result = run_module(monkeypatch, services, args)
    assert not failed and not result["changed"]
    assert rec.applied() == []
    assert [s["name"] for s in result["services"]] == ["a", "b"]


def test_only_changed_services_are_applied_and_nginx_runs_once(monkeypatch, rec):
    rec.unit_changed = {"b": True}
    failed, result = run_module(monkeypatch, services, {"services": [spec("a", 2001, 8001), spec("b", 2002, 8002)]})
    assert not failed and result["changed"]
    assert rec.applied() == [("user", "b", False), ("unit", "b", False), ("nginx", ["a", "b"], False)]
    assert result["nginx_reloaded"] is True


def test_check_mode_applies_nothing(monkeypatch, rec):
    rec.unit_changed = {"a": True}
    failed, result = run_module(monkeypatch, services, {"services": [spec("a", 2001, 8001)]}, check_mode=True, diff=True)
    assert not failed and result["changed"]
    assert rec.applied() == []
    assert result["diff"]


@pytest.mark.parametrize("mutate,field", [
    (lambda s: s[1].update(name="a"), "services[1].name: a is already used by services[0] (a)"),
    (lambda s: s[1].update(uid=2001), "services[1].uid: 2001"),
    (lambda s: s[1].update(publish_ports=["8001:80"]), "services[1].publish_ports[0]: host port 8001/tcp"),
    (lambda s: s[1].update(uid=70000), "services[1].uid: 70000 is outside"),
    (lambda s: s[1].update(container_options={"Bad-Key": 1}), "services[1].options.Bad-Key"),
    (lambda s: s[1].update(publish_ports=[], upstream=None), "services[1].upstream: required"),
    (lambda s: s[1].update(image_archive="/nonexistent.tar"), "services[1].image_archive: /nonexistent.tar"),
])
def test_bad_input_fails_before_any_step(monkeypatch, rec, mutate, field):
    specs = [spec("a", 2001, 8001), spec("b", 2002, 8002)]
    mutate(specs)
    failed, result = run_module(monkeypatch, services, {"services": specs})
    assert failed
    assert field in result["msg"]
    assert result["msg"].startswith("nothing was changed")
    assert rec.applied() == []


def test_unknown_spec_key_is_refused_by_the_argument_spec(monkeypatch, rec):
    failed, result = run_module(monkeypatch, services, {"services": [dict(spec("a", 2001, 8001), imgae="x")]})
    assert failed and "imgae" in result["msg"]
    assert rec.calls == []


def test_one_failing_service_does_not_stop_the_others(monkeypatch, rec):
    rec.unit_changed = {"a": True, "b": True}
    rec.fail_unit = {"a"}
    failed, result = run_module(monkeypatch, services, {"services": [spec("a", 2001, 8001), spec("b", 2002, 8002)]})
    assert failed
    assert "services[0] (a): systemctl start a.service failed" in result["msg"]
    assert ("unit", "b", False) in rec.applied()
    assert [s["error"] for s in result["services"]] == ["systemctl start a.service failed", None]


def test_container_section_uses_quadlet_keys():
    section = service_spec.container_section(dict(
        spec("a", 2001, 8001, exec="/bin/httpd -f", volumes=["d:/d"], environment={"A": "1"},
             health={"cmd": "true", "interval": "10s", "timeout": "5s", "retries": 3, "start_period": "0s"},
             container_options={"Network": "pasta"})), "sha256:ab")
    assert section["ContainerName"] == "a" and section["Exec"] == "/bin/httpd -f"
    assert section["PublishPort"] == ["127.0.0.1:8001:8080"] and section["Volume"] == ["d:/d"]
    assert section["Environment"] == {"A": "1"} and section["HealthCmd"] == "true"
    assert section["Label"] == {service_spec.ARCHIVE_LABEL: "sha256:ab"} and section["Network"] == "pasta"


@pytest.mark.parametrize("ports,url", [
    (["127.0.0.1:8001:80"], "http://127.0.0.1:8001"),
    (["8001:80"], "http://127.0.0.1:8001"),
    (["[::1]:8001:80"], "http://[::1]:8001"),
    (["53:53/udp", "127.0.0.2:8002:80"], "http://127.0.0.2:8002"),
])
def test_upstream_from_published_port(ports, url):
    assert service_spec.upstream({"publish_ports": ports}) == url


def test_secret_environment_goes_to_a_0600_file_and_never_into_the_unit_or_diff(monkeypatch, rec, tmp_path):
    import os
    home = tmp_path / "home"
    real_normalize = service_set.normalize
    monkeypatch.setattr(service_set, "normalize", lambda p: dict(real_normalize(p), home=str(home / p["name"])))
    monkeypatch.setattr(service_set.os, "fchown", lambda fd, uid, gid: None)
    secret = "s3cr3t-value"
    failed, result = run_module(monkeypatch, services, {"services": [
        spec("a", 2001, 8001, secret_environment={"API_TOKEN": secret})]}, diff=True)
    assert not failed, result
    env_file = home / "a" / ".config" / "selfhost-pi" / "a.env"
    assert env_file.read_text() == "API_TOKEN=%s\n" % secret
    assert os.stat(env_file).st_mode & 0o777 == 0o600
    assert os.stat(env_file.parent).st_mode & 0o777 == 0o700
    assert result["services"][0]["env_file"] == str(env_file)
    assert secret not in repr(result)


def test_secret_environment_rejects_bad_names(monkeypatch, rec):
    failed, result = run_module(monkeypatch, services, {"services": [
        spec("a", 2001, 8001, secret_environment={"BAD-NAME": "x"})]})
    assert failed and "services[0].secret_environment: 'BAD-NAME' is not a valid variable name" in result["msg"]


def test_a_retired_uid_is_refused_naming_the_field_before_any_step(monkeypatch, rec, _managed_record):
    os.makedirs(os.path.dirname(_managed_record))
    with open(_managed_record, "w") as handle:
        json.dump({"version": 1, "services": {"a": {"uid": 2001}}, "retired": {"old": {"uid": 2002}}}, handle)
    failed, result = run_module(monkeypatch, services, {"services": [spec("a", 2001, 8001), spec("b", 2002, 8002)]})
    assert failed and "services[1].uid: 2002 belonged to the removed service old" in result["msg"]
    assert rec.calls == []


def test_the_record_names_the_declared_services(monkeypatch, rec, _managed_record):
    failed, result = run_module(monkeypatch, services, {"services": [spec("a", 2001, 8001)]})
    assert not failed and result["record"] == _managed_record
    with open(_managed_record) as handle:
        record = json.load(handle)
    assert record["services"]["a"]["uid"] == 2001 and record["services"]["a"]["units"] == ["a.container"]
    assert record["services"]["a"]["site"] == "a" and record["services"]["a"]["domain"] == "a.test"
    assert record["retired"] == {}
